"""What every aggregator shares: the node data it sees, the bottom-up pass, and the base class."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from irene_core.tree.table import TreeTable


@dataclass
class NodeData:
    """What an aggregator sees: the table, the used raw features, and each node's primitive kind
    (canonical primitive name for leaves, ``"module"`` for inner nodes)."""

    table: TreeTable
    X: np.ndarray
    names: tuple[str, ...]
    kinds: np.ndarray

    def col(self, name: str) -> np.ndarray | None:
        return self.X[:, self.names.index(name)] if name in self.names else None


def bottom_up(
    table: TreeTable, leaf_estimates: np.ndarray, combine: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Estimates for all nodes: leaves as given, inner nodes deepest first by
    ``combine(indices, estimates_so_far)``."""
    E = np.where(table.is_leaf, leaf_estimates, 0.0)
    for idx in table.inner_by_depth:
        if len(idx):
            E[idx] = combine(idx, E)
    return E


def teacher_mask(table: TreeTable) -> np.ndarray:
    """Inner nodes usable for supervised training: positive truth on the node and all children."""
    good = table.truth > 0
    good_children = table.children_sum(good.astype(float))
    mask: np.ndarray = ~table.is_leaf & good & (good_children == table.n_children)
    return mask


class Aggregator:
    """Base: ``fit`` on training data, ``predict`` raw estimates, state for artifacts."""

    name: str  # a class attribute, or per instance where one class offers several strategies

    def fit(self, data: NodeData, leaf_estimates: np.ndarray) -> dict[str, Any]:
        return {}

    def predict(self, data: NodeData, leaf_estimates: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def counted(self, table: TreeTable, kinds: np.ndarray) -> np.ndarray:
        """Nodes that count as their parent's children (``kinds``: each node's primitive kind): all,
        unless the aggregator takes some leaves for their parent's own work."""
        return np.ones(len(table), dtype=bool)

    def unseen_structure_residuals(self) -> dict[str, np.ndarray]:
        """Per inner level (``module``, ``model``): held-out log residuals ``log(truth / estimate)`` of
        training nodes predicted by a refit that never saw their structure
        (:func:`~irene_core.predictor.novelty.structure_keys`), measured by the last ``fit``: how
        far the aggregator errs on a module of a kind no training model had.  Empty when it does not
        measure this (intervals then treat such nodes as any novel one)."""
        return {}

    def sums_children(self, data: NodeData) -> np.ndarray:
        """Inner nodes whose estimate is their children's sum and nothing of their own: they err as
        their children do.  None by default."""
        return np.zeros(len(data.table), dtype=bool)

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: dict[str, Any]) -> Aggregator:
        return self
