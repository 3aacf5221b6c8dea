"""Primitive kinds never seen in training (a LLaMA's RMSNorm for a predictor trained on BERTs): its
section of ``docs/results.md``.

The leaves of each computation of the paper's six models (``Linear`` with ``Conv1D``, which performs
the same product) are held out in turn; the generic regressor, the predictor's fallback for a kind
without a regressor, is fitted on the other computations' leaves and predicts the held-out ones.
*Before*: its model chosen among all candidates on folds by model, its interval the predictor's ml
quantiles for novel leaves.  *After*: the linear wall-energy model with coefficients ≥ 0
(``fallback``) chosen on folds that hold out computations, its interval widened by the margin of a
new kind (``IntervalModel.unseen_kind``), measured on the remaining computations only (nested: the
held-out kind plays no part in its own interval).

    python benchmarks/bench_unseen_kinds.py
"""

from __future__ import annotations

import time

import numpy as np
from bench_predictor import paper_records
from results import update

from irene_core.plugins import GENERIC
from irene_core.predictor.leaf_models import LeafModels, computations
from irene_core.predictor.predictor import Predictor
from irene_core.predictor.uncertainty import NOVEL, new_group_margin, variance_components
from irene_core.tree.table import TreeTable

FEATURE_SETS = ("all", "no-gpu-energy", "model")


def held_out(leaves: LeafModels, X: np.ndarray, y: np.ndarray, types: np.ndarray, models: np.ndarray,
             base: tuple[float, float]) -> list[tuple[str, int, tuple[float, float], tuple[float, float, float]]]:
    """Per computation: (name, leaves, before (error %, coverage %), after (error %, widening factor,
    coverage %))."""
    of = computations(leaves.canonical_array(types))
    rows = []
    for name in sorted(set(of)):
        test, train = of == name, of != name
        log_y = np.log(y[test])
        before = leaves._new(GENERIC).regressor.fit(X[train], y[train], models[train])
        after = leaves._new(GENERIC, fallback=True).regressor.fit(X[train], y[train], of[train])
        margin = new_group_margin(variance_components(*leaves.unseen_kind_residuals(X[train], y[train], types[train])),
                                  within=True)
        scored = []
        for regressor, widen in ((before, 0.0), (after, margin)):
            r = log_y - np.log(np.maximum(np.asarray(regressor.predict(X[test]), float), 1e-300))
            covered = (r >= base[0] - widen) & (r <= base[1] + widen)
            scored.append((100 * float(np.mean(np.abs(np.expm1(-r)))), 100 * float(np.mean(covered))))
        rows.append((name, int(test.sum()), scored[0], (scored[1][0], float(np.exp(margin)), scored[1][1])))
    return rows


def section(argv: list[str] | None = None) -> str:
    records = paper_records(argv, __doc__)
    table = TreeTable.from_records(records)
    usable = table.is_leaf & (table.truth > 0)
    lines = [
        "## Unseen primitive kinds: the generic regressor and its interval",
        "",
        "Each computation's leaves of the paper's six models held out in turn (`Linear` with `Conv1D`); "
        "the generic regressor fitted on the others' leaves predicts them.  Error: mean % error of the "
        "held-out leaves; coverage: share (%) inside the 90 % interval.  *Before*: the generic regressor "
        "chosen among all candidates on folds by model, the ml quantiles of novel leaves as interval.  "
        "*After*: the linear wall-energy model with coefficients ≥ 0, chosen on folds that hold out "
        "computations, the interval widened by the margin of a new kind (×, each way) measured on the "
        "remaining computations alone.",
        "",
    ]

    def emit(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    emit("| features | held out | leaves | before: error % | before: coverage % | after: error % | "
     "widening × | after: coverage % |")
    emit("|---|---|---|---|---|---|---|---|")
    for features in FEATURE_SETS:
        start = time.perf_counter()
        predictor = Predictor(features=features).fit_table(table)
        assert predictor.intervals_ is not None and predictor.leaves_ is not None  # fitted
        X = predictor._matrix(table)[usable]
        base = predictor.intervals_.quantiles.get(NOVEL + "ml", predictor.intervals_.quantiles["ml"])
        rows = held_out(predictor.leaves_, X, table.truth[usable], table.type[usable], table.model_name[usable], base)
        for name, n, (e0, c0), (e1, w, c1) in rows:
            emit(f"| {features} | {name} | {n} | {e0:.1f} | {c0:.1f} | {e1:.1f} | {w:.2f} | {c1:.1f} |")
        print(f"({features}: {time.perf_counter() - start:.0f} s)", flush=True)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(f"{update({'bench_unseen_kinds': section()})} updated")
