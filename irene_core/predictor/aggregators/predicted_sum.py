"""The ``predicted-sum`` aggregator: an inner node is the sum of its children (own ops = 0)."""

from __future__ import annotations

import numpy as np

from irene_core.predictor.aggregators.base import Aggregator, NodeData, bottom_up


class PredictedSum(Aggregator):
    """Every inner node is the sum of its children."""

    name = "predicted-sum"

    def predict(self, data: NodeData, leaf_estimates: np.ndarray) -> np.ndarray:
        return bottom_up(data.table, leaf_estimates, lambda idx, E: data.table.children_sum(E)[idx])
