"""Make a tree of estimates add up: parent = Σ children + own ops, own ops >= 0.

Raw estimates (one per node, from the leaf regressors and an aggregator) need not add up: a
parent may come out below the sum of its children.  Measured trees do that too (the paper's data
has models measured 1–2 % below the sum of their top modules: measurement noise), so something
has to give.  Three policies:

- ``qp`` (default): the smallest change in the weighted sense,
  ``min Σ wᵢ·((xᵢ − Dᵢ)/Dᵢ)²  subject to  x_parent ≥ Σ x_children`` for every inner node, with
  ``wᵢ = 1 / (number of nodes of i's level in its tree)`` so that each level counts as much as in
  the evaluation (a model node weighs as much as all modules of its tree together).  Solved
  exactly enough by Hildreth's dual coordinate ascent (constraints of one depth parity share no
  variable, so they are updated together), vectorised over all trees.
- ``max``: bottom-up, ``parent = max(D_parent, Σ children)``: children are kept, the parent
  is raised when needed.
- ``none``: the raw estimates are kept (clipped at 0) and own ops = max(0, parent − Σ children):
  the tree need not add up (the ``log-ridge`` baseline, which predicts every node on its own).

Afterwards, except with ``none``, own ops = parent − Σ children >= 0 exactly (a last bottom-up pass
absorbs rounding).
Estimates of 0 (primitives that cost nothing, such as Dropout in inference) stay 0.
"""

from __future__ import annotations

import numpy as np

from irene_core.errors import IreneError
from irene_core.tree.table import TreeTable

POLICIES = ("qp", "max", "none")


def level_weights(table: TreeTable) -> np.ndarray:
    """1 / (number of nodes of the node's level in its record)."""
    w = np.ones(len(table))
    for level in ("ml", "module", "model"):
        mask = table.level == level
        if mask.any():
            w[mask] = 1.0 / table.per_record_count(mask)[mask]
    return w


def _hildreth(table: TreeTable, D: np.ndarray, w: np.ndarray, max_sweeps: int, tol: float) -> np.ndarray:
    has_parent = table.parent >= 0
    up = np.maximum(table.parent, 0)
    c = np.where(D > 0, D**2 / (2 * w), 0.0)  # x_i = D_i + c_i·(μ_i − μ_parent(i))
    c_children = table.children_sum(c)
    inner = np.flatnonzero(~table.is_leaf)
    parity = [inner[table.depth[inner] % 2 == p] for p in (0, 1)]
    mu = np.zeros(len(table))
    scale = np.maximum(np.abs(D), 1e-300)

    def solution() -> np.ndarray:
        return D + c * (mu - np.where(has_parent, mu[up], 0.0))

    for _ in range(max_sweeps):
        for idx in parity:
            if not len(idx):
                continue
            x = solution()
            slack = x - table.children_sum(x)
            denom = c[idx] + c_children[idx]
            step = np.where(denom > 0, -slack[idx] / np.where(denom > 0, denom, 1.0), 0.0)
            mu[idx] = np.maximum(0.0, mu[idx] + step)
        x = solution()
        violation = (table.children_sum(x) - x)[inner] / scale[inner]
        if not len(inner) or violation.max() <= tol:
            break
    return solution()


def reconcile(
    table: TreeTable, raw: np.ndarray, policy: str = "qp", max_sweeps: int = 2000, tol: float = 1e-9
) -> tuple[np.ndarray, np.ndarray]:
    """``(energies, own_ops)`` per node: own ops >= 0 (0 on leaves); energies add up unless ``policy`` is
    ``none``."""
    if policy not in POLICIES:
        raise IreneError(f"unknown reconcile policy '{policy}' (choose from: {', '.join(POLICIES)})")
    raw = np.maximum(np.asarray(raw, float), 0.0)
    x = _hildreth(table, raw, level_weights(table), max_sweeps, tol) if policy == "qp" else raw.copy()
    x = np.maximum(x, 0.0)
    own = np.zeros(len(table))
    if policy == "none":
        own[~table.is_leaf] = np.maximum(x - table.children_sum(x), 0.0)[~table.is_leaf]
        return x, own
    for idx in table.inner_by_depth:
        children = table.children_sum(x)[idx]
        own[idx] = np.maximum(x[idx] - children, 0.0)
        x[idx] = children + own[idx]
    return x, own
