"""Steady state before every window: timing batches until two agree, within a budget, and the flag
``not_stable`` when the warm-up gave up."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from typing import Any

import pytest

from irene_core.errors import IreneError
from irene_core.plugin_api import timed_replay
from irene_core.profiling.profiler import Profiler, RunSettings
from irene_core.tracing.framework import TracedModel
from irene_core.tracing.replay import ReplayResult, WarmupPolicy, settle, spread_pct
from irene_core.tree.schema import Node, TreeRecord

POLICY = WarmupPolicy(batch_seconds=0.1, tolerance_pct=5.0, max_batches=10, max_seconds=3.0, chunk_seconds=0.01)


def clocked(latency):
    """A replay whose call 'takes' latency(k, t) seconds (reported, not slept), the k-th call at time t."""
    made, now = [0], [0.0]

    def replay(calls: int) -> ReplayResult:
        start = now[0]
        for _ in range(calls):
            now[0] += latency(made[0], now[0])
            made[0] += 1
        return ReplayResult(calls=calls, seconds=now[0] - start)

    return replay


def test_a_cold_start_is_waited_out_then_two_batches_agree():
    """30× slow at first, halving call by call down to 24 ms: the window starts in the steady state."""
    settled = settle(clocked(lambda k, t: max(0.024, 0.72 / 2**k)), POLICY)
    assert settled.stable and settled.medians[-2:] == pytest.approx((0.024, 0.024)) and settled.spread_pct == 0.0
    assert settled.medians[0] > 0.024 * 1.05 and settled.seconds < POLICY.max_seconds


def test_chunks_keep_tiny_calls_cheap_and_the_median_ignores_outliers():
    calls = []

    def replay(n: int) -> ReplayResult:
        calls.append(n)
        return ReplayResult(calls=n, seconds=n * (1e-5 if len(calls) % 7 else 1e-3))  # every 7th chunk stalls

    settled = settle(replay, POLICY)
    assert settled.stable and settled.medians == pytest.approx((1e-5, 1e-5))
    assert calls[0] == 1 and max(calls) == 1000  # chunks of ~10 ms once the latency is known


def test_a_warm_up_that_never_settles_gives_up_at_the_batch_or_time_limit():
    drifting = settle(clocked(lambda k, t: 0.001 * 1.5**k), POLICY)  # every batch 50 % or more slower
    assert not drifting.stable and drifting.spread_pct > POLICY.tolerance_pct
    assert len(drifting.medians) < POLICY.max_batches and drifting.seconds >= POLICY.max_seconds
    creeping = settle(clocked(lambda k, t: 0.001 * 1.1 ** (t / 0.1)), POLICY)  # 10 % slower every 0.1 s
    assert not creeping.stable and len(creeping.medians) == POLICY.max_batches and creeping.seconds < 3
    long = settle(clocked(lambda k, t: 4.0), POLICY)  # one call outlasts the budget: a single batch
    assert not long.stable and long.medians == (4.0,) and long.spread_pct is None


def test_policy_and_spread_rules():
    assert spread_pct(1.0, 1.05) == pytest.approx(5.0) and spread_pct(1.05, 1.0) == pytest.approx(5.0)
    assert spread_pct(0.0, 0.0) == 0.0
    for bad in ({"max_batches": 1}, {"tolerance_pct": -1.0}, {"batch_seconds": 0.0}, {"max_seconds": float("nan")}):
        with pytest.raises(IreneError, match="warm-up"):
            WarmupPolicy(**bad)
    with pytest.raises(IreneError, match="reported 0"):
        settle(lambda calls: ReplayResult(calls=calls, seconds=0.0), POLICY)


class Drifting(TracedModel):
    """A traced model (two identical leaves under a root) whose every call of a node sleeps 3× longer than the
    last (from 1 ms): far beyond any scheduling jitter, no two batches ever agree."""

    def __init__(self) -> None:
        leaf = {"level": "ml", "type": "Op", "signature": "op", "features": {"flops": 1.0}}
        self.record = TreeRecord(model_name="drift", batch_size=1, seq_len=1, root=Node(
            id=":M", scope="", type="M", level="model", signature="m",
            children=[Node(id="a:Op", scope="a", **leaf), Node(id="b:Op", scope="b", **leaf)]))
        self.sleep = 0.0
        self.replayed: list[str] = []

    def step(self) -> None:
        self.sleep = 3 * self.sleep or 0.001
        time.sleep(self.sleep)

    def replay(self, node_id: str, *, calls: int | None = None, seconds: float | None = None,
               around: AbstractContextManager[Any] | None = None) -> ReplayResult:
        if self.replayed[-1:] != [node_id]:
            self.sleep = 0.0
        self.replayed.append(node_id)
        return timed_replay(self.step, lambda: None, calls, seconds, around)


def test_the_profiler_flags_not_stable_and_members_inherit_it():
    policy = WarmupPolicy(batch_seconds=0.005, max_batches=3, max_seconds=0.5, chunk_seconds=0.001)
    model = Drifting()
    record = Profiler(RunSettings(window_seconds=0.005, warmup=policy)).profile(model)
    a, b = record.root.find("a"), record.root.find("b")
    assert model.replayed.count("b:Op") == 0 and model.replayed[-1] == ":M"  # one per class, the model last
    assert record.root.flags == a.flags == ["not_stable"] and record.root.latency_spread_pct >= 100
    assert b.measured_as == a.id and b.flags == ["not_stable"] and b.latency_spread_pct == a.latency_spread_pct
    assert record.meta["profiling"]["classes"] == 2 and record.meta["profiling"]["nodes"] == 3
