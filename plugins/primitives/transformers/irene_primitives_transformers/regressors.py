"""Regressors for transformer primitives.

Every trainable primitive uses IrEne's :class:`~irene_core.predictor.leaf_regressor.LeafRegressor` (its own
instance, fitted on that primitive's leaves only): log-space ridge or the linear wall-energy model,
chosen by leave-one-model-out inside the training data, plus a shape smoother; or, with
``method="ols"``, the paper's OLS on standardised features.  Primitives that run no kernel in
inference (Dropout, Identity) get :class:`DispatchEnergyRegressor`.
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


class DispatchEnergyRegressor:
    """A primitive that runs no kernel in inference (the identity under ``model.eval()``): a call costs
    only its dispatch, the device's power over a few µs, whatever the tensor's size.  Fitted on measured
    calls, it predicts their geometric mean (an H200 measured with NVML: 0.39 mJ per Dropout call, the
    idle power over 3 µs); untrained, or without such calls, 0 J."""

    def __init__(self, feature_names: Sequence[str] = (), **_: Any):
        self.feature_names = tuple(feature_names)
        self.energy_ = 0.0

    def fit(
        self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, sample_weight: np.ndarray | None = None
    ) -> DispatchEnergyRegressor:
        import numpy as np

        measured = np.asarray(y, float)
        measured = measured[measured > 0]
        self.energy_ = float(np.exp(np.log(measured).mean())) if len(measured) else 0.0
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        import numpy as np

        return np.full(len(X), self.energy_)

    def get_state(self) -> dict[str, Any]:
        return {"energy": self.energy_}

    def set_state(self, state: dict[str, Any]) -> DispatchEnergyRegressor:
        energy = float(state.get("energy", 0.0))  # saved before it learnt the dispatch: 0 J
        if not energy >= 0:  # NaN fails too
            raise ValueError(f"a dispatch energy must be >= 0 J, got {energy}")
        self.energy_ = energy
        return self

    def describe(self) -> str:
        if self.energy_ > 0:
            return f"{self.energy_ * 1e3:.3g} mJ per call: its dispatch (no kernel in inference)"
        return "0 J (no kernel in inference)"
