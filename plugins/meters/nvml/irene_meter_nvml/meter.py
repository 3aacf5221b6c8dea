"""The NVML meter: NVIDIA GPU energy from the total-energy counter, or from polled power."""

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
)

#: NVML's total-energy counter updates every 10-100 ms.
COUNTER_RESOLUTION_S = 0.1


class NvmlMeter(Meter):
    """NVIDIA GPU energy through NVML; several selected GPUs are summed (one domain each)."""

    name = "nvml"
    description = "NVIDIA GPU energy through NVML (total-energy counter on Volta+, else polled power)"
    options: ClassVar[Mapping[str, MeterOption]] = {
        "gpus": MeterOption(
            "all", "GPU indices to measure (NVML order), e.g. 0 or 0,1; 'all' sums every GPU", parse_gpu_selection
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
    }

    def __init__(self, **options: str) -> None:
        super().__init__(**options)
        self._gpus: NvmlGpus | None = None
        self._poller: PeriodicThread | None = None

    def _mode(self, gpus: NvmlGpus) -> str:
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

    def _open(self) -> WindowEngine:
        gpus = self._gpus = NvmlGpus(self.config["gpus"]).open()
        try:
            mode = self._mode(gpus)
        except IreneError:
            gpus.close()
            raise
        domains = [f"gpu{i}" for i in gpus.indices]
        if mode == "counter":
            counters = [EnergyCounter(d, functools.partial(gpus.energy_mj, k), 1e-3) for k, d in enumerate(domains)]
            return CounterEngine(self.name, counters, domains, COUNTER_RESOLUTION_S, on_close=gpus.close)
        interval = self.config["interval_ms"] / 1000.0
        engine = SampledEngine(
            self.name,
            domains,
            nominal_interval_s=interval,
            timeout_s=max(2.0, 20 * interval),
            on_close=self._stop_polling,
        )
        poll = functools.partial(self._poll_power, gpus, engine)
        poll()  # the first reading marks where the samples start
        self._poller = PeriodicThread(poll, interval, "irene-nvml-power").start()
        return engine

    @staticmethod
    def _poll_power(gpus: NvmlGpus, engine: SampledEngine) -> None:
        try:
            watts = gpus.power_w()
        except gpus.error as exc:
            engine.fail(f"reading GPU power failed: {describe_nvml_error(exc)}")
            raise
        engine.add(time.monotonic(), watts)

    def _stop_polling(self) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None
        if self._gpus is not None:
            self._gpus.close()
            self._gpus = None
