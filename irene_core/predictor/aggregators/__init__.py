"""Aggregators: from the leaves' estimates to a raw estimate for every inner node, one module each.

- ``own-ops`` (default, :mod:`.own_ops`): the children's sum times a learned own-ops factor.
- ``predicted-sum`` (:mod:`.predicted_sum`): the sum of the children (own ops = 0).
- ``unstructured`` (:mod:`.unstructured`): one linear regressor over each inner node's own features (ablation).
- ``end2end`` / ``stepwise`` (:mod:`.paper`): the paper's weighted sums.
- ``log-ridge`` (:mod:`.log_ridge`): the baseline of issue 13, every node (leaves too) from its own features.

Whatever the aggregator, :mod:`irene_core.predictor.reconcile` then makes the output tree add up
(unless its policy is ``none``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from irene_core.predictor.aggregators.base import Aggregator, NodeData, bottom_up, teacher_mask

if TYPE_CHECKING:
    from irene_core.predictor.config import PredictorConfig

__all__ = ["Aggregator", "NodeData", "bottom_up", "make_aggregator", "teacher_mask"]


def make_aggregator(config: PredictorConfig) -> Aggregator:
    """A fresh, unfitted aggregator for ``config.aggregator`` (modules imported on demand)."""
    if config.aggregator == "own-ops":
        from irene_core.predictor.aggregators.own_ops import OwnOpsAggregator

        return OwnOpsAggregator(tuple(config.own_ops_alphas), anchor=config.own_ops_anchor)
    if config.aggregator == "predicted-sum":
        from irene_core.predictor.aggregators.predicted_sum import PredictedSum

        return PredictedSum()
    if config.aggregator == "unstructured":
        from irene_core.predictor.aggregators.unstructured import Unstructured

        return Unstructured()
    if config.aggregator == "log-ridge":
        from irene_core.predictor.aggregators.log_ridge import LogRidge

        return LogRidge(config.features)
    from irene_core.predictor.aggregators.paper import WeightedSumAggregator

    return WeightedSumAggregator(
        config.aggregator, config.tau, config.degree, config.epochs, config.learning_rate, config.seed
    )
