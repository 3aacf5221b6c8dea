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

Then the nodes above such leaves: leave one model out, and in the predictor trained on the other five
each computation in turn made unseen (its regressors, ranges and share of the generic regressor's
training removed, the margin of a new kind measured without it); the held-out model's modules and root
with a leaf of it below are scored.  *Before*: their intervals as their own residuals set them;
*after*: widened for the unseen kind, its leaves below them costing its margin more or less
(:func:`~irene_core.predictor.uncertainty.spanning_unseen_kinds`).  The own-ops aggregator still knows
the computation as a child kind (trained on ground-truth children sums), so only the leaves' estimates
err as a new kind's would.

    python benchmarks/bench_unseen_kinds.py
"""

from __future__ import annotations

import copy
import time

import numpy as np
from bench_predictor import paper_records
from results import update

from irene_core.plugins import GENERIC
from irene_core.predictor.leaf_models import LeafModels, computations
from irene_core.predictor.predictor import Predictor
from irene_core.predictor.splits import BUILTIN_SPLITS, plan_folds
from irene_core.predictor.training_ranges import leaf_sum
from irene_core.predictor.uncertainty import NOVEL, new_kind_margin
from irene_core.tree.paper_csv import PAPER_MODELS
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
        margin = new_kind_margin(leaves.unseen_kind_residuals(X[train], y[train], types[train]))
        scored = []
        for regressor, widen in ((before, 0.0), (after, margin)):
            r = log_y - np.log(np.maximum(np.asarray(regressor.predict(X[test]), float), 1e-300))
            covered = (r >= base[0] - widen) & (r <= base[1] + widen)
            scored.append((100 * float(np.mean(np.abs(np.expm1(-r)))), 100 * float(np.mean(covered))))
        rows.append((name, int(test.sum()), scored[0], (scored[1][0], float(np.exp(margin)), scored[1][1])))
    return rows


def without(predictor: Predictor, name: str, table: TreeTable) -> Predictor:
    """A copy of ``predictor`` (trained on ``table``) that has never seen computation ``name``: no regressor
    or range of its kinds, the generic regressor, the floor and the margin of a new kind fitted without
    its leaves."""
    out = copy.deepcopy(predictor)
    assert out.leaves_ is not None and out.intervals_ is not None  # fitted
    for kind in [k for k in out.leaves_.entries if computations(np.array([k]))[0] == name]:
        del out.leaves_.entries[kind]
        out.intervals_.ranges.bounds.pop(kind, None)
    keep = table.is_leaf & (table.truth > 0) & (computations(out.leaves_.canonical_array(table.type)) != name)
    X, y, types = out._matrix(table)[keep], table.truth[keep], table.type[keep]
    out.leaves_.fit_generic(X, y, types)
    out.intervals_.unseen_kind = new_kind_margin(out.leaves_.unseen_kind_residuals(X, y, types))
    return out


def above_unseen(table: TreeTable, features: str) -> list[tuple[str, str, int, float, tuple[float, float],
                                                                  tuple[float, float]]]:
    """Per computation and inner level: (name, level, nodes, error %, coverage % before/after, median
    width % before/after) of the held-out models' nodes with a leaf of the unseen computation below."""
    scores: dict[tuple[str, str], list[np.ndarray]] = {}
    for fold in plan_folds(BUILTIN_SPLITS["model"], table.records, list(PAPER_MODELS)):
        train, test = table.subset(fold.train), table.subset(fold.test)
        predictor = Predictor(features=features).fit_table(train)
        assert predictor.leaves_ is not None  # fitted
        trained = set(computations(predictor.leaves_.canonical_array(train.type[train.is_leaf])))
        tested = computations(predictor.leaves_.canonical_array(test.type))
        for name in sorted(trained & set(tested[test.is_leaf])):
            unseen = without(predictor, name, train)
            energies, own = unseen.predict_table(test)
            after = unseen.annotate(test, energies, own)
            assert unseen.intervals_ is not None  # fitted
            unseen.intervals_.unseen_kind = 0.0  # the inner nodes' bounds without the margin
            before = unseen.annotate(test, energies, own)
            above = leaf_sum(test, (test.is_leaf & (tested == name)).astype(float)) > 0
            for level in ("module", "model"):
                rows = above & (test.level == level) & (test.truth > 0)
                truth = test.truth[rows]
                scores.setdefault((name, level), []).append(np.column_stack([
                    np.abs(energies[rows] / truth - 1),
                    *[(a.low[rows] <= truth) & (truth <= a.high[rows]) for a in (before, after)],
                    *[(a.high[rows] - a.low[rows]) / energies[rows] for a in (before, after)],
                ]))
    out = []
    for (name, level), parts in sorted(scores.items()):
        error, covered0, covered1, width0, width1 = np.concatenate(parts).T
        out.append((name, level, len(error), 100 * float(error.mean()),
                    (100 * float(covered0.mean()), 100 * float(covered1.mean())),
                    (100 * float(np.median(width0)), 100 * float(np.median(width1)))))
    return out


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
    emit("")
    emit("**Above an unseen kind.**  Leave one model out; each computation in turn made unseen in the "
         "predictor trained on the other five models; the held-out model's modules and roots with a leaf "
         "of it below.  *Before*: their intervals from their own residuals alone; *after*: widened, in "
         "quadrature with their own, by the larger of what its leaves below them add and how far their "
         "estimate moves were those leaves to cost the margin of a new kind (×, above) more or less.  "
         "Width: median over the nodes, % of the estimate.")
    emit("")
    emit("| features | unseen | level | nodes | error % | coverage before → after % | median width before → after % |")
    emit("|---|---|---|---|---|---|---|")
    for features in FEATURE_SETS:
        start = time.perf_counter()
        for name, level, n, error, (c0, c1), (w0, w1) in above_unseen(table, features):
            emit(f"| {features} | {name} | {level} | {n} | {error:.2f} | {c0:.1f} → {c1:.1f} | {w0:.1f} → {w1:.1f} |")
        print(f"({features}, above unseen kinds: {time.perf_counter() - start:.0f} s)", flush=True)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(f"{update({'bench_unseen_kinds': section()})} updated")
