"""Energy from cumulative counters read at the window edges (RAPL, NVML's total-energy counter).

Counters that wrap (RAPL's ``energy_uj`` at ``max_energy_range_uj``) are unwrapped on every read,
and a keep-alive thread reads them every second so that a long window cannot hide two wraps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from irene_core.metering.meter import Mark, Measurement, MeterError, resolution_warning
from irene_core.metering.periodic import PeriodicThread

#: How often wrapping counters are read between window edges.
KEEPALIVE_S = 1.0
#: A window edge's counter read must fit in this time (else it is retried, up to MARK_ATTEMPTS times).
MARK_BRACKET_S = 0.002
MARK_ATTEMPTS = 3


@dataclass(frozen=True)
class EnergyCounter:
    """One energy domain: how to read its raw counter, in what unit, and where it wraps."""

    domain: str
    read: Callable[[], float]
    joules_per_unit: float
    wrap: float | None = None  # the raw value at which the counter restarts from 0


class CounterEngine:
    """Window engine over energy counters; the energy of a window sums the ``summed`` domains."""

    def __init__(
        self,
        meter: str,
        counters: Sequence[EnergyCounter],
        summed: Sequence[str],
        resolution_s: float,
        on_close: Callable[[], None] | None = None,
    ):
        self.meter = meter
        self.counters = tuple(counters)
        self.summed = tuple(summed)
        self.resolution_s = resolution_s
        self._on_close = on_close
        self._lock = threading.Lock()
        self._raw: dict[str, float] = {}
        self._totals = {c.domain: 0.0 for c in self.counters}
        self._reads = 0
        self._resets = 0
        self._poll()
        self._keepalive: PeriodicThread | None = None
        if any(c.wrap for c in self.counters):
            self._keepalive = PeriodicThread(self._poll, KEEPALIVE_S, f"irene-{meter}-keepalive").start()

    def _poll(self) -> None:
        """Read every counter once and add the increments (unwrapped) to the running totals."""
        with self._lock:
            for counter in self.counters:
                raw = counter.read()
                last = self._raw.get(counter.domain)
                self._raw[counter.domain] = raw
                if last is None:
                    continue
                step = raw - last
                if step < 0:
                    if counter.wrap:
                        step += counter.wrap
                    else:
                        self._resets += 1
                        step = 0.0
                self._totals[counter.domain] += step * counter.joules_per_unit
            self._reads += 1

    def check(self) -> None:
        if self._keepalive is not None and self._keepalive.error is not None:
            raise self._keepalive.error

    def mark(self) -> Mark:
        """Read the counters now; a read stretched by preemption is retried so the time is tight."""
        for _ in range(MARK_ATTEMPTS):
            t0 = time.monotonic()
            self._poll()
            t1 = time.monotonic()
            if t1 - t0 <= MARK_BRACKET_S:
                break
        with self._lock:
            return Mark((t0 + t1) / 2, dict(self._totals), self._reads, self._resets)

    def measure(self, begin: Mark, end: Mark) -> Measurement:
        domains = {d: end.totals[d] - begin.totals[d] for d in end.totals}
        energy = sum(domains[d] for d in self.summed)
        duration = end.t - begin.t
        warning = resolution_warning(duration, self.resolution_s, "counter update period")
        measurement = Measurement(
            meter=self.meter,
            energy_j=energy,
            duration_s=duration,
            mean_power_w=energy / duration if duration > 0 else 0.0,
            samples=end.reads - begin.reads + 1,
            domains=domains,
            warnings=[warning] if warning else [],
            t_begin=begin.t,
            t_end=end.t,
        )
        if end.resets != begin.resets:
            measurement.valid = False
            raise MeterError("an energy counter went backwards during the window (device reset?)", measurement)
        return measurement

    def forget_before(self, t: float) -> None:
        """Counters keep no history."""

    def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.stop()
        if self._on_close is not None:
            self._on_close()
