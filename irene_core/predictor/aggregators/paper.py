"""The paper's aggregator: every inner node is a weighted sum of its children.

``E(parent) = Σ_c α(c)·E(c)``, ``α(c) = 1 + tanh(w·φ(c) + b)/τ`` with one (w, b) shared by all inner
nodes; ``φ`` = the node's raw features plus the input size (batch × sequence length), standardised
on every node of the training trees (statistics from the training data only, unlike the paper's
cross-validation) and expanded to all monomials up to ``degree`` (the paper: 3).  Training
minimises, per tree, Σ over its inner nodes of ((E − gt)/gt)² with Adam (lr 1e-3, the paper's
defaults), one step per tree, in data order, for ``epochs`` epochs; (w, b) start uniform in
±1/√len(φ) like a torch ``Linear``.  Gradients are computed exactly by back-propagation through
the tree in numpy.

- ``end2end``: children are the aggregator's own predictions (leaves: the leaf regressors').
- ``stepwise``: trained on ground-truth children, applied to predicted children.
"""

from __future__ import annotations

from itertools import combinations_with_replacement
from typing import Any

import numpy as np

from irene_core.errors import IreneError
from irene_core.predictor.aggregators.base import Aggregator, NodeData, bottom_up, teacher_mask
from irene_core.tree.table import TreeTable

_BETAS = (0.9, 0.999)
_EPS = 1e-8


def monomials(Z: np.ndarray, degree: int) -> np.ndarray:
    """1, every column, and every product of up to ``degree`` columns (sklearn's order)."""
    cols = [np.ones(len(Z))]
    for d in range(1, degree + 1):
        for combo in combinations_with_replacement(range(Z.shape[1]), d):
            cols.append(np.prod(Z[:, list(combo)], axis=1))
    return np.column_stack(cols)


class _Tree:
    """One training tree, with local indices for vectorised passes up and down."""

    def __init__(self, table: TreeTable, record: int, leaf_estimates: np.ndarray, supervised: np.ndarray):
        self.nodes = np.flatnonzero(table.record_index == record)
        local = np.full(len(table), -1)
        local[self.nodes] = np.arange(len(self.nodes))
        parent = table.parent[self.nodes]
        self.parent = np.where(parent >= 0, local[np.maximum(parent, 0)], -1)
        self.depth = table.depth[self.nodes]
        self.is_leaf = table.is_leaf[self.nodes]
        self.leaf = np.where(self.is_leaf, leaf_estimates[self.nodes], 0.0)
        truth = table.truth[self.nodes]
        self.truth = np.where(truth > 0, truth, 1.0)
        self.targets = supervised[self.nodes]
        self.by_depth = [np.flatnonzero(self.depth == d) for d in range(int(self.depth.max()), 0, -1)]
        self.children = np.flatnonzero(self.parent >= 0)

    def _sum_children(self, values: np.ndarray, among: np.ndarray) -> np.ndarray:
        return np.bincount(self.parent[among], weights=values[among], minlength=len(self.nodes))

    def gradient(self, alpha: np.ndarray, teacher: bool) -> tuple[float, np.ndarray]:
        """Loss and ∂loss/∂α for every node (as a child)."""
        if teacher:
            pred = np.where(self.is_leaf, self.leaf, self._sum_children(alpha * self.truth, self.children))
        else:
            pred = self.leaf.copy()
            for level in self.by_depth:  # deepest first: parents of ``level`` get their sums
                sums = self._sum_children(alpha * pred, level)
                parents = np.unique(self.parent[level])
                pred[parents] = sums[parents]
        resid = np.where(self.targets, (pred - self.truth) / self.truth, 0.0)
        loss = float(resid @ resid)
        direct = 2 * resid / self.truth  # ∂loss/∂pred through each node's own term
        up = np.zeros(len(self.nodes))  # ∂loss/∂pred of the parent, seen from each child
        if teacher:
            up[self.children] = direct[self.parent[self.children]]
            return loss, up * self.truth
        total = direct.copy()  # ∂loss/∂pred including everything above the node
        for level in reversed(self.by_depth):  # shallowest first
            up[level] = total[self.parent[level]]
            total[level] += alpha[level] * up[level]
        return loss, up * pred


class WeightedSumAggregator(Aggregator):
    """The paper's end2end (default) or stepwise training of α."""

    def __init__(
        self,
        strategy: str = "end2end",
        tau: float = 10.0,
        degree: int = 3,
        epochs: int = 8,
        learning_rate: float = 1e-3,
        seed: int = 13370,
    ):
        self._configure(strategy, tau, degree, epochs, learning_rate, seed)
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.weight_: np.ndarray | None = None
        self.bias_: float = 0.0

    def _configure(self, strategy: str, tau: float, degree: int, epochs: int, learning_rate: float, seed: int) -> None:
        if strategy not in ("end2end", "stepwise"):
            raise IreneError(f"unknown weighted-sum strategy '{strategy}'")
        self.name = strategy
        self.tau = tau
        self.degree = degree
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.seed = seed

    def _raw(self, data: NodeData) -> np.ndarray:
        size = data.table.column("batch_size") * data.table.column("seq_len")
        return np.column_stack([data.X, size])

    def _phi(self, data: NodeData) -> np.ndarray:
        return monomials((self._raw(data) - self.mean_) / self.scale_, self.degree)

    def _alpha(self, phi: np.ndarray, weight: np.ndarray, bias: float) -> tuple[np.ndarray, np.ndarray]:
        """α and dα/dz for z = φ·w + b."""
        th = np.tanh(phi @ weight + bias)
        return 1.0 + th / self.tau, (1.0 - th**2) / self.tau

    def fit(self, data: NodeData, leaf_estimates: np.ndarray) -> dict[str, Any]:
        t = data.table
        raw = self._raw(data)
        self.mean_ = raw.mean(axis=0)
        scale = raw.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        phi = self._phi(data)
        teacher = self.name == "stepwise"
        supervised = teacher_mask(t) if teacher else (~t.is_leaf & (t.truth > 0))
        trees = [_Tree(t, r, leaf_estimates, supervised) for r in range(len(t.records))]
        trees = [tree for tree in trees if tree.targets.any()]
        if not trees:
            raise IreneError(f"no inner node with ground truth to train the {self.name} aggregator on")
        rng = np.random.default_rng(self.seed)
        bound = 1.0 / np.sqrt(phi.shape[1])
        theta = rng.uniform(-bound, bound, phi.shape[1] + 1)  # weights, then bias
        m, v = np.zeros_like(theta), np.zeros_like(theta)
        step, last = 0, 0.0
        for _ in range(self.epochs):
            last = 0.0
            for tree in trees:
                local_phi = phi[tree.nodes]
                alpha, slope = self._alpha(local_phi, theta[:-1], theta[-1])
                loss, d_alpha = tree.gradient(alpha, teacher)
                dz = d_alpha * slope
                grad = np.append(local_phi.T @ dz, dz.sum())
                step += 1
                m = _BETAS[0] * m + (1 - _BETAS[0]) * grad
                v = _BETAS[1] * v + (1 - _BETAS[1]) * grad**2
                m_hat, v_hat = m / (1 - _BETAS[0] ** step), v / (1 - _BETAS[1] ** step)
                theta -= self.learning_rate * m_hat / (np.sqrt(v_hat) + _EPS)
                last += loss
        self.weight_, self.bias_ = theta[:-1], float(theta[-1])
        return {"trees": len(trees), "final_epoch_loss": last, "features": int(phi.shape[1])}

    def alpha(self, data: NodeData) -> np.ndarray:
        """Every node's weight α as a child."""
        assert self.weight_ is not None  # set by fit / set_state
        return self._alpha(self._phi(data), self.weight_, self.bias_)[0]

    def predict(self, data: NodeData, leaf_estimates: np.ndarray) -> np.ndarray:
        alpha = self.alpha(data)
        return bottom_up(data.table, leaf_estimates, lambda idx, E: data.table.children_sum(alpha * E)[idx])

    def get_state(self) -> dict[str, Any]:
        return {
            "strategy": self.name,
            "tau": self.tau,
            "degree": self.degree,
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "seed": self.seed,
            "mean": self.mean_,
            "scale": self.scale_,
            "weight": self.weight_,
            "bias": self.bias_,
        }

    def set_state(self, state: dict[str, Any]) -> WeightedSumAggregator:
        self._configure(
            state["strategy"], state["tau"], state["degree"], state["epochs"], state["learning_rate"], state["seed"]
        )
        self.mean_ = np.asarray(state["mean"], float)
        self.scale_ = np.asarray(state["scale"], float)
        self.weight_ = np.asarray(state["weight"], float)
        self.bias_ = float(state["bias"])
        return self
