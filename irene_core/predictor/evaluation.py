"""Percentage error of predicted vs ground-truth energy, per level (ml, module, model).

A node's error is 100·|pred − gt|/gt whatever the prediction: another tool's negative prediction is
scored like any other (a bad one), never refused.  A node whose ground truth was measured on other
work (:meth:`~irene_core.tree.schema.TreeRecord.borrowed`) is not scored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from irene_core.errors import IreneError
from irene_core.tree.schema import LEVELS, RecordKey, TreeRecord


def node_errors(truth: TreeRecord, pred: TreeRecord) -> dict[str, list[float]]:
    """100·|pred − gt|/gt for every real node of ``truth`` with a positive ground truth of its own, by level."""
    predicted = {n.id: n.predicted_energy for n in pred.nodes()}
    borrowed = truth.borrowed()
    out: dict[str, list[float]] = {level: [] for level in LEVELS}
    for node in truth.nodes():
        gt = node.ground_truth_energy
        if gt is None or gt <= 0 or node.id in borrowed:
            continue
        p = predicted.get(node.id)
        if p is None:
            where = f"{pred.model_name} b{pred.batch_size} s{pred.seq_len}"
            raise IreneError(f"{where}: node '{node.id}' has no predicted energy")
        out[node.level].append(100.0 * abs(p - gt) / gt)
    return out


def _means(errors: dict[str, list[float]]) -> dict[str, float | None]:
    return {level: (float(np.mean(v)) if v else None) for level, v in errors.items()}


def evaluate(truth: Iterable[TreeRecord], pred: Iterable[TreeRecord]) -> dict[str, Any]:
    """``{"models": {name: {ml, module, model, trees}}, "overall": {...}, "pooled": {...}}``.

    ``overall`` is the mean over models (the paper's average column); ``pooled`` the mean over all
    nodes.  Records are matched by key and nodes by id; a prediction record that states only model,
    batch and seq (the original IrEne code writes nothing else) matches a truth record with those.
    """
    preds = {r.key: r for r in pred}
    per_model: dict[str, dict[str, list[float]]] = defaultdict(lambda: {level: [] for level in LEVELS})
    trees: dict[str, int] = defaultdict(int)
    for record in truth:
        other = preds.get(record.key, preds.get(RecordKey(*record.key[:3])))
        if other is None:
            raise IreneError(f"no prediction for {record.model_name} batch {record.batch_size} seq {record.seq_len}")
        for level, values in node_errors(record, other).items():
            per_model[record.model_name][level].extend(values)
        trees[record.model_name] += 1
    if not per_model:
        raise IreneError("no records to evaluate")
    models = {m: {**_means(e), "trees": trees[m]} for m, e in per_model.items()}
    overall = {
        level: float(np.mean([m[level] for m in models.values() if m[level] is not None]))
        for level in LEVELS
        if any(m[level] is not None for m in models.values())
    }
    pooled: dict[str, list[float]] = {level: [v for e in per_model.values() for v in e[level]] for level in LEVELS}
    return {"models": models, "overall": overall, "pooled": _means(pooled)}
