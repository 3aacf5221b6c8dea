"""The NVML meter: NVIDIA GPU energy from the total-energy counter, or from polled power.

Ceilings: 1.5 × each GPU's enforced power limit (``max_power_w=auto``).  MIG mode is refused unless
``allow_mig=1``: energy and power are per physical GPU, whatever slice the model runs on."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from typing import ClassVar

from irene_core import IreneError, Meter, MeterOption
from irene_core.plugin_api import (
    CounterEngine,
    EnergyCounter,
    NvmlGpus,
    PeriodicThread,
    SampledEngine,
    WindowEngine,
    bounded,
    choice,
    describe_nvml_error,
    parse_gpu_selection,
    positive_float,
)

#: NVML's total-energy counter updates every 10-100 ms.
COUNTER_RESOLUTION_S = 0.1
#: The default ceiling, as a multiple of the GPU's enforced power limit.
LIMIT_FACTOR = 1.5
AVERAGED_POWER = (
    "GPU power is nvmlDeviceGetPowerUsage, a 1 s average on Ampere and newer (the driver offers no "
    "NVML_FI_DEV_POWER_INSTANT): windows under a few seconds are smoothed"
)


def _auto_or_watts(text: str) -> float | None:
    return None if text == "auto" else positive_float(text)


class NvmlMeter(Meter):
    """NVIDIA GPU energy through NVML; several selected GPUs are summed (one domain each)."""

    name = "nvml"
    scope = "gpu"
    description = "NVIDIA GPU energy through NVML (total-energy counter on Volta+, else polled power)"
    options: ClassVar[Mapping[str, MeterOption]] = {
        "gpus": MeterOption(
            "all",
            "GPU indices to measure (NVML order), e.g. 0 or 0,1; 'all' sums every GPU (irene run defaults to "
            "the GPUs of --device)",
            parse_gpu_selection,
        ),
        "mode": MeterOption(
            "auto",
            "counter (total-energy counter read at the window edges, Volta and newer), power (poll power and "
            "integrate) or auto (the counter where every selected GPU has it)",
            choice("auto", "counter", "power"),
        ),
        "interval_ms": MeterOption(
            "50", "power polling interval in power mode (10-100 ms: 10 Hz or faster)", bounded(float, 10, 100, " ms")
        ),
        "max_power_w": MeterOption(
            "auto", "ceiling in W per GPU (auto: 1.5 × its enforced power limit); a reading above it is an error",
            _auto_or_watts,
        ),
        "allow_mig": MeterOption(
            "0", "1 to meter a GPU in MIG mode anyway (its energy is the whole physical GPU's)", choice("0", "1")
        ),
    }

    def __init__(self, **options: str) -> None:
        super().__init__(**options)
        self._gpus: NvmlGpus | None = None
        self._poller: PeriodicThread | None = None

    def _mode(self, gpus: NvmlGpus) -> str:
        """counter or power; refuses MIG GPUs unless allow_mig=1."""
        mig = [f"GPU {i} ({n})" for i, n, on in zip(gpus.indices, gpus.names, gpus.mig_enabled(), strict=True) if on]
        if mig and self.config["allow_mig"] != "1":
            raise IreneError(
                f"{mig[0]} is in MIG mode: NVML's energy and power are per physical GPU, not per MIG slice; "
                f"pass --meter-option allow_mig=1 to meter the whole GPU anyway"
            )
        lacking = gpus.without_energy_counter() if self.config["mode"] != "power" else []
        if self.config["mode"] == "counter" and lacking:
            raise IreneError(
                f"{lacking[0]} has no total-energy counter (Volta or newer needed); "
                f"use --option mode=power"
            )
        return "power" if lacking or self.config["mode"] == "power" else "counter"

    def available(self) -> tuple[bool, str]:
        gpus = NvmlGpus(self.config["gpus"])
        try:
            gpus.open()
            mode = self._mode(gpus)
        except IreneError as exc:
            return False, str(exc)
        finally:
            gpus.close()
        how = "total-energy counter" if mode == "counter" else f"power polled every {self.config['interval_ms']:g} ms"
        return True, f"{gpus.describe_gpus()}; {how}"

    def _ceilings(self, gpus: NvmlGpus) -> list[float]:
        """Per GPU: max_power_w, or 1.5 × the enforced power limit (no ceiling where NVML has no limit)."""
        if self.config["max_power_w"] is not None:
            return [self.config["max_power_w"]] * len(gpus.indices)
        return [LIMIT_FACTOR * w if w == w else float("inf") for w in gpus.power_limit_w()]

    def _open(self) -> WindowEngine:
        gpus = self._gpus = NvmlGpus(self.config["gpus"]).open()
        try:
            mode = self._mode(gpus)
        except IreneError:
            gpus.close()
            raise
        domains = [f"gpu{i}" for i in gpus.indices]
        ceilings = self._ceilings(gpus)
        if mode == "counter":
            counters = [
                EnergyCounter(
                    d, functools.partial(gpus.energy_mj, k), 1e-3, max_power_w=ceilings[k],
                    source=f"nvmlDeviceGetTotalEnergyConsumption(GPU {gpus.indices[k]})",
                )
                for k, d in enumerate(domains)
            ]
            return CounterEngine(self.name, counters, COUNTER_RESOLUTION_S, on_close=gpus.close)
        interval = self.config["interval_ms"] / 1000.0
        engine = SampledEngine(
            self.name,
            domains,
            nominal_interval_s=interval,
            timeout_s=max(2.0, 20 * interval),
            max_power_w=ceilings,
            caveat=AVERAGED_POWER if any(gpus.power_is_averaged()) else None,
            on_close=self._stop_polling,
        )
        call = "nvmlDeviceGetPowerUsage" if engine.caveat else "nvmlDeviceGetFieldValues(NVML_FI_DEV_POWER_INSTANT)"
        poll = functools.partial(self._poll_power, gpus, engine, f"{call} of GPUs {', '.join(map(str, gpus.indices))}")
        poll()  # the first reading marks where the samples start
        self._poller = PeriodicThread(poll, interval, "irene-nvml-power").start()
        return engine

    @staticmethod
    def _poll_power(gpus: NvmlGpus, engine: SampledEngine, source: str) -> None:
        """One sample; a failed read is a fault of the windows it touches, and polling goes on."""
        try:
            watts = gpus.power_w()
        except gpus.error as exc:
            engine.fault(time.monotonic(), f"reading GPU power failed: {describe_nvml_error(exc)} ({source})")
            return
        engine.add(time.monotonic(), watts, source)

    def _stop_polling(self) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None
        if self._gpus is not None:
            self._gpus.close()
            self._gpus = None
