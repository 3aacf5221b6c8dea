"""Training ranges and the ``extrapolated`` flag.

For every canonical primitive kind the predictor keeps the range, over its training leaves, of batch,
sequence length, flops and bytes moved (:data:`RANGE_FEATURES`, log scale; a feature the records lack
sets no bound).  A leaf's *distance* above (below) the training data is the largest amount, in
natural-log units, by which one of them lies above (below) its kind's range; a module's or model's
are its leaves' weighted by their predicted energy: a BERT root whose pooler alone lies below the
training sizes is barely outside.  A leaf is extrapolated when it lies outside (a distance > 0) or
when its kind has no training leaves and the generic regressor predicts it; a module or model when
any descendant is.  How far outside a node lies widens its interval
(:meth:`~irene_core.predictor.uncertainty.IntervalModel.widening`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from irene_core.tree.table import TreeTable

#: Features whose training range defines extrapolation (log scale).
RANGE_FEATURES: tuple[str, ...] = ("batch_size", "seq_len", "flops", "mem_bytes_moved")
#: The range features of predictors saved before ranges named theirs.
_LEGACY_RANGE_FEATURES: tuple[str, ...] = ("batch_size", "seq_len", "flops", "mem_bytes")
#: A log-scale bound no feature reaches.
UNBOUNDED = 1e3


def log_features(table: TreeTable, features: tuple[str, ...] = RANGE_FEATURES) -> np.ndarray:
    """The range features of every node in log scale (``log1p`` for flops and bytes, NaN if missing)."""
    cols = np.column_stack([table.column(f) for f in features])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log1p(np.where(cols >= 0, cols, np.nan))


def propagate_up(table: TreeTable, values: np.ndarray) -> np.ndarray:
    """Each node's maximum of ``values`` (per column) over itself and its descendants."""
    return _propagate(table, values, np.maximum)


def leaf_sum(table: TreeTable, values: np.ndarray) -> np.ndarray:
    """Each node's Σ of ``values`` (per column) over the leaves of its subtree (a leaf: its own)."""
    return _propagate(table, np.where(_column(table.is_leaf, values), values, 0.0), np.add)


def _leaf_weighted(table: TreeTable, values: np.ndarray, energies: np.ndarray) -> np.ndarray:
    """A leaf's ``values`` (a row per node), an inner node's its leaves' weighted by their predicted
    ``energies`` (where its leaves weigh nothing, their largest)."""
    leaf = table.is_leaf
    weight = np.where(leaf, np.clip(np.nan_to_num(energies), 0.0, None), 0.0)
    total = leaf_sum(table, weight)[:, None]
    weighted = leaf_sum(table, values * weight[:, None]) / np.where(total > 0, total, 1.0)
    out: np.ndarray = np.where(leaf[:, None], values, np.where(total > 0, weighted, propagate_up(table, values)))
    return out


def _column(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``mask`` shaped to broadcast against ``values`` (one entry per node, or a row per node)."""
    return mask.reshape(-1, *([1] * (values.ndim - 1)))


def _propagate(table: TreeTable, values: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
    """``values`` folded bottom up with ``ufunc``: each node combined with every descendant."""
    out = values.astype(float, copy=True)
    for depth in range(int(table.depth.max(initial=0)), 0, -1):
        rows = np.flatnonzero(table.depth == depth)
        ufunc.at(out, table.parent[rows], out[rows])
    return out


@dataclass
class Ranges:
    """Per canonical kind: ``(low, high)`` of :data:`RANGE_FEATURES` in log scale over its training leaves."""

    bounds: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    features: tuple[str, ...] = RANGE_FEATURES

    @classmethod
    def fit(cls, table: TreeTable, rows: np.ndarray, kinds: np.ndarray) -> Ranges:
        """The ranges of the leaves ``rows`` of ``table`` by kind (``kinds``, one per row of ``table``)."""
        ranges = cls()
        logs, kinds = log_features(table)[rows], kinds[rows]
        for kind in sorted(set(kinds)):
            rows = logs[kinds == kind]
            with np.errstate(invalid="ignore"), warnings.catch_warnings():  # a feature missing on all: no bound
                warnings.simplefilter("ignore", RuntimeWarning)
                low, high = np.nanmin(rows, axis=0), np.nanmax(rows, axis=0)
            ranges.bounds[kind] = (np.nan_to_num(low, nan=-UNBOUNDED), np.nan_to_num(high, nan=UNBOUNDED))
        return ranges

    def distance(self, table: TreeTable, rows: np.ndarray, kinds: np.ndarray) -> np.ndarray:
        """Log distances ``(above, below)`` of the leaves ``rows`` of ``table`` outside their kind's
        range, one row each (0 inside or for a kind without a range); ``kinds`` has one entry per row
        of ``table``."""
        logs, kinds = log_features(table, self.features)[rows], kinds[rows]
        out = np.zeros((len(kinds), 2))
        for kind in set(kinds):
            if kind not in self.bounds:
                continue
            rows = kinds == kind
            low, high = self.bounds[kind]
            for column, excess in enumerate((logs[rows] - high, low - logs[rows])):
                out[rows, column] = np.nan_to_num(np.nanmax(np.fmax(excess, 0.0), axis=1, initial=0.0), nan=0.0)
        return out

    def node_distance(self, table: TreeTable, kinds: np.ndarray, energies: np.ndarray | None) -> np.ndarray:
        """Every node's log distances ``(above, below)`` (:meth:`node_extent`)."""
        return self.node_extent(table, kinds, energies)[0]

    def node_extent(
        self, table: TreeTable, kinds: np.ndarray, energies: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every node's log distances ``(above, below)`` and the shares of it that lie outside each way;
        ``kinds`` and the predicted ``energies`` have one entry per node.  A leaf's share is 1 outside, 0
        inside; an inner node's distances and shares are its leaves' weighted by their predicted energy:
        a root whose pooler alone lies below the training sizes is barely outside (where its leaves weigh
        nothing, or without ``energies``, their largest)."""
        leaf = table.is_leaf
        d = np.zeros((len(table), 2))
        d[leaf] = self.distance(table, leaf, kinds)
        outside = (d > 0).astype(float)
        if energies is None:
            return propagate_up(table, d), propagate_up(table, outside)
        return _leaf_weighted(table, d, energies), _leaf_weighted(table, outside, energies)

    def get_state(self) -> dict[str, Any]:
        kinds = sorted(self.bounds)
        width = len(self.features)
        return {
            "kinds": kinds,
            "features": list(self.features),
            "low": np.array([self.bounds[k][0] for k in kinds]).reshape(len(kinds), width),
            "high": np.array([self.bounds[k][1] for k in kinds]).reshape(len(kinds), width),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Ranges:
        kinds = list(state["kinds"])
        features = tuple(str(f) for f in state.get("features", _LEGACY_RANGE_FEATURES))
        low, high = np.asarray(state["low"], float), np.asarray(state["high"], float)
        shape = (len(kinds), len(features))
        if low.shape != shape or high.shape != shape:
            raise ValueError(f"range arrays have shapes {low.shape} and {high.shape}, expected {shape}")
        return cls({k: (low[i], high[i]) for i, k in enumerate(kinds)}, features)


def describe_extrapolation(kinds: Iterable[str]) -> str:
    """``Linear, MatMul`` (sorted, unique) for a notice."""
    return ", ".join(sorted(set(kinds)))
