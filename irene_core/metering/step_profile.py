"""A quantity that changes in steps over ``time.monotonic()`` (a simulated power or load), with its
exact integral: what the hardware simulators of the meter plugins' ``testing`` modules report."""

from __future__ import annotations

import bisect
import time


class StepProfile:
    """Piecewise-constant over time; :meth:`set` changes the value from now on."""

    def __init__(self, value: float, t0: float | None = None):
        self.steps: list[tuple[float, float]] = [(time.monotonic() if t0 is None else t0, value)]

    @property
    def t0(self) -> float:
        """When the profile began."""
        return self.steps[0][0]

    def set(self, value: float, at: float | None = None) -> float:
        """Change the value from now (or from time ``at``) on; returns the time of the change."""
        when = time.monotonic() if at is None else at
        bisect.insort(self.steps, (when, value))
        return when

    def at(self, t: float) -> float:
        """The value at time ``t``."""
        return next((value for start, value in reversed(self.steps) if start <= t), self.steps[0][1])

    def integral(self, begin: float, end: float) -> float:
        """The exact integral between two times (value × seconds; J for a power in W)."""
        total = 0.0
        for (start, value), (stop, _) in zip(self.steps, [*self.steps[1:], (float("inf"), 0.0)], strict=True):
            overlap = min(stop, end) - max(start, begin)
            if overlap > 0:
                total += value * overlap
        return total

    def mean(self, begin: float, end: float) -> float:
        """The time-weighted mean between two times."""
        return self.integral(begin, end) / (end - begin)
