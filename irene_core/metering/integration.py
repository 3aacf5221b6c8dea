"""Where energy is integrated: timestamped samples and their integral over a window.

A sample taken at time ``t[i]`` holds each quantity's mean over the interval ``(t[i-1], t[i]]``
since the previous sample — what an emonPi prints (real power averaged since its last line), what a
difference of /proc/stat counters gives, and, as a zero-order hold, how polled readings are treated.
The integral over a window ``[begin, end]`` weights every sample by the overlap of its interval with
the window, so samples that straddle the window's edges count only for the part inside it.
Quantities may be NaN in a sample (not read then); that time is left out of their coverage.
"""

from __future__ import annotations

import math
import threading
from array import array
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Integral:
    """The integral of each quantity over the covered parts of ``[begin, end]``."""

    begin: float
    end: float
    totals: dict[str, float]
    covered_s: dict[str, float]
    samples: int

    @property
    def duration_s(self) -> float:
        return self.end - self.begin

    def mean(self, column: str) -> float:
        """Time-weighted mean of ``column`` over its covered time (NaN when nothing covers it)."""
        covered = self.covered_s[column]
        return self.totals[column] / covered if covered > 0 else math.nan


class SampleSeries:
    """A thread-safe, append-only series of samples of a few named quantities.

    ``start`` is when observation began, so the first sample covers ``(start, t[0]]``; without it
    the first sample only marks the start.  ``retain_s`` drops samples older than that.
    """

    def __init__(self, columns: Sequence[str], start: float | None = None, retain_s: float | None = None):
        self.columns = tuple(columns)
        self.retain_s = retain_s
        self._width = len(self.columns)
        self._times = array("d")
        self._values = array("d")
        self._head = 0  # index of the oldest kept sample
        self._start = start
        self._lock = threading.Lock()

    def append(self, t: float, values: Sequence[float]) -> None:
        """Add the sample taken at ``t`` (later than the previous one; an equal time is ignored)."""
        if len(values) != self._width:
            raise ValueError(f"expected {self._width} values, got {len(values)}")
        with self._lock:
            if self._start is None:
                self._start = t
            elif t <= self._last_locked():
                return
            self._times.append(t)
            self._values.extend(values)
            if self.retain_s is not None and t - self.retain_s > self._times[self._head]:
                self._prune_locked(t - self.retain_s)

    def _last_locked(self) -> float:
        return self._times[-1] if len(self._times) > self._head else self._start  # type: ignore[return-value]

    @property
    def start(self) -> float | None:
        """The earliest time the kept samples cover."""
        return self._start

    @property
    def last_time(self) -> float | None:
        """The time of the newest sample (None before the first)."""
        with self._lock:
            return self._times[-1] if len(self._times) > self._head else None

    def __len__(self) -> int:
        return len(self._times) - self._head

    def prune(self, before: float) -> None:
        """Drop the samples that end at or before ``before`` (their data is no longer needed)."""
        with self._lock:
            self._prune_locked(before)

    def _prune_locked(self, before: float) -> None:
        keep_from = bisect_right(self._times, before, self._head)
        if keep_from == self._head:
            return
        self._start = self._times[keep_from - 1]
        self._head = keep_from
        if self._head > 1024 and 2 * self._head > len(self._times):
            del self._times[: self._head]
            del self._values[: self._head * self._width]
            self._head = 0

    def integrate(self, begin: float, end: float) -> Integral:
        """Integrate every quantity over ``[begin, end]``, weighting straddling samples by overlap."""
        totals = [0.0] * self._width
        covered = [0.0] * self._width
        used = 0
        with self._lock:
            times, values, width = self._times, self._values, self._width
            i = bisect_right(times, begin, self._head)
            prev = times[i - 1] if i > self._head else self._start
            while prev is not None and prev < end and i < len(times):
                t = times[i]
                overlap = min(t, end) - max(prev, begin)
                if overlap > 0:
                    used += 1
                    row = i * width
                    for c in range(width):
                        v = values[row + c]
                        if v == v:  # not NaN
                            totals[c] += v * overlap
                            covered[c] += overlap
                prev = t
                i += 1
        return Integral(
            begin,
            end,
            dict(zip(self.columns, totals, strict=True)),
            dict(zip(self.columns, covered, strict=True)),
            used,
        )
