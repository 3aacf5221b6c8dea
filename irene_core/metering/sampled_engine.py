"""Energy from power samples timestamped on arrival (emonPi lines, polled NVML power).

A producer thread (a serial reader, a poller) calls :meth:`SampledEngine.add` with each sample's
power per domain, :meth:`SampledEngine.fault` when one read failed, or :meth:`SampledEngine.fail`
when the device is gone.  A sample whose power is negative, not finite or above the domain's ceiling
is a fault too.  A fault covers the time since the previous sample: the windows overlapping it are
invalid, later ones are measured normally.  Ending a window waits for the sample that covers its end,
then integrates (:mod:`irene_core.metering.integration`).
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from irene_core.metering.integration import SampleSeries
from irene_core.metering.meter import Mark, Measurement, MeterError, implausible_power, resolution_warning

#: Faults kept (older ones are forgotten with the samples they cover).
KEPT_FAULTS = 64


class SampledEngine:
    """Window engine over power samples (W per domain); the window's energy sums all domains."""

    def __init__(
        self,
        meter: str,
        domains: Sequence[str],
        *,
        nominal_interval_s: float,
        timeout_s: float,
        max_power_w: Sequence[float] | None = None,
        caveat: str | None = None,
        on_close: Callable[[], None] | None = None,
    ):
        self.meter = meter
        self.domains = tuple(domains)
        self.max_power_w = tuple(max_power_w) if max_power_w is not None else (math.inf,) * len(self.domains)
        self.caveat = caveat  # a warning every measurement carries (e.g. the power is a 1 s average)
        self.nominal_interval_s = nominal_interval_s
        self.timeout_s = timeout_s
        self._on_close = on_close
        self._series = SampleSeries(self.domains)
        self._arrived = threading.Condition()
        self._failure: str | None = None
        self._gaps: deque[float] = deque(maxlen=32)
        self._last_t: float | None = None
        self._faults: deque[tuple[float, float, str]] = deque(maxlen=KEPT_FAULTS)  # (from, to, reason)

    # -- producer side -------------------------------------------------------------------------
    def add(self, t: float, watts: Sequence[float], source: str = "") -> None:
        """Record the samples' power (W per domain), the mean since the previous sample, at ``t``;
        ``source`` (a serial line, an NVML call) is named if a value is implausible."""
        for domain, value, ceiling in zip(self.domains, watts, self.max_power_w, strict=True):
            problem = implausible_power(value, ceiling)
            if problem:
                self.fault(t, f"{domain}: {problem} ({source})")
                return
        self._series.append(t, watts)
        self._arrived_at(t)

    def fault(self, t: float, reason: str) -> None:
        """A failed or implausible read at ``t``: windows overlapping the time since the last sample
        are invalid; sampling goes on."""
        self._series.append(t, [math.nan] * len(self.domains))
        with self._arrived:
            self._faults.append((self._last_t if self._last_t is not None else -math.inf, t, reason))
        self._arrived_at(t)

    def _arrived_at(self, t: float) -> None:
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
            raise MeterError(f"meter '{self.meter}': {self._failure}")

    def _fault_in(self, begin: float, end: float) -> str | None:
        """The first fault whose time overlaps [begin, end], or None."""
        with self._arrived:
            return next((reason for low, high, reason in self._faults if low < end and high > begin), None)

    def mark(self) -> Mark:
        return Mark(time.monotonic())

    def measure(self, begin: Mark, end: Mark) -> Measurement:
        covered = self.wait_for(end.t, self.timeout_s)
        integral = self._series.integrate(begin.t, end.t)
        duration = end.t - begin.t
        energy = sum(integral.totals.values())
        warnings = [self.caveat] if self.caveat else []
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
        reason = None if covered else self._failure or f"no data for {self.timeout_s:g} s"
        reason = reason or self._fault_in(begin.t, end.t)
        if reason is not None:
            measurement.valid = False
            measurement.warnings.insert(0, reason)
            raise MeterError(reason, measurement)
        return measurement

    def forget_before(self, t: float) -> None:
        self._series.prune(t)

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
