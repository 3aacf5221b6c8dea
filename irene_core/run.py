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

from irene_core import __version__
from irene_core.errors import IreneError
from irene_core.features import ResourceSampler
from irene_core.framework import TracedModel
from irene_core.meter import Measurement, Meter
from irene_core.tree import Node, TreeRecord


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


class MeterFailure(IreneError):
    """The meter failed while a node was measured; the tree in progress is discarded."""


def host_label(device: str) -> str:
    """A hardware label for records measured here, e.g. ``myhost/x86_64/cpu``."""
    return f"{socket.gethostname()}/{platform.machine()}/{device}"


def _measure_window(meter: Meter, window: str, action: Callable[[], object]) -> tuple[object, Measurement]:
    meter.begin(window)
    try:
        result = action()
    except BaseException:
        try:
            meter.end(window)
        except Exception:  # noqa: BLE001 - the action's own error is the one to report
            pass
        raise
    try:
        measurement = meter.end(window)
    except IreneError as exc:
        raise MeterFailure(f"meter '{meter.name}' failed during window '{window}': {exc}") from exc
    if not measurement.valid:
        raise MeterFailure(f"meter '{meter.name}' marked window '{window}' invalid: {'; '.join(measurement.warnings)}")
    return result, measurement


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
        _, m = _measure_window(self.meter, "idle", lambda: time.sleep(self.settings.idle_seconds))
        return m.mean_power_w

    def profile(self, traced: TracedModel, on_node: Callable[[Node], None] | None = None) -> TreeRecord:
        """A copy of ``traced.record`` with resource features and (with a meter) ground truth."""
        record = traced.record.model_copy(deep=True)
        spreads: dict[str, float] = {}
        for node in record.nodes():
            spread = self._profile_node(traced, node)
            if spread is not None:
                spreads[node.id] = spread
            if on_node:
                on_node(node)
            if self.settings.cooldown_seconds:
                time.sleep(self.settings.cooldown_seconds)
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

    def _profile_node(self, traced: TracedModel, node: Node) -> float | None:
        per_call: list[float] = []
        calls = 0
        seconds = 0.0
        feature_rounds: list[dict[str, float]] = []
        for round_ in range(self.settings.rounds):
            window = f"{node.id}@{round_}"
            t0 = time.monotonic()
            replay = lambda: traced.replay(node.id, seconds=self.settings.window_seconds)  # noqa: E731
            if self.meter is not None:
                result, measurement = _measure_window(self.meter, window, replay)
                per_call.append(measurement.energy_j / result.calls)
                self.warnings.extend(f"{node.id}: {w}" for w in measurement.warnings)
            else:
                result = replay()
            t1 = time.monotonic()
            calls += result.calls
            seconds += result.seconds
            if self.sampler is not None:
                feature_rounds.append(self.sampler.window(t0, t1, calls=result.calls))
        for name in {k for f in feature_rounds for k in f}:
            values = [f[name] for f in feature_rounds if name in f]
            node.features[name] = float(statistics.fmean(values))
        node.features["times_mean"] = seconds / calls
        if not per_call:
            return None
        node.ground_truth_energy = float(statistics.fmean(per_call))
        if len(per_call) < 2 or node.ground_truth_energy == 0:
            return 0.0
        return 100.0 * statistics.stdev(per_call) / node.ground_truth_energy
