"""Energy from cumulative counters read at the window edges (RAPL, NVML's total-energy counter).

Every read is checked before it counts: a value that is not a finite, non-negative number, a step
that implies more than the domain's power ceiling, or a counter that goes backwards when unwrapping
it would exceed that ceiling is a *fault*.  A fault (like a failed read) restarts that counter's
baseline and invalidates exactly the windows open across it; later windows are measured normally.
A window longer than :data:`STALL_PERIODS` update periods in which a summed counter never moved is
invalid too (a stalled counter
reads 0 J; checked in windows longer than :data:`STALL_MIN_S`).  Counters that wrap (RAPL's ``energy_uj`` at
``max_energy_range_uj``) are unwrapped, and a keep-alive thread reads them every second so that a
long window cannot hide two wraps.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from irene_core.errors import IreneError
from irene_core.metering.meter import Mark, Measurement, MeterError, resolution_warning
from irene_core.metering.periodic import PeriodicThread

#: How often wrapping counters are read between window edges.
KEEPALIVE_S = 1.0
#: A window edge's counter read must fit in this time (else it is retried, up to MARK_ATTEMPTS times).
MARK_BRACKET_S = 0.002
MARK_ATTEMPTS = 3
#: A summed counter that never moves in a window longer than this many update periods (and than
#: STALL_MIN_S, above the scheduling jitter of a busy machine) has stalled.
STALL_PERIODS = 5
STALL_MIN_S = 0.05
#: Energy between two reads may exceed ceiling × elapsed time by one update period (a read shows the
#: energy up to the counter's last update, which lags the read), and by at least LAG_MIN_S.
LAG_MIN_S = 0.05


@dataclass(frozen=True)
class EnergyCounter:
    """One energy domain: how to read its raw counter, in what unit, where it wraps, the most power
    it can plausibly draw, and where the reading comes from (a file, an NVML call: named in errors)."""

    domain: str
    read: Callable[[], float]
    joules_per_unit: float
    wrap: float | None = None  # the raw value at which the counter restarts from 0
    max_power_w: float = math.inf
    source: str = ""


class CounterEngine:
    """Window engine over energy counters; the energy of a window sums the ``counters`` domains."""

    def __init__(
        self,
        meter: str,
        counters: Sequence[EnergyCounter],
        resolution_s: float,
        on_close: Callable[[], None] | None = None,
    ):
        self.meter = meter
        self.counters = tuple(counters)
        self.resolution_s = resolution_s
        self._on_close = on_close
        self._lock = threading.Lock()
        self._raw: dict[str, tuple[float, float]] = {}  # domain → (raw value, time read)
        self._totals = {c.domain: 0.0 for c in self.counters}
        self._reads = 0
        self._faults = 0
        self._reasons: deque[tuple[int, str]] = deque(maxlen=16)  # (fault number, reason)
        for counter in self.counters:  # opening: an unreadable counter is an IreneError saying why
            counter.read()
        self._poll()
        self._keepalive: PeriodicThread | None = None
        if any(c.wrap for c in self.counters):
            self._keepalive = PeriodicThread(self._poll, KEEPALIVE_S, f"irene-{meter}-keepalive").start()

    def _fault(self, counter: EnergyCounter, reason: str) -> None:
        """Record a fault; the counter's next good read is a new baseline."""
        self._faults += 1
        self._reasons.append((self._faults, f"{counter.domain}: {reason} ({counter.source})"))
        self._raw.pop(counter.domain, None)

    def _poll(self) -> None:
        """Read every counter once and add the checked increments (unwrapped) to the running totals."""
        with self._lock:
            for counter in self.counters:
                try:
                    raw = counter.read()
                except (IreneError, OSError, ValueError) as exc:
                    self._fault(counter, f"read failed: {exc}")
                    continue
                now = time.monotonic()
                if not (math.isfinite(raw) and raw >= 0):
                    self._fault(counter, f"counter reads {raw!r}, not a finite non-negative number")
                    continue
                last = self._raw.get(counter.domain)
                self._raw[counter.domain] = (raw, now)
                if last is not None:
                    self._count(counter, last, raw, now)
            self._reads += 1

    def _count(self, counter: EnergyCounter, last: tuple[float, float], raw: float, now: float) -> None:
        """Add the step from ``last`` to ``raw`` when it is plausible, else record a fault."""
        previous, then = last
        step = raw - previous
        allowed = counter.max_power_w * (now - then + max(self.resolution_s, LAG_MIN_S))
        if step < 0:
            if counter.wrap is None:
                self._fault(counter, f"counter went backwards from {previous:.0f} to {raw:.0f} (device reset?)")
                return
            wrapped = (step + counter.wrap) * counter.joules_per_unit
            if wrapped > allowed:
                self._fault(counter, (
                    f"counter went backwards from {previous:.0f} to {raw:.0f}, not a wrap (unwrapped it would be "
                    f"{wrapped:.6g} J in {now - then:.3g} s, above max_power_w={counter.max_power_w:g} W)"
                ))
                return
            step += counter.wrap
        energy = step * counter.joules_per_unit
        if energy > allowed:
            self._fault(counter, (
                f"counter jumped from {previous:.0f} to {raw:.0f}: {energy:.6g} J in {now - then:.3g} s is above "
                f"max_power_w={counter.max_power_w:g} W"
            ))
            return
        self._totals[counter.domain] += energy

    def check(self) -> None:
        if self._keepalive is not None and self._keepalive.error is not None:
            raise MeterError(f"the keep-alive reader stopped: {self._keepalive.error}")

    def mark(self) -> Mark:
        """Read the counters now; a read stretched by preemption is retried so the time is tight."""
        faults_before = self._faults
        for _ in range(MARK_ATTEMPTS):
            t0 = time.monotonic()
            self._poll()
            t1 = time.monotonic()
            if t1 - t0 <= MARK_BRACKET_S:
                break
        with self._lock:
            return Mark((t0 + t1) / 2, dict(self._totals), self._reads, faults_before, self._faults)

    def measure(self, begin: Mark, end: Mark) -> Measurement:
        domains = {d: end.totals[d] - begin.totals[d] for d in end.totals}
        energy = sum(domains.values())
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
        reason = self._fault_reason(begin, end)
        if reason is None and duration > max(STALL_PERIODS * self.resolution_s, STALL_MIN_S):
            stalled = [c for c in self.counters if domains[c.domain] == 0]
            if stalled:
                reason = (
                    f"{stalled[0].domain}: counter did not advance in {duration:.3g} s, over {STALL_PERIODS} update "
                    f"periods of {self.resolution_s:g} s (stalled counter) ({stalled[0].source})"
                )
        if reason is not None:
            measurement.valid = False
            measurement.warnings.insert(0, reason)
            raise MeterError(reason, measurement)
        return measurement

    def _fault_reason(self, begin: Mark, end: Mark) -> str | None:
        """The faults recorded between the window's edges (their reads included), or None."""
        if end.faults_after == begin.faults_before:
            return None
        with self._lock:
            reasons = [r for n, r in self._reasons if begin.faults_before < n <= end.faults_after]
        count = end.faults_after - begin.faults_before
        first = reasons[0] if reasons else "reasons no longer kept"
        return first if count == 1 else f"{count} faulty reads, the first: {first}"

    def forget_before(self, t: float) -> None:
        """Counters keep no history."""

    def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.stop()
        if self._on_close is not None:
            self._on_close()
