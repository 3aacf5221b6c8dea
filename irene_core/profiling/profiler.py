"""The profiling loop of ``irene run``: replay every node of a traced model for a measurement window
while the resource sampler runs and, with a meter, measure its energy per call.

Energy per call = window energy / calls (the paper's protocol). Each node is measured ``rounds`` times;
the ground truth is the mean over rounds and its spread (coefficient of variation, %) goes to
``record.meta["ground_truth_spread_pct"]``.
"""

from __future__ import annotations

import platform
import socket
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from irene_core._version import __version__
from irene_core.errors import IreneError
from irene_core.metering.meter import Measurement, Meter, MeterError
from irene_core.metering.sampler import ResourceSampler
from irene_core.tracing.framework import TracedModel
from irene_core.tree.schema import Node, TreeRecord


@dataclass(frozen=True)
class RunSettings:
    """How long and how often each node is measured."""

    window_seconds: float = 0.25
    rounds: int = 1
    cooldown_seconds: float = 0.0
    idle_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.window_seconds <= 0:
            raise IreneError(f"--window-seconds must be > 0, got {self.window_seconds}")
        if self.rounds < 1:
            raise IreneError(f"--rounds must be >= 1, got {self.rounds}")
        if self.cooldown_seconds < 0 or self.idle_seconds < 0:
            raise IreneError("--cooldown and --idle-seconds must be >= 0")


@dataclass(frozen=True)
class Window:
    """One replay window: monotonic begin and end (s) and the calls it ran."""

    begin: float
    end: float
    calls: int


class MeterFailure(IreneError):
    """The meter failed while a node was measured; the tree in progress is discarded."""


def host_label(device: str) -> str:
    """A hardware label for records measured here, e.g. ``myhost/x86_64/cpu``."""
    return f"{socket.gethostname()}/{platform.machine()}/{device}"


class MeterWindow:
    """A meter window as a context manager for ``replay(around=…)``: it covers exactly the timed calls."""

    def __init__(self, meter: Meter, name: str):
        self.meter = meter
        self.name = name
        self.measurement: Measurement | None = None

    def __enter__(self) -> MeterWindow:
        self.meter.begin(self.name)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None:
            self.meter.discard(self.name)
            return
        try:
            self.measurement = self.meter.end(self.name)
        except MeterError as exc:
            raise MeterFailure(f"meter '{self.meter.name}' failed during window '{self.name}': {exc}") from exc


class Profiler:
    """Measures trees node by node with one sampler and an optional meter."""

    def __init__(self, settings: RunSettings, sampler: ResourceSampler | None = None, meter: Meter | None = None):
        self.settings = settings
        self.sampler = sampler
        self.meter = meter
        self.warnings: list[str] = []

    def idle_power(self) -> float | None:
        """Mean power (W) of the machine doing nothing, measured before profiling."""
        if self.meter is None or self.settings.idle_seconds == 0:
            return None
        try:
            return self.meter.measure(self.settings.idle_seconds, window="idle").mean_power_w
        except MeterError as exc:
            raise MeterFailure(f"meter '{self.meter.name}' failed measuring idle power: {exc}") from exc

    def profile(self, traced: TracedModel, on_node: Callable[[Node], None] | None = None) -> TreeRecord:
        """A copy of ``traced.record`` with resource features and (with a meter) ground truth.

        A node's resource features are read from the sampler after the *next* node has run, when the
        samples covering its windows exist, so no window waits for the sampler's next tick.
        """
        record = traced.record.model_copy(deep=True)
        spreads: dict[str, float] = {}
        pending: tuple[Node, list[Window]] | None = None
        for node in record.nodes():
            windows, spread = self._profile_node(traced, node)
            if spread is not None:
                spreads[node.id] = spread
            if pending is not None:
                self._resource_features(*pending)
            pending = (node, windows)
            if on_node:
                on_node(node)
            if self.settings.cooldown_seconds:
                time.sleep(self.settings.cooldown_seconds)
        if pending is not None:
            self._resource_features(*pending)
        record.meta.update(
            {
                "irene_version": __version__,
                "window_seconds": self.settings.window_seconds,
                "rounds": self.settings.rounds,
                "meter": self.meter.name if self.meter else None,
                "ground_truth_spread_pct": spreads,
            }
        )
        return record

    def _resource_features(self, node: Node, windows: list[Window]) -> None:
        """Mean over rounds of the sampler's time-weighted means for each window."""
        if self.sampler is None:
            return
        rounds = [self.sampler.window(w.begin, w.end, calls=w.calls) for w in windows]
        for name in {k for f in rounds for k in f}:
            node.features[name] = float(statistics.fmean(f[name] for f in rounds if name in f))

    def _profile_node(self, traced: TracedModel, node: Node) -> tuple[list[Window], float | None]:
        """Replay ``node`` for every round; set its latency and ground truth. Returns its windows and
        the spread of its ground truth over rounds (%, ``None`` without a meter)."""
        per_call: list[float] = []
        latencies: list[float] = []
        windows: list[Window] = []
        traced.replay(node.id, calls=1)  # warm-up: caches, lazy set-up, first-call allocations
        for round_ in range(self.settings.rounds):
            if self.meter is not None:
                window = MeterWindow(self.meter, f"{node.id}@{round_}")
                result = traced.replay(node.id, seconds=self.settings.window_seconds, around=window)
                measurement = window.measurement
                assert measurement is not None  # the Framework contract: replay enters and exits ``around``
                per_call.append(measurement.energy_j / result.calls)
                self.warnings.extend(f"{node.id}: {w}" for w in measurement.warnings)
                windows.append(Window(measurement.t_begin, measurement.t_end, result.calls))
            else:
                t0 = time.monotonic()
                result = traced.replay(node.id, seconds=self.settings.window_seconds)
                windows.append(Window(t0, time.monotonic(), result.calls))
            latencies.append(result.mean_latency)
        # latency and energy per call are both means over rounds, so they agree when rounds differ
        node.features["times_mean"] = float(statistics.fmean(latencies))
        if not per_call:
            return windows, None
        node.ground_truth_energy = float(statistics.fmean(per_call))
        if len(per_call) < 2 or node.ground_truth_energy == 0:
            return windows, 0.0
        return windows, 100.0 * statistics.stdev(per_call) / node.ground_truth_energy
