"""The ``log-ridge`` baseline (``--config log-ridge``): every node from its own features, no tree.

Per level, one scikit-learn ``StandardScaler`` + ``Ridge(alpha=1e-2)`` on log(energy): at ml level
one per primitive kind (a kind absent from training is predicted by the one fitted on all training
leaves), one for all modules, one for all models.  Leaves are predicted here too (the leaf
regressors' estimates are ignored), so its trees need not add up: the preset pairs it with the
reconcile policy ``none``.  Features per feature set:

- ``all``: log1p(flops), log1p(mem_bytes), log(times_mean), log(gpu_energy_mean), log(batch·seq),
  cpu, gpu, gpu_mem, gpu_clk, mem;
- ``no-gpu-energy``: the same without log(gpu_energy_mean);
- ``model``: log1p(flops), log1p(mem_bytes), log(batch), log(seq), log1p(flops)²,
  log1p(mem_bytes)², log1p(flops)·log1p(mem_bytes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from irene_core.errors import IreneError
from irene_core.predictor.aggregators.base import Aggregator, NodeData

ALPHA = 1e-2
FEATURE_SETS = ("all", "no-gpu-energy", "model")
#: group labels besides ``leaf:<kind>``
LEAVES, MODULES, MODELS = "leaves", "modules", "models"


def log_ridge_features(data: NodeData, feature_set: str) -> np.ndarray:
    """The baseline's feature columns for every node (see the module docstring)."""

    def col(name: str) -> np.ndarray:
        values = data.col(name)
        if values is None:
            raise IreneError(f"the log-ridge baseline ({feature_set} features) needs '{name}' on every node")
        return values

    flops, mem = np.log1p(col("flops")), np.log1p(col("mem_bytes"))
    batch, seq = col("batch_size"), col("seq_len")
    if feature_set == "model":
        return np.column_stack([flops, mem, np.log(batch), np.log(seq), flops**2, mem**2, flops * mem])
    if feature_set not in FEATURE_SETS:
        raise IreneError(
            f"the log-ridge baseline has no '{feature_set}' features (choose from: {', '.join(FEATURE_SETS)})"
        )
    energy = [np.log(col("gpu_energy_mean"))] if feature_set == "all" else []
    rest = [col(name) for name in ("cpu", "gpu", "gpu_mem", "gpu_clk", "mem")]
    return np.column_stack([flops, mem, np.log(col("times_mean")), *energy, np.log(batch * seq), *rest])


class LogRidge(Aggregator):
    """The log-ridge baseline for every node, leaves included (see the module docstring)."""

    name = "log-ridge"

    def __init__(self, feature_set: str):
        self.feature_set = feature_set
        self.groups_: list[str] = []
        self.mean_ = self.scale_ = self.coef_ = np.zeros((0, 0))
        self.intercept_ = np.zeros(0)

    @staticmethod
    def _group(data: NodeData) -> np.ndarray:
        """Each node's group label: ``leaf:<kind>`` at ml level, ``modules`` or ``models`` above."""
        groups = np.where(data.table.level == "model", MODELS, MODULES).astype(object)
        ml = data.table.level == "ml"
        groups[ml] = np.array([f"leaf:{kind}" for kind in data.kinds[ml]], dtype=object)
        return groups

    def fit(self, data: NodeData, leaf_estimates: np.ndarray) -> dict[str, Any]:
        F, groups = log_ridge_features(data, self.feature_set), self._group(data)
        usable = (data.table.truth > 0) & ~data.table.borrowed & np.isfinite(F).all(axis=1)
        ml = data.table.level == "ml"
        wanted = {g: usable & (groups == g) for g in sorted(set(groups[usable]))}
        wanted[LEAVES] = usable & ml
        fitted = {}
        for group, rows in wanted.items():
            if rows.any():
                model = make_pipeline(StandardScaler(), Ridge(alpha=ALPHA))
                fitted[group] = model.fit(F[rows], np.log(data.table.truth[rows]))
        if not {MODULES, MODELS, LEAVES} <= set(fitted):
            raise IreneError("the log-ridge baseline needs training nodes with a positive energy at every level")
        self.groups_ = list(fitted)
        self.mean_ = np.array([m[0].mean_ for m in fitted.values()])
        self.scale_ = np.array([m[0].scale_ for m in fitted.values()])
        self.coef_ = np.array([m[1].coef_ for m in fitted.values()])
        self.intercept_ = np.array([m[1].intercept_ for m in fitted.values()])
        return {"groups": {g: int(rows.sum()) for g, rows in wanted.items() if g in fitted}}

    def predict(self, data: NodeData, leaf_estimates: np.ndarray) -> np.ndarray:
        F, groups = log_ridge_features(data, self.feature_set), self._group(data)
        index = {g: i for i, g in enumerate(self.groups_)}
        leaves = index[LEAVES]
        which = np.array([index.get(g, leaves) for g in groups], dtype=int)
        Z = (F - self.mean_[which]) / self.scale_[which]
        estimates: np.ndarray = np.exp(np.einsum("ij,ij->i", Z, self.coef_[which]) + self.intercept_[which])
        return estimates

    def get_state(self) -> dict[str, Any]:
        return {
            "groups": self.groups_,
            "mean": self.mean_,
            "scale": self.scale_,
            "coef": self.coef_,
            "intercept": self.intercept_,
        }

    def set_state(self, state: dict[str, Any]) -> LogRidge:
        self.groups_ = list(state["groups"])
        self.mean_, self.scale_ = np.asarray(state["mean"], float), np.asarray(state["scale"], float)
        self.coef_, self.intercept_ = np.asarray(state["coef"], float), np.asarray(state["intercept"], float)
        return self
