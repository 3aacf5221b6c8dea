"""A power law in the work done: log E = a + b·log flops + c·log mem_bytes (each log of the value + 1e-6)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class PowerLawRegressor:
    """scikit-learn style: plain parameters, ``fit``/``predict``, JSON/array state (never pickled)."""

    def __init__(self, feature_names: Sequence[str], ridge: float = 1e-6, **_: Any):
        self.feature_names = tuple(feature_names)
        self.ridge = ridge
        self.coef_: np.ndarray | None = None

    def _design(self, X: np.ndarray) -> np.ndarray:
        cols = [self.feature_names.index(n) for n in ("flops", "mem_bytes") if n in self.feature_names]
        logs = np.log(np.clip(X[:, cols], 0.0, None) + 1e-6)
        return np.column_stack([np.ones(len(X)), logs])

    def fit(self, X: np.ndarray, y: np.ndarray, groups=None, sample_weight=None) -> PowerLawRegressor:
        A = self._design(np.asarray(X, dtype=float))
        target = np.log(np.asarray(y, dtype=float))
        self.coef_ = np.linalg.solve(A.T @ A + self.ridge * np.eye(A.shape[1]), A.T @ target)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.coef_ is None:
            raise RuntimeError("PowerLawRegressor: predict before fit")
        return np.exp(self._design(np.asarray(X, dtype=float)) @ self.coef_)

    def get_state(self) -> dict[str, Any]:
        return {"ridge": self.ridge, "coef": self.coef_}

    def set_state(self, state: dict[str, Any]) -> PowerLawRegressor:
        self.ridge = float(state["ridge"])
        self.coef_ = np.asarray(state["coef"], dtype=float)
        return self
