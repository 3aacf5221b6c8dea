"""Entry point of this plugin (group ``irene``); the meter module is imported only when asked for."""

from irene_core import hookimpl


@hookimpl
def irene_meters():
    from irene_meter_rapl.meter import RaplMeter

    return [RaplMeter]
