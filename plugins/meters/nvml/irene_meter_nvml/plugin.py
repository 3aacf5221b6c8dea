"""Entry point of this plugin (group ``irene``); nothing here imports NVML."""

from irene_core import hookimpl


@hookimpl
def irene_meters():
    from irene_meter_nvml.meter import NvmlMeter

    return [NvmlMeter]
