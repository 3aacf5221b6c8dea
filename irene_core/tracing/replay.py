"""Replay timing shared by framework plugins: one node's calls counted and timed between device syncs, and
the warm-up that brings a node to a steady state before it is measured (:func:`settle`)."""

from __future__ import annotations

import contextlib
import math
import statistics
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


@dataclass(frozen=True)
class WarmupPolicy:
    """When a node is warm: two consecutive timing batches of at least ``batch_seconds`` whose median
    latencies agree within ``tolerance_pct``, within ``max_batches`` batches and ``max_seconds``.
    A batch is timed in chunks of about ``chunk_seconds`` (whole calls, one device sync each); its
    median latency is the median of the chunks' latencies per call."""

    batch_seconds: float = 0.1
    tolerance_pct: float = 5.0
    max_batches: int = 10
    max_seconds: float = 3.0
    chunk_seconds: float = 0.01

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) and v > 0 for v in (self.batch_seconds, self.max_seconds, self.chunk_seconds)):
            raise IreneError("warm-up: batch, chunk and budget seconds must be finite numbers > 0")
        if not (math.isfinite(self.tolerance_pct) and self.tolerance_pct >= 0) or self.max_batches < 2:
            raise IreneError("warm-up: the tolerance must be >= 0 % and at least 2 batches allowed")


def spread_pct(a: float, b: float) -> float:
    """How far apart two latencies are: 100 · |a − b| / min(a, b) (0 when equal)."""
    if a == b:
        return 0.0
    low = min(a, b)
    return 100.0 * abs(a - b) / low if low > 0 else math.inf


@dataclass(frozen=True)
class Settled:
    """What a warm-up did: each batch's median latency per call (s), the seconds timed, and whether the
    last two batches agreed."""

    medians: tuple[float, ...]
    seconds: float
    stable: bool

    @property
    def spread_pct(self) -> float | None:
        """The last two batches' difference (%), or None after a single batch."""
        return spread_pct(*self.medians[-2:]) if len(self.medians) > 1 else None


def settle(replay: Callable[[int], ReplayResult], policy: WarmupPolicy) -> Settled:
    """Warm a node up with ``replay(calls)`` until two consecutive batches agree (``stable``) or the
    policy's batches or seconds run out (not ``stable``). Batch lengths and the budget count the timed
    seconds the replays report, so a call longer than the budget gives a single batch."""
    medians: list[float] = []
    total = 0.0
    per_call = 0.0
    while True:
        chunks: list[float] = []
        elapsed = 0.0
        while elapsed < policy.batch_seconds:
            result = replay(max(1, round(policy.chunk_seconds / per_call)) if per_call > 0 else 1)
            if not result.seconds > 0:
                raise IreneError(f"warm-up: a replay of {result.calls} call(s) reported {result.seconds} s")
            per_call = result.mean_latency
            chunks.append(per_call)
            elapsed += result.seconds
        total += elapsed
        medians.append(statistics.median(chunks))
        stable = len(medians) > 1 and spread_pct(medians[-2], medians[-1]) <= policy.tolerance_pct
        if stable or len(medians) >= policy.max_batches or total >= policy.max_seconds:
            return Settled(tuple(medians), total, stable)
