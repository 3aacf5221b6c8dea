"""The ``unstructured`` aggregator (an ablation): one linear regressor over each inner node's own
features, no tree."""

from __future__ import annotations

from typing import Any

import numpy as np

from irene_core.errors import IreneError
from irene_core.predictor.aggregators.base import Aggregator, NodeData
from irene_core.predictor.estimators import RelativeLinear


class Unstructured(Aggregator):
    """One linear regressor (relative loss) over every inner node's own raw features."""

    name = "unstructured"

    def __init__(self) -> None:
        self.model_: RelativeLinear | None = None

    def _design(self, data: NodeData) -> np.ndarray:
        return np.hstack([data.X, np.ones((len(data.X), 1))])

    def fit(self, data: NodeData, leaf_estimates: np.ndarray) -> dict[str, Any]:
        rows = ~data.table.is_leaf & (data.table.truth > 0)
        if not rows.any():
            raise IreneError("no inner node with a positive ground truth: cannot train the unstructured regressor")
        self.model_ = RelativeLinear(1e-8).fit(self._design(data)[rows], data.table.truth[rows])
        return {"inner_rows": int(rows.sum())}

    def predict(self, data: NodeData, leaf_estimates: np.ndarray) -> np.ndarray:
        assert self.model_ is not None  # set by fit / set_state
        direct = np.maximum(self.model_.predict(self._design(data)), 0.0)
        return np.where(data.table.is_leaf, leaf_estimates, direct)

    def get_state(self) -> dict[str, Any]:
        assert self.model_ is not None  # only fitted aggregators are saved
        return {"model": self.model_.get_state()}

    def set_state(self, state: dict[str, Any]) -> Unstructured:
        self.model_ = RelativeLinear.from_state(state["model"])
        return self
