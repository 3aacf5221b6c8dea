"""90 % prediction intervals and the ``extrapolated`` flag.

**Training ranges.**  For every canonical primitive kind the predictor keeps the range, over its
training leaves, of batch, sequence length, flops and bytes (log scale).  A leaf's *distance*
outside the training data is the largest amount (natural-log units) by which one of them lies
outside its kind's range; a module's or model's is the largest of its descendants'.  A leaf is
extrapolated when it lies outside (distance > 0) or when its kind has no training leaves and is
predicted by the generic regressor; a module or model when any descendant is.

**Intervals.**  When the predictor is fitted, it is re-fitted on a few folds grouped by model
(:data:`FOLDS`), and every held-out node's log residual ``log(gt / pred)`` is recorded.  The
interval of a node is ``pred · exp([q₅ − s·d − c, q₉₅ + s·d + c])`` where ``q₅``, ``q₉₅`` are the
residual quantiles of its group (its primitive kind at ml level when that kind has
:data:`MIN_KIND_RESIDUALS` held-out leaves, else its level), ``d`` its distance outside the
training data, ``s`` the widening per log unit of its level, estimated on the size fold's held-out nodes that
lay outside its training ranges, and ``c`` the widening of a device calibration (see
:mod:`irene_core.predictor.calibration`).  Every node's interval is its own (a parent's is not the
sum of its children's).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from irene_core.tree.table import TreeTable

#: Folds of the out-of-fold step that measures residuals: FOLDS − 1 grouped by model, one by size.
FOLDS = 4
#: Held-out leaves a primitive kind needs for its own residual quantiles.
MIN_KIND_RESIDUALS = 50
#: Held-out nodes outside their fold's range needed to estimate the widening per log unit.
MIN_OUTSIDE = 20
#: Widening per log unit outside the training data for a level where it cannot be estimated.
DEFAULT_SLOPE = 1.0
#: The interval's coverage (two-sided, central).
COVERAGE = 0.90
#: Features whose training range defines extrapolation (log scale).
RANGE_FEATURES: tuple[str, ...] = ("batch_size", "seq_len", "flops", "mem_bytes")

_TAIL = (1.0 - COVERAGE) / 2
_UNBOUNDED = 1e3  # a log-scale bound no feature reaches


def log_features(table: TreeTable) -> np.ndarray:
    """The range features of every node in log scale (``log1p`` for flops and bytes, NaN if missing)."""
    cols = np.column_stack([table.column(f) for f in RANGE_FEATURES])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log1p(np.where(cols >= 0, cols, np.nan))


def propagate_up(table: TreeTable, values: np.ndarray) -> np.ndarray:
    """Each node's maximum of ``values`` over itself and its descendants."""
    out = values.astype(float).copy()
    for depth in range(int(table.depth.max(initial=0)), 0, -1):
        rows = np.flatnonzero(table.depth == depth)
        np.maximum.at(out, table.parent[rows], out[rows])
    return out


@dataclass
class Ranges:
    """Per canonical kind: ``(low, high)`` of :data:`RANGE_FEATURES` in log scale over its training leaves."""

    bounds: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def fit(cls, logs: np.ndarray, kinds: np.ndarray) -> Ranges:
        ranges = cls()
        for kind in sorted(set(kinds)):
            rows = logs[kinds == kind]
            with np.errstate(invalid="ignore"), warnings.catch_warnings():  # a feature missing on all: no bound
                warnings.simplefilter("ignore", RuntimeWarning)
                low, high = np.nanmin(rows, axis=0), np.nanmax(rows, axis=0)
            ranges.bounds[kind] = (np.nan_to_num(low, nan=-_UNBOUNDED), np.nan_to_num(high, nan=_UNBOUNDED))
        return ranges

    def distance(self, logs: np.ndarray, kinds: np.ndarray) -> np.ndarray:
        """Log distance of each leaf outside its kind's range (0 inside or for a kind without a range)."""
        out = np.zeros(len(kinds))
        for kind in set(kinds):
            if kind not in self.bounds:
                continue
            rows = kinds == kind
            low, high = self.bounds[kind]
            excess = np.fmax(np.fmax(low - logs[rows], logs[rows] - high), 0.0)
            out[rows] = np.nan_to_num(np.nanmax(excess, axis=1, initial=0.0), nan=0.0)
        return out

    def get_state(self) -> dict[str, Any]:
        kinds = sorted(self.bounds)
        return {
            "kinds": kinds,
            "low": np.array([self.bounds[k][0] for k in kinds]).reshape(len(kinds), len(RANGE_FEATURES)),
            "high": np.array([self.bounds[k][1] for k in kinds]).reshape(len(kinds), len(RANGE_FEATURES)),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Ranges:
        kinds = list(state["kinds"])
        low, high = np.asarray(state["low"], float), np.asarray(state["high"], float)
        shape = (len(kinds), len(RANGE_FEATURES))
        if low.shape != shape or high.shape != shape:
            raise ValueError(f"range arrays have shapes {low.shape} and {high.shape}, expected {shape}")
        return cls({k: (low[i], high[i]) for i, k in enumerate(kinds)})


def interval_group(level: str, kind: str) -> str:
    """The residual group of a node: its kind at ml level, else its level."""
    return kind if level == "ml" else level


@dataclass
class Residuals:
    """Held-out log residuals with each node's group and distance outside its fold's training data."""

    log_ratio: list[np.ndarray] = field(default_factory=list)
    groups: list[np.ndarray] = field(default_factory=list)
    levels: list[np.ndarray] = field(default_factory=list)
    distance: list[np.ndarray] = field(default_factory=list)

    def add(self, truth: np.ndarray, pred: np.ndarray, levels: np.ndarray, kinds: np.ndarray, distance: np.ndarray
            ) -> None:
        ok = (truth > 0) & (pred > 0)
        self.log_ratio.append(np.log(truth[ok] / pred[ok]))
        self.levels.append(levels[ok])
        self.groups.append(np.array([interval_group(lv, k) for lv, k in zip(levels[ok], kinds[ok], strict=True)],
                                    dtype=object))
        self.distance.append(distance[ok])

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(log_ratio, levels, groups, distance)`` of every residual."""
        if not self.log_ratio:
            empty = np.zeros(0, dtype=object)
            return np.zeros(0), empty, empty, np.zeros(0)
        return (np.concatenate(self.log_ratio), np.concatenate(self.levels), np.concatenate(self.groups),
                np.concatenate(self.distance))


@dataclass
class IntervalModel:
    """Residual quantiles per group, the widening per log unit outside the training data, the
    training ranges, and a calibration's extra widening per group."""

    quantiles: dict[str, tuple[float, float]]
    slope: dict[str, float]
    ranges: Ranges
    extra: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fit(cls, by_model: Residuals, by_size: Residuals, ranges: Ranges) -> IntervalModel:
        """Quantiles from the folds by model, the widening per log unit from the size fold's nodes
        outside its training data."""
        r, levels, groups, _ = by_model.arrays()
        quantiles: dict[str, tuple[float, float]] = {}
        for name, rows in [(lv, levels == lv) for lv in ("ml", "module", "model")] + [
            (g, groups == g) for g in sorted(set(groups[levels == "ml"]))
        ]:
            if rows.sum() >= (MIN_KIND_RESIDUALS if name not in ("ml", "module", "model") else 1):
                low, high = np.quantile(r[rows], [_TAIL, 1.0 - _TAIL])
                quantiles[name] = (min(float(low), 0.0), max(float(high), 0.0))
        model = cls(quantiles, {}, ranges)
        r, levels, groups, d = by_size.arrays()
        for level in ("ml", "module", "model"):
            outside = (d > 0) & (levels == level)
            if outside.sum() >= MIN_OUTSIDE:
                low, high = model.base(levels[outside], groups[outside])
                need = np.maximum(np.maximum(low - r[outside], r[outside] - high), 0.0)
                model.slope[level] = float(np.quantile(need / d[outside], COVERAGE))
        return model

    def base(self, levels: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log offsets ``(q₅, q₉₅)`` of each node's group (its level's when the group has none; 0 without residuals)."""
        low, high = np.zeros(len(levels)), np.zeros(len(levels))
        for i, (level, group) in enumerate(zip(levels, groups, strict=True)):
            low[i], high[i] = self.quantiles.get(group) or self.quantiles.get(level) or (0.0, 0.0)
        return low, high

    def bounds(self, pred: np.ndarray, levels: np.ndarray, groups: np.ndarray, distance: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` of the 90 % interval around each prediction ``pred`` (>= 0)."""
        low, high = self.base(levels, groups)
        extra = np.array([self.extra.get(g, self.extra.get(lv, 0.0)) for lv, g in zip(levels, groups, strict=True)])
        slope = np.array([self.slope.get(lv, DEFAULT_SLOPE) for lv in levels])
        widen = slope * distance + extra
        return pred * np.exp(low - widen), pred * np.exp(high + widen)

    def widened(self, extra: Mapping[str, float]) -> IntervalModel:
        """A copy whose groups are widened by ``extra`` (log units) on top of any earlier widening."""
        merged = dict(self.extra)
        for group, value in extra.items():
            merged[group] = merged.get(group, 0.0) + value
        return IntervalModel(dict(self.quantiles), self.slope, self.ranges, merged)

    def get_state(self) -> dict[str, Any]:
        names = sorted(self.quantiles)
        return {
            "groups": names,
            "quantiles": np.array([self.quantiles[g] for g in names], float).reshape(len(names), 2),
            "slope": dict(sorted(self.slope.items())),
            "ranges": self.ranges.get_state(),
            "extra": dict(sorted(self.extra.items())),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> IntervalModel:
        names = list(state["groups"])
        q = np.asarray(state["quantiles"], float)
        if q.shape != (len(names), 2):
            raise ValueError(f"interval quantiles have shape {q.shape}, expected {(len(names), 2)}")
        if (q[:, 0] > 0).any() or (q[:, 1] < 0).any():
            raise ValueError("interval quantiles must satisfy low <= 0 <= high")
        slope, extra = ({str(k): float(v) for k, v in dict(state[key]).items()} for key in ("slope", "extra"))
        if any(not np.isfinite(v) or v < 0 for v in [*slope.values(), *extra.values()]):
            raise ValueError("interval slopes and widening must be finite and >= 0")
        return cls({g: (float(q[i, 0]), float(q[i, 1])) for i, g in enumerate(names)}, slope,
                   Ranges.from_state(state["ranges"]), extra)


def describe_extrapolation(kinds: Iterable[str]) -> str:
    """``Linear, MatMul`` (sorted, unique) for a notice."""
    return ", ".join(sorted(set(kinds)))
