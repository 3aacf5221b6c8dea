"""The profiling loop of ``irene run``: replay every node of a traced model for a measurement window
while the resource sampler runs and, with a meter, measure its energy per call.

Nodes that do identical work (one class of :func:`~irene_core.tree.signature.node_classes`: the twelve
layers of bert-base) are measured once: the class's first node in tree order, its *representative*, is
measured and every other member gets its figures (resource features, energy, spreads, flags, not its
``windows``) and ``measured_as`` = the representative's id; ``RunSettings(dedup=False)`` measures every
node.  Classes are measured children first, the whole model last, so the process (allocator, caches,
thread pool) has run every part of a node before the node's warm-up starts.  Before its first window a
representative is warmed up to a steady state (:func:`~irene_core.tracing.replay.settle`);
``latency_spread_pct`` is the difference of the last two timing batches, and the flag ``not_stable``
says the warm-up gave up before two batches agreed.  A node whose single call outlasts the warm-up
budget has one batch: its first round is compared with it.

Before the first node the machine's idle power is measured in windows of ``idle_seconds`` until two
in a row agree within :data:`IDLE_SETTLED`: right after work (a GPU job, a busy test) the power falls
for seconds, and an idle figure read then would make nodes look cheaper above idle than they are.

Energy per call = window energy / calls (the paper's protocol). Each node is measured ``rounds`` times:
its ground truth is the mean over rounds, ``spread_pct`` their coefficient of variation (%),
``energy_above_idle`` the ground truth less idle power × latency, and ``windows`` each round's window
(wall-clock ns). ``flags`` mark what makes a measurement doubtful: ``spread`` (above
``max_spread_pct``), ``below_idle`` (less energy per call than the idle machine spends in the same
time), ``retried`` (a window failed and a retry succeeded). A window the meter refuses is retried
:data:`RETRIES` times; then :class:`MeterFailure` stops the run: an invalid measurement is never
written as a number.
"""

from __future__ import annotations

import math
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from irene_core._version import __version__
from irene_core.errors import IreneError
from irene_core.metering.meter import Measurement, Meter, MeterError
from irene_core.metering.sampler import ResourceSampler
from irene_core.tracing.framework import TracedModel
from irene_core.tracing.replay import Settled, WarmupPolicy, settle, spread_pct
from irene_core.tree.schema import MODEL_FEATURES, MeterWindow, Node, TreeRecord
from irene_core.tree.signature import node_classes

#: Retries of a window the meter refused before the run stops.
RETRIES = 2
#: Idle power has settled when two idle windows in a row agree within this share.
IDLE_SETTLED = 0.03
#: Idle windows measured at most before the idle power is taken as it is.
IDLE_WINDOWS = 5
#: Where Linux says how the CPU's frequency is chosen (``performance``, ``powersave``…).
GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def idle_settled(powers: Sequence[float]) -> bool:
    """Whether the last two idle windows' powers (W) agree within :data:`IDLE_SETTLED`."""
    return len(powers) >= 2 and abs(powers[-1] - powers[-2]) <= IDLE_SETTLED * abs(powers[-2])


@dataclass(frozen=True)
class RunSettings:
    """How long and how often each node is measured, when its spread is flagged, whether identical nodes
    are measured once (``dedup``) and when a node counts as warm (``warmup``)."""

    window_seconds: float = 0.25
    rounds: int = 1
    cooldown_seconds: float = 0.0
    idle_seconds: float = 2.0
    max_spread_pct: float = 5.0
    dedup: bool = True
    warmup: WarmupPolicy = field(default_factory=WarmupPolicy)

    def __post_init__(self) -> None:
        for flag, value in (("--window-seconds", self.window_seconds), ("--cooldown", self.cooldown_seconds),
                            ("--idle-seconds", self.idle_seconds), ("--max-spread-pct", self.max_spread_pct)):
            if not math.isfinite(value):
                raise IreneError(f"{flag} must be a finite number, got {value}")
        if self.window_seconds <= 0:
            raise IreneError(f"--window-seconds must be > 0, got {self.window_seconds}")
        if self.rounds < 1:
            raise IreneError(f"--rounds must be >= 1, got {self.rounds}")
        if self.cooldown_seconds < 0 or self.idle_seconds < 0:
            raise IreneError("--cooldown and --idle-seconds must be >= 0")
        if self.max_spread_pct < 0:
            raise IreneError(f"--max-spread-pct must be >= 0, got {self.max_spread_pct}")


class MeterFailure(IreneError):
    """The meter failed while a node was measured; the tree in progress is discarded."""


def host_label(device: str) -> str:
    """A hardware label for records measured here, e.g. ``myhost/x86_64/cpu``."""
    return f"{socket.gethostname()}/{platform.machine()}/{device}"


def run_conditions() -> dict[str, Any]:
    """What else ran the machine: compute threads (torch's when loaded), CPU governor, load average."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else os.cpu_count()
    try:
        governor: str | None = GOVERNOR.read_text().strip() or None
    except OSError:
        governor = None
    return {"threads": threads, "cpu_governor": governor, "load_average": list(os.getloadavg())}


def overload_warning(conditions: dict[str, Any]) -> str | None:
    """A warning when the 1-minute load exceeds the cores: other work shares the measured energy."""
    cores = os.cpu_count() or 1
    load = conditions["load_average"][0]
    if load <= cores:
        return None
    return f"load average {load:.1f} exceeds the {cores} cores: other work is in the measured energy"


class ReplayWindow:
    """One round's window as a context manager for ``replay(around=…)``: it covers exactly the timed
    calls and records its edges on the monotonic clock (for the sampler) and the wall clock (ns, for the
    record), inside the meter's window when there is a meter."""

    def __init__(self, meter: Meter | None, name: str):
        self.meter = meter
        self.name = name
        self.measurement: Measurement | None = None
        self.begin = self.end = 0.0
        self.begin_ns = self.end_ns = 0

    def __enter__(self) -> ReplayWindow:
        if self.meter is not None:
            self.meter.begin(self.name)
        self.begin_ns, self.begin = time.time_ns(), time.monotonic()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.end, self.end_ns = time.monotonic(), time.time_ns()
        if self.meter is None:
            return
        if exc_type is not None:
            self.meter.discard(self.name)
            return
        measurement = self.meter.end(self.name)
        energy = measurement.energy_j
        if not measurement.valid or not math.isfinite(energy) or energy < 0:
            raise MeterError(f"meter '{self.meter.name}', window '{self.name}': invalid energy {energy} J",
                             measurement)
        self.measurement = measurement


@dataclass(frozen=True)
class Round:
    """One measured round of a node: its window and the calls that ran in it."""

    window: ReplayWindow
    calls: int
    latency: float

    @property
    def energy_per_call(self) -> float | None:
        m = self.window.measurement
        return None if m is None else m.energy_j / self.calls

    def record(self) -> MeterWindow:
        m = self.window.measurement
        return MeterWindow(begin_ns=self.window.begin_ns, end_ns=self.window.end_ns, calls=self.calls,
                           energy_j=None if m is None else m.energy_j)


class Profiler:
    """Measures trees node by node with one sampler and an optional meter."""

    def __init__(self, settings: RunSettings, sampler: ResourceSampler | None = None, meter: Meter | None = None):
        self.settings = settings
        self.sampler = sampler
        self.meter = meter
        self.warnings: list[str] = []
        self.idle_power_w: float | None = None

    def idle_power(self) -> float | None:
        """Mean power (W) of the machine doing nothing, measured before profiling (kept for the flags):
        windows of ``idle_seconds`` until two in a row agree within :data:`IDLE_SETTLED` (a GPU's power
        falls for seconds after work), the last one's; after :data:`IDLE_WINDOWS` the last, with a warning."""
        if self.meter is None or self.settings.idle_seconds == 0:
            return None
        powers: list[float] = []
        try:
            while len(powers) < IDLE_WINDOWS:
                powers.append(self.meter.measure(self.settings.idle_seconds, window="idle").mean_power_w)
                if idle_settled(powers):
                    break
            else:
                self.warnings.append(
                    f"idle power did not settle in {IDLE_WINDOWS} windows of {self.settings.idle_seconds:g} s "
                    f"({' → '.join(f'{p:.1f}' for p in powers)} W): energy above idle and the below_idle flags "
                    "may be off; let the machine cool down or raise --idle-seconds"
                )
        except MeterError as exc:
            raise MeterFailure(f"meter '{self.meter.name}' failed measuring idle power: {exc}") from exc
        self.idle_power_w = powers[-1]
        return self.idle_power_w

    def profile(self, traced: TracedModel, on_node: Callable[[Node], None] | None = None) -> TreeRecord:
        """A copy of ``traced.record`` with resource features and (with a meter) ground truth.

        A class's resource features are read from the sampler after the *next* class has run, when the
        samples covering its windows exist, so no window waits for the sampler's next tick.
        ``meta["profiling"]`` says how many classes were measured for how many nodes, the loop's seconds
        and its floor (Σ over classes of rounds × max(window, latency) + warm-up batches × max(batch,
        latency)).
        """
        record = traced.record.model_copy(deep=True)
        conditions = run_conditions()
        classes = node_classes(record) if self.settings.dedup else [[node] for node in record.nodes()]
        pending: tuple[list[Node], list[Round]] | None = None
        start, floor, warmup = time.perf_counter(), 0.0, 0.0
        for members in reversed(classes):  # children first: every part of a node has run before it
            rounds, settled = self._profile_node(traced, members[0])
            warmup += settled.seconds
            floor += self._floor(rounds, settled)
            if pending is not None:
                self._resource_features(*pending)
            pending = (members, rounds)
            if on_node is not None:
                for node in members:
                    on_node(node)
            if self.settings.cooldown_seconds:
                time.sleep(self.settings.cooldown_seconds)
        loop = time.perf_counter() - start
        if pending is not None:
            self._resource_features(*pending)
        record.host = socket.gethostname()
        record.meta.update(
            {
                "irene_version": __version__,
                "window_seconds": self.settings.window_seconds,
                "rounds": self.settings.rounds,
                "max_spread_pct": self.settings.max_spread_pct,
                "meter": self.meter.name if self.meter else None,
                "profiling": {"nodes": sum(len(m) for m in classes), "classes": len(classes),
                              "dedup": self.settings.dedup, "loop_s": loop, "floor_s": floor, "warmup_s": warmup},
                **conditions,
            }
        )
        return record

    def _floor(self, rounds: list[Round], settled: Settled) -> float:
        """The least time a class's windows and warm-up batches can take at its latency."""
        latency = statistics.fmean(r.latency for r in rounds)
        batch = self.settings.warmup.batch_seconds
        return len(rounds) * max(self.settings.window_seconds, latency) + len(settled.medians) * max(batch, latency)

    def _resource_features(self, members: list[Node], rounds: list[Round]) -> None:
        """Mean over rounds of the sampler's time-weighted means for each window, then every member of
        the class gets the representative's figures."""
        representative = members[0]
        if self.sampler is not None:
            sampled = [self.sampler.window(r.window.begin, r.window.end, calls=r.calls) for r in rounds]
            for name in {k for f in sampled for k in f}:
                representative.features[name] = float(statistics.fmean(f[name] for f in sampled if name in f))
        measured = {k: v for k, v in representative.features.items() if k not in MODEL_FEATURES}
        for node in members[1:]:
            node.features.update(measured)
            node.ground_truth_energy = representative.ground_truth_energy
            node.spread_pct = representative.spread_pct
            node.energy_above_idle = representative.energy_above_idle
            node.latency_spread_pct = representative.latency_spread_pct
            node.flags = list(representative.flags)
            node.measured_as = representative.id

    def _measure_round(self, traced: TracedModel, node: Node, round_: int) -> tuple[Round, bool]:
        """One round of ``node``; a window the meter refuses is retried. Returns it and whether it was retried."""
        for attempt in range(RETRIES + 1):
            window = ReplayWindow(self.meter, f"{node.id}@{round_}" + (f"#retry{attempt}" if attempt else ""))
            try:
                result = traced.replay(node.id, seconds=self.settings.window_seconds, around=window)
            except MeterError as exc:
                if attempt == RETRIES:
                    raise MeterFailure(f"{exc} (node '{node.id}', {RETRIES} retries failed too)") from exc
                continue
            if window.measurement is not None:
                self.warnings.extend(f"{node.id}: {w}" for w in window.measurement.warnings)
            return Round(window, result.calls, result.mean_latency), attempt > 0
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _profile_node(self, traced: TracedModel, node: Node) -> tuple[list[Round], Settled]:
        """Warm ``node`` up, replay it for every round; set its latency, its spreads, ground truth, flags
        and windows."""
        warmup = self.settings.warmup
        settled = settle(lambda calls: traced.replay(node.id, calls=calls), warmup)
        measured = [self._measure_round(traced, node, r) for r in range(self.settings.rounds)]
        rounds = [r for r, _ in measured]
        # latency and energy per call are both means over rounds, so they agree when rounds differ
        latency = float(statistics.fmean(r.latency for r in rounds))
        node.features["times_mean"] = latency
        node.windows = [r.record() for r in rounds]
        stable = settled.stable
        node.latency_spread_pct = settled.spread_pct
        if len(settled.medians) == 1:  # one call outlasted the budget: the first round is the second batch
            node.latency_spread_pct = spread_pct(settled.medians[0], rounds[0].latency)
            stable = node.latency_spread_pct <= warmup.tolerance_pct
        flags = {"not_stable": not stable}
        per_call = [e for e in (r.energy_per_call for r in rounds) if e is not None]
        if per_call:
            energy = node.ground_truth_energy = float(statistics.fmean(per_call))
            if len(per_call) > 1:
                node.spread_pct = 100.0 * statistics.stdev(per_call) / energy if energy > 0 else 0.0
            flags["spread"] = node.spread_pct is not None and node.spread_pct > self.settings.max_spread_pct
            flags["retried"] = any(retried for _, retried in measured)
            if self.idle_power_w is not None:
                node.energy_above_idle = energy - self.idle_power_w * latency
                flags["below_idle"] = node.energy_above_idle < 0
        node.flags = [name for name, raised in flags.items() if raised]
        return rounds, settled
