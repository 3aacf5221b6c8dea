"""The resource sampler: a background thread of timestamped CPU, memory and GPU samples.

Features (the paper's Table 1): ``cpu`` and ``mem`` (% of the machine, from /proc), and with NVML
``gpu`` (% of time a kernel ran), ``gpu_mem`` (% of time the memory controller was busy),
``gpu_clk`` and ``gpu_mem_clk`` (SM and memory clocks, MHz, GPUs averaged) and ``gpu_energy_mean``
(J per call, GPUs summed).  A window's value is the time-weighted mean over [begin, end]; ``cpu`` is
the ratio of busy to total CPU ticks in the window, the GPU energy the integral of GPU power.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from irene_core import IreneError, ResourceSampler
from irene_core.plugin_api import DEFAULT_INTERVAL_S, MIN_INTERVAL_S, Integral, PeriodicThread, SampleSeries
from irene_features_resource.procfs import ProcReader

GPU_FEATURES = ("gpu", "gpu_mem", "gpu_clk", "gpu_mem_clk", "gpu_energy_mean")
GPU_COLUMNS = ("gpu", "gpu_mem", "gpu_clk", "gpu_mem_clk", "gpu_power")


class GpuReadings:
    """Per-sample GPU values through :class:`irene_meter_nvml.gpus.NvmlGpus` (NaN when a read fails)."""

    def __init__(self, gpus: Any):
        self.gpus = gpus
        self.has_counter = not gpus.without_energy_counter()
        self._last = (time.monotonic(), self._energy_mj() if self.has_counter else 0)

    def _energy_mj(self) -> int:
        return sum(self.gpus.energy_mj(k) for k in range(len(self.gpus.indices)))

    def read(self, t: float) -> list[float]:
        """One sample's GPU columns; each is read on its own, so a field the driver does not offer
        (or a failed read) is NaN in that column only."""
        util = self.gpus.utilization()
        clocks = self.gpus.clocks_mhz()
        n = len(util)
        return [
            sum(u[0] for u in util) / n,
            sum(u[1] for u in util) / n,
            sum(c[0] for c in clocks) / n,
            sum(c[1] for c in clocks) / n,
            self._power(t),
        ]

    def _power(self, t: float) -> float:
        """Mean GPU power (W, GPUs summed) since the last sample: counter difference, else polled power."""
        try:
            if not self.has_counter:
                return sum(self.gpus.power_w())
            energy = self._energy_mj()
        except (self.gpus.error, IreneError):
            return math.nan
        last_t, last_energy = self._last
        self._last = (t, energy)
        return (energy - last_energy) / 1000.0 / (t - last_t)


class ProcResourceSampler(ResourceSampler):
    """Samples /proc (and NVML where there is a driver) on a background thread."""

    name = "resource"
    description = "cpu % and mem % from /proc; gpu %, gpu memory %, clocks and GPU energy through NVML"
    feature_names = ("cpu", "mem", *GPU_FEATURES)

    def __init__(
        self, interval_s: float = DEFAULT_INTERVAL_S, *, proc: str = "/proc", gpus: str = "all", retain_s: float = 600.0
    ):
        if not interval_s >= MIN_INTERVAL_S:
            raise IreneError(
                f"resource sampler: interval {1000 * interval_s:g} ms is below the {1000 * MIN_INTERVAL_S:g} ms minimum"
            )
        self.interval_s = interval_s
        self.proc = proc
        self.gpus = gpus
        self.retain_s = retain_s
        self._reader = ProcReader(proc)
        self._series: SampleSeries | None = None
        self._thread: PeriodicThread | None = None
        self._gpu: GpuReadings | None = None
        self._missing: dict[str, str] = {}
        self._sampled = threading.Condition()
        self._waiting = 0  # threads in window() waiting for a sample
        self._last: tuple[float, int, int] = (0.0, 0, 0)

    def configured(
        self, interval_s: float = DEFAULT_INTERVAL_S, gpus: tuple[int, ...] | None = None
    ) -> ProcResourceSampler:
        selection = self.gpus if gpus is None else ",".join(map(str, gpus)) or "none"
        return ProcResourceSampler(interval_s, proc=self.proc, gpus=selection, retain_s=self.retain_s)

    def missing_features(self) -> dict[str, str]:
        return dict(self._missing)

    def _open_gpus(self) -> GpuReadings | None:
        """The selected GPUs' readings (``gpus``: all, NVML indices, or none for a model on the CPU)."""
        try:
            from irene_core.plugin_api import NvmlGpus, parse_gpu_selection
        except ImportError:
            reason = "GPU features need the NVML plugin: pip install irene-meter-nvml"
        else:
            if self.gpus == "none":
                self._missing = dict.fromkeys(GPU_FEATURES, "the model runs on no GPU")
                return None
            try:
                selection = parse_gpu_selection(self.gpus)
            except ValueError as exc:
                raise IreneError(f"resource sampler: gpus={self.gpus!r}: {exc}") from None
            try:
                return GpuReadings(NvmlGpus(selection).open())
            except IreneError as exc:
                reason = str(exc)
        self._missing = dict.fromkeys(GPU_FEATURES, reason)
        return None

    def start(self) -> None:
        if self._series is not None:
            raise IreneError("resource sampler: already started (use configured() for another one)")
        self._gpu = self._open_gpus()
        try:
            busy, total = self._reader.cpu_jiffies()
            self._reader.mem_percent()
        except IreneError:
            self.stop()
            raise
        t0 = time.monotonic()
        columns = ("cpu_busy", "cpu_total", "mem", *(GPU_COLUMNS if self._gpu else ()))
        self._last = (t0, busy, total)
        self._series = SampleSeries(columns, start=t0, retain_s=self.retain_s)
        self._thread = PeriodicThread(self._sample, self.interval_s, "irene-resource-sampler").start()

    def _sample(self) -> None:
        """One sample: CPU tick rates since the last one, memory %, GPU values."""
        busy, total = self._reader.cpu_jiffies()
        mem = self._reader.mem_percent()
        t = time.monotonic()
        last_t, last_busy, last_total = self._last
        self._last = (t, busy, total)
        span = t - last_t
        # idle and iowait can step back on tickless kernels: keep 0 <= busy <= total per sample
        d_busy = max(busy - last_busy, 0)
        d_total = max(total - last_total, d_busy)
        row = [d_busy / span, d_total / span, mem]
        if self._gpu is not None:
            row += self._gpu.read(t)
        self._series.append(t, row)  # type: ignore[union-attr]
        if self._waiting:
            with self._sampled:
                self._sampled.notify_all()

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        if self._gpu is not None:
            self._gpu.gpus.close()
            self._gpu = None

    def _integral(self, begin: float, end: float) -> Integral:
        series = self._series
        if series is None:
            raise IreneError("resource sampler: not started")
        if not end > begin:
            raise IreneError(f"resource sampler: empty window [{begin:.3f}, {end:.3f}]")
        self._await(series, begin, end)
        if self._thread is not None and self._thread.error is not None:
            raise IreneError(f"resource sampler: sampling failed: {self._thread.error}")
        if series.start is not None and series.start - begin > 0.1 * (end - begin):
            raise IreneError(
                f"resource sampler: no samples for the start of the window [{begin:.3f}, {end:.3f}] (samples "
                f"cover {series.start:.3f} onwards; they are kept for {self.retain_s:g} s)"
            )
        return series.integrate(begin, end)

    def _await(self, series: SampleSeries, begin: float, end: float) -> None:
        """While sampling, wait for the sample covering the end when >10 % of the window lacks one."""
        deadline = time.monotonic() + 2 * self.interval_s + 0.1
        with self._sampled:
            self._waiting += 1
            try:
                while self._thread is not None and self._thread.running:
                    last = series.last_time or begin
                    if end - max(last, begin) <= 0.1 * (end - begin) or time.monotonic() >= deadline:
                        return
                    self._sampled.wait(deadline - time.monotonic())
            finally:
                self._waiting -= 1

    def window(self, begin: float, end: float, calls: int = 1) -> dict[str, float]:
        integral = self._integral(begin, end)
        features: dict[str, float] = {}
        if integral.totals["cpu_total"] > 0:
            features["cpu"] = min(100.0, 100.0 * integral.totals["cpu_busy"] / integral.totals["cpu_total"])
        features["mem"] = integral.mean("mem")
        if "gpu_power" in integral.totals:
            for name in GPU_FEATURES[:4]:
                features[name] = integral.mean(name)
            features["gpu_energy_mean"] = integral.mean("gpu_power") * integral.duration_s / calls
        return {k: v for k, v in features.items() if not math.isnan(v)}

    def sample_count(self, begin: float, end: float) -> int:
        return self._integral(begin, end).samples
