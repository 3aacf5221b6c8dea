"""Make a tree of estimates add up: parent = Σ children + own ops.

Raw estimates (one per node, from the leaf regressors and an aggregator) need not add up: a
parent may come out below the sum of its children.  Measured trees do that too: the paper's models
measure 0.97–1.02× the sum of their top modules (a module replayed alone pays overheads that a
whole model's run shares), and some containers (an encoder and its layers) a little below theirs.
So the constraint is the one training measured: ``parent ≥ floor·Σ children``, with one **floor** ≤ 1
per level and class of node, the :data:`FLOOR_QUANTILE` quantile of the training trees' ``parent / Σ
children`` (:func:`fit_floors`; 1 where training never measured a parent below its children).  The
classes: a node whose children are all modules (an encoder, its layers, an attention block: it runs
them and little else, and measures as much below their sum as above it), and one that runs
primitives of its own (most of its modules measure 1.1–1.4× their children).  One floor for both was
the modules' with own work: on a second GPU of the paper's release, BERT's attention blocks measured
0.99× their two children (the median; their estimates said the same), the modules' floor was 0.999,
and the constraint raised every block and lowered its self-attention.  Own ops are
then ``parent − Σ children`` and are negative only where the floor is below 1: a model that costs
less than its modules measured one at a time shows it, instead of every module being pulled down
to the model's figure.  Three policies:

- ``qp`` (default): the smallest change in the weighted sense,
  ``min Σ wᵢ·((xᵢ − Dᵢ)/Dᵢ)²  subject to  x_parent ≥ floor·Σ x_children`` for every inner node, with
  ``wᵢ = 1 / (number of nodes of i's level in its tree)`` so that each level counts as much as in
  the evaluation (a model node weighs as much as all modules of its tree together).  Solved
  exactly enough by Hildreth's dual coordinate ascent (constraints of one depth parity share no
  variable, so they are updated together), vectorised over all trees.
- ``max``: bottom-up, ``parent = max(D_parent, floor·Σ children)``: children are kept, the parent
  is raised when needed.
- ``none``: the raw estimates are kept (clipped at 0) and own ops = max(0, parent − Σ children):
  the tree need not add up (the ``log-ridge`` baseline, which predicts every node on its own).

Afterwards, except with ``none``, own ops = parent − Σ children ≥ (floor − 1)·Σ children exactly (a
last bottom-up pass absorbs rounding).  Estimates of 0 (a Dropout, which runs no kernel in
inference, where training measured none of its calls) stay 0.
"""

from __future__ import annotations

import numpy as np

from irene_core.errors import IreneError
from irene_core.tree.table import TreeTable

POLICIES = ("qp", "max", "none")
#: The training ratio ``parent / Σ children`` that the floor of a level and class is: its 1 % quantile,
#: as low as training measured but for the few lowest, so that one glitchy measurement does not
#: loosen the constraint for every tree.
FLOOR_QUANTILE = 0.01
#: Inner levels with a floor of their own.
LEVELS = ("module", "model")
#: The suffix of a level's key in the floors for its nodes whose children are all modules.
MODULES_ONLY = ":modules"


def floor_keys(table: TreeTable) -> np.ndarray:
    """Each node's key in the floors: its level, suffixed :data:`MODULES_ONLY` where its children are
    all modules."""
    modules_only = ~table.is_leaf & (table.children_sum((~table.is_leaf).astype(float)) == table.n_children)
    return np.where(modules_only, table.level.astype(object) + MODULES_ONLY, table.level.astype(object))


def fit_floors(table: TreeTable) -> dict[str, float]:
    """Per inner level and class (:func:`floor_keys`), the floor (≤ 1) of the constraint ``parent ≥
    floor·Σ children``: the :data:`FLOOR_QUANTILE` quantile of ``truth / Σ children's truth`` over the
    inner nodes of ``table`` measured together with all their children; a class without such nodes
    takes its level's, a level without any 1."""
    truth = table.truth  # NaN: not measured
    children = table.children_sum(truth)
    measured = ~table.is_leaf & (truth > 0) & (children > 0)  # NaN children sums compare False
    keys = floor_keys(table)

    def floor(rows: np.ndarray) -> float | None:
        ratio = truth[rows] / children[rows]
        return min(1.0, float(np.quantile(ratio, FLOOR_QUANTILE))) if len(ratio) else None

    floors = {}
    for level in LEVELS:
        pooled = floor(measured & (table.level == level))
        for key in (level, level + MODULES_ONLY):
            floors[key] = next(f for f in (floor(measured & (keys == key)), pooled, 1.0) if f is not None)
    return floors


def floor_per_node(table: TreeTable, floors: dict[str, float]) -> np.ndarray:
    """The floor of every node's level and class (1 for levels without one, and for leaves; a predictor
    saved before the classes has its level's for both)."""
    return np.array([floors.get(key, floors.get(level, 1.0)) for key, level in zip(floor_keys(table), table.level,
                                                                                    strict=True)], dtype=float)


def level_weights(table: TreeTable) -> np.ndarray:
    """1 / (number of nodes of the node's level in its record)."""
    w = np.ones(len(table))
    for level in ("ml", "module", "model"):
        mask = table.level == level
        if mask.any():
            w[mask] = 1.0 / table.per_record_count(mask)[mask]
    return w


def _hildreth(
    table: TreeTable, D: np.ndarray, w: np.ndarray, floor: np.ndarray, max_sweeps: int, tol: float
) -> np.ndarray:
    has_parent = table.parent >= 0
    up = np.maximum(table.parent, 0)
    c = np.where(D > 0, D**2 / (2 * w), 0.0)  # x_i = D_i + c_i·(μ_i − floor_p·μ_p), p = parent(i)
    c_children = floor**2 * table.children_sum(c)
    floor_up = np.where(has_parent, floor[up], 0.0)
    inner = np.flatnonzero(~table.is_leaf)
    parity = [inner[table.depth[inner] % 2 == p] for p in (0, 1)]
    mu = np.zeros(len(table))
    scale = np.maximum(np.abs(D), 1e-300)

    def solution() -> np.ndarray:
        x: np.ndarray = D + c * (mu - floor_up * mu[up])
        return x

    x = solution()
    sums = table.children_sum(x)  # kept with x: each sweep's last serves the next sweep's first half
    for _ in range(max_sweeps):
        for idx in parity:
            if not len(idx):
                continue
            slack = x - floor * sums
            denom = c[idx] + c_children[idx]
            step = np.where(denom > 0, -slack[idx] / np.where(denom > 0, denom, 1.0), 0.0)
            mu[idx] = np.maximum(0.0, mu[idx] + step)
            x = solution()
            sums = table.children_sum(x)
        violation = (floor * sums - x)[inner] / scale[inner]
        if not len(inner) or violation.max() <= tol:
            break
    return x


def reconcile(
    table: TreeTable,
    raw: np.ndarray,
    policy: str = "qp",
    floor: np.ndarray | None = None,
    max_sweeps: int = 2000,
    tol: float = 1e-9,
) -> tuple[np.ndarray, np.ndarray]:
    """``(energies, own_ops)`` per node: energies add up unless ``policy`` is ``none``; ``floor`` per node
    (default 1: own ops ≥ 0) bounds own ops below by ``(floor − 1)·Σ children`` (0 on leaves)."""
    if policy not in POLICIES:
        raise IreneError(f"unknown reconcile policy '{policy}' (choose from: {', '.join(POLICIES)})")
    raw = np.maximum(np.asarray(raw, float), 0.0)
    floor = np.ones(len(table)) if floor is None else np.minimum(np.asarray(floor, float), 1.0)
    x = _hildreth(table, raw, level_weights(table), floor, max_sweeps, tol) if policy == "qp" else raw.copy()
    x = np.maximum(x, 0.0)
    own = np.zeros(len(table))
    if policy == "none":
        own[~table.is_leaf] = np.maximum(x - table.children_sum(x), 0.0)[~table.is_leaf]
        return x, own
    for idx in table.inner_by_depth:
        children = table.children_sum(x)[idx]
        own[idx] = np.maximum(x[idx] - children, (floor[idx] - 1.0) * children)
        x[idx] = children + own[idx]
    return x, own
