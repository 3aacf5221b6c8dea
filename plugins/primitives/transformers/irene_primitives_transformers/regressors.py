"""Regressors for transformer primitives.

Every trainable primitive uses IrEne's :class:`~irene_core.predictor.leaf_regressor.LeafRegressor` (its own
instance, fitted on that primitive's leaves only): log-space ridge or the linear wall-energy model,
chosen by leave-one-model-out inside the training data, plus a shape smoother; or, with
``method="ols"``, the paper's OLS on standardised features.  Primitives that run no kernel in
inference (Dropout, Identity) get :class:`ZeroEnergyRegressor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy and the regressor load when a predictor is built, not with the plugin
    import numpy as np

    from irene_core.plugin_api import LeafRegressor


def trainable_regressor(feature_names: Sequence[str], method: str = "auto", **_: Any) -> LeafRegressor:
    """Factory for a trainable primitive (extra predictor parameters are ignored)."""
    from irene_core.plugin_api import LeafRegressor

    return LeafRegressor(feature_names, method=method)


class ZeroEnergyRegressor:
    """0 J for every call: the primitive is the identity in inference (``model.eval()``)."""

    def __init__(self, feature_names: Sequence[str] = (), **_: Any):
        self.feature_names = tuple(feature_names)

    def fit(
        self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, sample_weight: np.ndarray | None = None
    ) -> ZeroEnergyRegressor:
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        import numpy as np

        return np.zeros(len(X))

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: dict[str, Any]) -> ZeroEnergyRegressor:
        return self

    def describe(self) -> str:
        return "0 J (no kernel in inference)"
