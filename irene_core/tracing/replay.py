"""Replay timing shared by framework plugins: one node's calls counted and timed between device syncs."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from irene_core.errors import IreneError


@dataclass(frozen=True)
class ReplayResult:
    """What replaying one node gave: how many calls ran, in what wall time (s)."""

    calls: int
    seconds: float

    @property
    def mean_latency(self) -> float:
        return self.seconds / self.calls if self.calls else float("nan")


def check_replay_request(calls: int | None, seconds: float | None) -> None:
    """Raise IreneError unless exactly one of ``calls`` (an integer >= 1) and ``seconds`` (> 0) is given."""
    if (calls is None) == (seconds is None):
        raise IreneError("replay: give exactly one of calls or seconds (calls=N or seconds=T)")
    if calls is not None and (isinstance(calls, bool) or not isinstance(calls, int) or calls < 1):
        raise IreneError(f"replay: calls must be an integer >= 1, got {calls!r} (calls and seconds must be positive)")
    if seconds is not None and not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise IreneError(
            f"replay: seconds must be a finite number > 0, got {seconds!r} (calls and seconds must be positive)"
        )


def timed_replay(
    step: Callable[[], Any],
    sync: Callable[[], None],
    calls: int | None,
    seconds: float | None,
    around: AbstractContextManager[Any] | None = None,
) -> ReplayResult:
    """The timing loop of :meth:`TracedModel.replay` for framework plugins: ``step`` ``calls`` times,
    or until ``seconds`` have passed, between two ``sync`` calls (waits for queued device work),
    with ``around`` entered right before the first timed call and exited right after the last."""
    check_replay_request(calls, seconds)
    sync()
    with around if around is not None else contextlib.nullcontext():
        start = time.perf_counter()
        done = 0
        deadline = start + (seconds or 0.0)
        while True:
            step()
            done += 1
            if done == calls or (seconds is not None and time.perf_counter() >= deadline):
                break
        sync()
        elapsed = time.perf_counter() - start
    return ReplayResult(calls=done, seconds=elapsed)
