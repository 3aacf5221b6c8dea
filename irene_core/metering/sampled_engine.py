"""Energy from power samples timestamped on arrival (emonPi lines, polled NVML power).

A producer thread (a serial reader, a poller) calls :meth:`SampledEngine.add` with each sample's
power per domain, or :meth:`SampledEngine.fail` when the device is gone.  Ending a window waits for
the sample that covers its end, then integrates (:mod:`irene_core.metering.integration`).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from irene_core.errors import IreneError
from irene_core.metering.integration import SampleSeries
from irene_core.metering.meter import Mark, Measurement, MeterError, resolution_warning


class SampledEngine:
    """Window engine over power samples (W per domain); the window's energy sums all domains."""

    def __init__(
        self,
        meter: str,
        domains: Sequence[str],
        *,
        nominal_interval_s: float,
        timeout_s: float,
        on_close: Callable[[], None] | None = None,
    ):
        self.meter = meter
        self.domains = tuple(domains)
        self.nominal_interval_s = nominal_interval_s
        self.timeout_s = timeout_s
        self._on_close = on_close
        self._series = SampleSeries(self.domains)
        self._arrived = threading.Condition()
        self._failure: str | None = None
        self._gaps: deque[float] = deque(maxlen=32)
        self._last_t: float | None = None

    # -- producer side -------------------------------------------------------------------------
    def add(self, t: float, watts: Sequence[float]) -> None:
        """Record the samples' power (W per domain), the mean since the previous sample, at ``t``."""
        self._series.append(t, watts)
        with self._arrived:
            if self._last_t is not None and t > self._last_t:
                self._gaps.append(t - self._last_t)
            self._last_t = t
            self._arrived.notify_all()

    def fail(self, reason: str) -> None:
        """The device stopped: windows not yet covered become invalid."""
        with self._arrived:
            self._failure = reason
            self._arrived.notify_all()

    # -- consumer side -------------------------------------------------------------------------
    @property
    def failure(self) -> str | None:
        """Why the device stopped, if it did."""
        return self._failure

    @property
    def interval_s(self) -> float:
        """The observed sample interval (the nominal one until two samples arrived)."""
        with self._arrived:
            return statistics.median(self._gaps) if self._gaps else self.nominal_interval_s

    def wait_for(self, t: float, timeout_s: float) -> bool:
        """Wait until a sample at or after ``t`` arrived; False on failure or timeout."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while True:
                last = self._series.last_time
                if last is not None and last >= t:
                    return True
                left = deadline - time.monotonic()
                if self._failure is not None or left <= 0:
                    return False
                self._arrived.wait(left)

    def check(self) -> None:
        if self._failure is not None:
            raise IreneError(f"meter '{self.meter}': {self._failure}")

    def mark(self) -> Mark:
        return Mark(time.monotonic())

    def measure(self, begin: Mark, end: Mark) -> Measurement:
        covered = self.wait_for(end.t, self.timeout_s)
        integral = self._series.integrate(begin.t, end.t)
        duration = end.t - begin.t
        energy = sum(integral.totals.values())
        warnings = []
        coarse = resolution_warning(duration, self.interval_s, "sample interval")
        if coarse:
            warnings.append(coarse)
        measurement = Measurement(
            meter=self.meter,
            energy_j=energy,
            duration_s=duration,
            mean_power_w=energy / duration if duration > 0 else 0.0,
            samples=integral.samples,
            domains=dict(integral.totals) if len(self.domains) > 1 else {},
            warnings=warnings,
            t_begin=begin.t,
            t_end=end.t,
        )
        if not covered:
            reason = self._failure or f"no data for {self.timeout_s:g} s"
            measurement.valid = False
            measurement.warnings.insert(0, reason)
            raise MeterError(reason, measurement)
        return measurement

    def forget_before(self, t: float) -> None:
        self._series.prune(t)

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
