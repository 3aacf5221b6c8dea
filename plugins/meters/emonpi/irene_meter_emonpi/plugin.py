"""Entry point of this plugin (group ``irene``); the meter module is imported only when asked for."""

from irene_core import hookimpl


@hookimpl
def irene_meters():
    from irene_meter_emonpi.meter import EmonPiMeter

    return [EmonPiMeter]
