"""The paper's aggregator: every inner node is a weighted sum of its children.

``E(parent) = Σ_c α(c)·E(c)``, ``α(c) = 1 + tanh(w·φ(c) + b)/τ`` with one (w, b) shared by all inner
nodes; ``φ`` = the node's raw features plus the input size (batch × sequence length), standardised
on every node of the training trees (statistics from the training data only) and expanded to all
monomials up to ``degree`` (the paper: 3).  Training minimises Σ over the inner nodes of a tree of
((E − gt)/gt)² with Adam, one step per tree, in data order, for ``epochs`` epochs.

- ``end2end``: children are the aggregator's own predictions (leaves: the leaf regressors').
- ``stepwise``: trained on ground-truth children, applied to predicted children.
"""

from __future__ import annotations

from itertools import combinations_with_replacement
from typing import Any

import numpy as np

from irene_core.aggregation import Aggregator, NodeData, bottom_up, teacher_mask
from irene_core.errors import IreneError


def monomials(Z: np.ndarray, degree: int) -> np.ndarray:
    """1, every column, and every product of up to ``degree`` columns (sklearn's order)."""
    n = Z.shape[1]
    cols = [np.ones(len(Z))]
    for d in range(1, degree + 1):
        for combo in combinations_with_replacement(range(n), d):
            cols.append(np.prod(Z[:, list(combo)], axis=1))
    return np.column_stack(cols)


class WeightedSumAggregator(Aggregator):
    """The paper's end2end (default) or stepwise training of α."""

    def __init__(self, strategy: str = "end2end", tau: float = 10.0, degree: int = 3, epochs: int = 8, learning_rate: float = 1e-3, seed: int = 13370):
        if strategy not in ("end2end", "stepwise"):
            raise IreneError(f"unknown weighted-sum strategy '{strategy}'")
        self.name = strategy
        self.tau = tau
        self.degree = degree
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.seed = seed
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.weight_: np.ndarray | None = None
        self.bias_: float = 0.0

    def _raw(self, data: NodeData) -> np.ndarray:
        size = data.table.column("batch_size") * data.table.column("seq_len")
        return np.column_stack([data.X, size])

    def _phi(self, data: NodeData) -> np.ndarray:
        return monomials((self._raw(data) - self.mean_) / self.scale_, self.degree)

    def alpha(self, data: NodeData) -> np.ndarray:
        """α of every node (as a child)."""
        return 1.0 + np.tanh(self._phi(data) @ self.weight_ + self.bias_) / self.tau

    def fit(self, data: NodeData, leaf_estimates: np.ndarray) -> dict[str, Any]:
        import torch

        t = data.table
        raw = self._raw(data)
        self.mean_ = raw.mean(axis=0)
        scale = raw.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        phi = torch.tensor(self._phi(data), dtype=torch.float32)
        supervised = teacher_mask(t) if self.name == "stepwise" else (~t.is_leaf & (t.truth > 0))
        if not supervised.any():
            raise IreneError(f"no inner node with ground truth to train the {self.name} aggregator on")
        torch.manual_seed(self.seed)
        layer = torch.nn.Linear(phi.shape[1], 1)
        optimizer = torch.optim.Adam(layer.parameters(), lr=self.learning_rate)
        trees = [_TreeTensors(t, r, leaf_estimates, supervised) for r in range(len(t.records))]
        trees = [tree for tree in trees if tree.has_targets]
        last = 0.0
        for _ in range(self.epochs):
            total = 0.0
            for tree in trees:
                alpha = 1.0 + torch.tanh(layer(phi[tree.nodes]).squeeze(-1)) / self.tau
                pred = tree.forward(alpha, teacher=self.name == "stepwise")
                loss = (((pred - tree.truth) / tree.truth)[tree.targets] ** 2).sum()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss)
            last = total
        self.weight_ = layer.weight.detach().double().numpy().ravel()
        self.bias_ = float(layer.bias.detach())
        return {"trees": len(trees), "final_loss": last, "features": int(phi.shape[1])}

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
        self.__init__(state["strategy"], state["tau"], state["degree"], state["epochs"], state["learning_rate"], state["seed"])
        self.mean_ = np.asarray(state["mean"], float)
        self.scale_ = np.asarray(state["scale"], float)
        self.weight_ = np.asarray(state["weight"], float)
        self.bias_ = float(state["bias"])
        return self


class _TreeTensors:
    """One training tree as index tensors for a vectorised bottom-up pass."""

    def __init__(self, table, record: int, leaf_estimates: np.ndarray, supervised: np.ndarray):
        import torch

        nodes = np.flatnonzero(table.record_index == record)
        local = np.full(len(table), -1)
        local[nodes] = np.arange(len(nodes))
        parent = table.parent[nodes]
        depth = table.depth[nodes]
        self.nodes = torch.as_tensor(nodes)
        self.n = len(nodes)
        self.is_leaf = torch.as_tensor(table.is_leaf[nodes])
        self.leaf = torch.tensor(np.where(table.is_leaf[nodes], leaf_estimates[nodes], 0.0), dtype=torch.float32)
        truth = table.truth[nodes]
        self.truth = torch.tensor(np.where(truth > 0, truth, 1.0), dtype=torch.float32)
        self.targets = torch.as_tensor(supervised[nodes])
        self.has_targets = bool(supervised[nodes].any())
        self.levels = []  # (children local indices, their parents' local indices), deepest first
        for d in range(int(depth.max()), 0, -1):
            children = np.flatnonzero(depth == d)
            self.levels.append((torch.as_tensor(children), torch.as_tensor(local[parent[children]])))
        all_children = np.flatnonzero(parent >= 0)
        self.all_children = (torch.as_tensor(all_children), torch.as_tensor(local[parent[all_children]]))

    def forward(self, alpha, teacher: bool):
        import torch

        if teacher:  # stepwise: every parent from its children's ground truth
            children, parents = self.all_children
            return torch.zeros(self.n).index_add(0, parents, alpha[children] * self.truth[children])
        values = self.leaf
        for children, parents in self.levels:
            sums = torch.zeros(self.n).index_add(0, parents, alpha[children] * values[children])
            inner_here = torch.zeros(self.n, dtype=torch.bool)
            inner_here[parents] = True
            values = torch.where(inner_here, sums, values)
        return values
