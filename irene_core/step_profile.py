"""A quantity that changes in steps over ``time.monotonic()`` (a simulated power or load), with its
exact integral: what the hardware simulators of the meter plugins' ``testing`` modules report."""

from __future__ import annotations

import time


class StepProfile:
    """Piecewise-constant over time; :meth:`set` changes the value from now on."""

    def __init__(self, value: float):
        self.steps: list[tuple[float, float]] = [(time.monotonic(), value)]

    @property
    def t0(self) -> float:
        """When the profile began."""
        return self.steps[0][0]

    def set(self, value: float) -> float:
        """Change the value from now on; returns the time of the change."""
        now = time.monotonic()
        self.steps.append((now, value))
        return now

    def at(self, t: float) -> float:
        """The value at time ``t``."""
        return next((value for start, value in reversed(self.steps) if start <= t), self.steps[0][1])

    def integral(self, begin: float, end: float) -> float:
        """The exact integral between two times (value × seconds; J for a power in W)."""
        total = 0.0
        for (start, value), (stop, _) in zip(self.steps, [*self.steps[1:], (float("inf"), 0.0)]):
            overlap = min(stop, end) - max(start, begin)
            if overlap > 0:
                total += value * overlap
        return total

    def mean(self, begin: float, end: float) -> float:
        """The time-weighted mean between two times."""
        return self.integral(begin, end) / (end - begin)
