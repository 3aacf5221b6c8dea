"""Engine helpers for meter, feature and framework plugins (imported on first use).

Meters: :class:`CounterEngine` over :class:`EnergyCounter` s (energy counters read at window edges)
or :class:`SampledEngine` (power samples integrated over the window), option parsers, and
:class:`PeriodicThread`.  Resource samplers: :class:`SampleSeries` and the sampling intervals.
GPUs: :class:`NvmlGpus`, the NVIDIA GPUs seen through NVML, shared by the NVML meter and the
resource sampler.  Frameworks: :func:`timed_replay` and :func:`check_replay_request`.  Primitive
regressors: core's :class:`LeafRegressor`.  Hardware simulators for tests: :class:`StepProfile`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from irene_core._lazy import lazy_exports

_EXPORTS = {
    "CounterEngine": "irene_core.metering.counter_engine",
    "EnergyCounter": "irene_core.metering.counter_engine",
    "SampledEngine": "irene_core.metering.sampled_engine",
    "WindowEngine": "irene_core.metering.meter",
    "Mark": "irene_core.metering.meter",
    "bounded": "irene_core.metering.meter",
    "choice": "irene_core.metering.meter",
    "positive_float": "irene_core.metering.meter",
    "positive_int": "irene_core.metering.meter",
    "resolution_warning": "irene_core.metering.meter",
    "PeriodicThread": "irene_core.metering.periodic",
    "SampleSeries": "irene_core.metering.integration",
    "Integral": "irene_core.metering.integration",
    "DEFAULT_INTERVAL_S": "irene_core.metering.sampler",
    "MIN_INTERVAL_S": "irene_core.metering.sampler",
    "NvmlGpus": "irene_core.metering.gpus",
    "nvml": "irene_core.metering.gpus",
    "describe_nvml_error": "irene_core.metering.gpus",
    "parse_gpu_selection": "irene_core.metering.gpus",
    "StepProfile": "irene_core.metering.step_profile",
    "timed_replay": "irene_core.tracing.replay",
    "check_replay_request": "irene_core.tracing.replay",
    "LeafRegressor": "irene_core.predictor.leaf_regressor",
}

__all__ = [
    "DEFAULT_INTERVAL_S",
    "MIN_INTERVAL_S",
    "CounterEngine",
    "EnergyCounter",
    "Integral",
    "LeafRegressor",
    "Mark",
    "NvmlGpus",
    "PeriodicThread",
    "SampleSeries",
    "SampledEngine",
    "StepProfile",
    "WindowEngine",
    "bounded",
    "check_replay_request",
    "choice",
    "describe_nvml_error",
    "nvml",
    "parse_gpu_selection",
    "positive_float",
    "positive_int",
    "resolution_warning",
    "timed_replay",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from irene_core.metering.counter_engine import CounterEngine, EnergyCounter
    from irene_core.metering.gpus import NvmlGpus, describe_nvml_error, nvml, parse_gpu_selection
    from irene_core.metering.integration import Integral, SampleSeries
    from irene_core.metering.meter import (
        Mark,
        WindowEngine,
        bounded,
        choice,
        positive_float,
        positive_int,
        resolution_warning,
    )
    from irene_core.metering.periodic import PeriodicThread
    from irene_core.metering.sampled_engine import SampledEngine
    from irene_core.metering.sampler import DEFAULT_INTERVAL_S, MIN_INTERVAL_S
    from irene_core.metering.step_profile import StepProfile
    from irene_core.predictor.leaf_regressor import LeafRegressor
    from irene_core.tracing.replay import check_replay_request, timed_replay
