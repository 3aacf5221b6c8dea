"""Physical sanity of every measured node (spread, energy above idle, flags, windows) and retries of a
refused window: the real profiler, torch tracer and RAPL meter on a simulated powercap tree."""

from __future__ import annotations

import itertools
import math
import os
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from irene_core.metering.meter import MeterError, open_meter
from irene_core.profiling.profiler import RETRIES, MeterFailure, Profiler, RunSettings
from irene_core.profiling.session import Stopped, StopSignals, flag_summary
from irene_core.tracing.trace import trace
from irene_meter_rapl.testing import PowercapTree

MODEL = "bert-L2-H128"
IDLE_W = 100.0
SETTINGS = RunSettings(window_seconds=0.02, rounds=3, idle_seconds=0.2, max_spread_pct=5.0)


@pytest.fixture(scope="module")
def traced():
    return trace(MODEL, 1, 8)


@pytest.fixture
def powercap(tmp_path):
    with PowercapTree(tmp_path / "powercap", {"package-0": IDLE_W}, tick_s=0.0005) as tree:
        yield tree


@contextmanager
def _cooling(powercap: PowercapTree, watts: Callable[[float], float]) -> Iterator[None]:
    """Set the package power to ``watts(seconds since start)`` every 10 ms while the block runs."""
    stop, start = threading.Event(), time.monotonic()

    def cool() -> None:
        while not stop.wait(0.01):
            powercap.set_power("package-0", watts(time.monotonic() - start))

    powercap.set_power("package-0", watts(0.0))
    cooler = threading.Thread(target=cool)
    cooler.start()
    try:
        yield
    finally:
        stop.set()
        cooler.join()


@pytest.mark.parametrize("settles", [True, False])
def test_idle_power_waits_for_the_machine_to_cool_down(powercap, settles: bool) -> None:
    """Right after work the power falls for a while: the idle power is read once two 0.2 s windows in a
    row agree (a single window would read 143 W of a fall to 100 W); one that keeps falling (10 % per
    window) is taken as it is, with a warning."""
    meter = open_meter("rapl", {"root": str(powercap.root)})
    profiler = Profiler(SETTINGS, meter=meter)
    falling = (lambda t: IDLE_W * (1 + math.exp(-t / 0.1))) if settles else (lambda t: 3 * IDLE_W * 0.9 ** (t / 0.2))
    try:
        with _cooling(powercap, falling):
            idle = profiler.idle_power()
    finally:
        meter.close()
    warned = [w for w in profiler.warnings if "idle power did not settle in 5 windows of 0.2 s" in w]
    if settles:
        assert idle == pytest.approx(IDLE_W, rel=0.03) and not warned
    else:
        assert idle == pytest.approx(3 * IDLE_W * 0.9**4.5, rel=0.1) and len(warned) == 1, (idle, profiler.warnings)


def test_noisy_power_below_idle_is_flagged(traced, powercap):
    """Idle at 100 W, then work at 10–30 W toggled every 7 ms: every node is below idle, most spread."""
    meter = open_meter("rapl", {"root": str(powercap.root)})
    profiler = Profiler(SETTINGS, meter=meter)
    idle = profiler.idle_power()
    assert idle == pytest.approx(IDLE_W, rel=0.05)
    stop = threading.Event()

    def toggle() -> None:
        watts = 10.0
        while not stop.wait(0.007):
            watts = 40.0 - watts
            powercap.set_power("package-0", watts)

    toggler = threading.Thread(target=toggle)
    toggler.start()
    started = time.time_ns()
    try:
        record = profiler.profile(traced)
    finally:
        stop.set()
        toggler.join()
        meter.close()
    nodes = list(record.nodes())
    for node in (n for n in nodes if n.measured_as is None):  # the others carry a representative's figures
        assert len(node.windows) == SETTINGS.rounds
        per_call = [w.energy_j / w.calls for w in node.windows]
        assert node.ground_truth_energy == pytest.approx(statistics.fmean(per_call))
        # a coefficient of variation; stated without dividing, as a loaded machine may starve the simulator
        # through every 0.02 s window of a node (0 J each: too short to call a stall)
        assert node.spread_pct * node.ground_truth_energy == pytest.approx(100 * statistics.stdev(per_call))
        assert node.energy_above_idle == pytest.approx(node.ground_truth_energy - idle * node.features["times_mean"])
        assert ("spread" in node.flags) == (node.spread_pct > SETTINGS.max_spread_pct), node.id
        assert "below_idle" in node.flags and "retried" not in node.flags, node.id
    assert sum("spread" in n.flags for n in nodes) >= len(nodes) // 2
    edges = sorted((w.begin_ns, w.end_ns) for n in nodes for w in n.windows)
    assert started < edges[0][0] and edges[-1][1] < time.time_ns()
    assert all(b < e for b, e in edges) and all(e <= b2 for (_, e), (b2, _) in itertools.pairwise(edges))
    assert record.host and {"threads", "cpu_governor", "load_average"} <= set(record.meta)
    assert "ground_truth_spread_pct" not in record.meta
    line = flag_summary([record], SETTINGS.max_spread_pct)
    assert line.startswith(f"flags: {len(nodes)} of {len(nodes)} measured nodes flagged") and "below_idle" in line


class FlakyMeter:
    """A real meter whose ``end`` refuses the first ``failures`` windows of node ``victim``."""

    def __init__(self, meter, victim: str, failures: int):
        self.meter, self.victim, self.failures = meter, victim, failures
        self.name = meter.name

    def begin(self, window: str) -> None:
        self.meter.begin(window)

    def discard(self, window: str) -> None:
        self.meter.discard(window)

    def end(self, window: str):
        measurement = self.meter.end(window)
        if window.startswith(f"{self.victim}@") and self.failures:
            self.failures -= 1
            measurement.valid = False  # an invalid measurement that did not raise is refused all the same
            if self.failures % 2:
                raise MeterError(f"window '{window}': counter did not advance", measurement)
        return measurement


@pytest.mark.parametrize("failures", [RETRIES, RETRIES + 1])
def test_a_refused_window_is_retried_then_the_run_stops(traced, powercap, failures):
    victim = traced.record.root.id
    meter = open_meter("rapl", {"root": str(powercap.root)})
    profiler = Profiler(RunSettings(window_seconds=0.01, rounds=1, idle_seconds=0), meter=FlakyMeter(meter, victim,
                                                                                                     failures))
    try:
        if failures > RETRIES:
            with pytest.raises(MeterFailure, match=f"node '{victim}', {RETRIES} retries failed too"):
                profiler.profile(traced)
            return
        record = profiler.profile(traced)
    finally:
        meter.close()
    assert {n.id for n in record.nodes() if "retried" in n.flags} == {victim}
    assert record.root.ground_truth_energy > 0 and len(record.root.windows) == 1


def test_stop_signals_raise_with_128_plus_the_signal_and_wait_for_an_append():
    with StopSignals() as signals:
        with pytest.raises(Stopped) as info:
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(1)
        assert info.value.status == 129
        appended = []
        with pytest.raises(Stopped) as info, signals.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            appended.append("whole tree")
        assert appended and info.value.status == 143
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
