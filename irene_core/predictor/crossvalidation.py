"""Cross-validation of a predictor config over a split (:mod:`irene_core.predictor.splits`).

The experiment's model set is ``models`` if given, else the paper's six models when the data has
them all, else every model in the data; records of other models are ignored.  Each fold of the
split trains a fresh predictor on its training trees only (nothing of the test trees is seen: not
their rows, not their standardisation statistics) and predicts its test trees with
``Predictor.predict``.  Per test model, a level's error is the mean over that model's test nodes
of 100·|pred − gt|/gt (nodes with gt > 0, as :mod:`irene_core.predictor.evaluation` does, on what
``predict`` writes); ``overall`` is the mean over test models and ``worst_model`` the test model
with the largest model-level error.  ``per_type`` pools the test nodes of every test model by node
type; ``coverage`` is, per level, the share of test nodes whose ground truth lies in
``[predicted_low, predicted_high]`` (``None`` while the predictions carry no intervals).  The
default split, ``model``, is leave-one-model-out (the paper's Tables 5–9 protocol).  Every fold
uses the features of the set that every node of the experiment has, its test trees' included
(:func:`shared_features`): training drops a feature some training node lacks, and a fold whose
test trees lacked one its training trees had could not predict them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from irene_core.errors import IreneError
from irene_core.predictor.config import PredictorConfig, load_config
from irene_core.predictor.predictor import Predictor, feature_gaps
from irene_core.predictor.splits import BUILTIN_SPLITS, Split, plan_folds
from irene_core.predictor.workers import in_order
from irene_core.tree.paper_csv import PAPER_MODELS
from irene_core.tree.schema import LEVELS, TreeRecord
from irene_core.tree.table import TreeTable, preorder

Progress = Callable[[int, int, str], None]


@dataclass
class Fold:
    """The scores of one test model (in leave-one-model-out: the left-out model)."""

    left_out: str
    errors: dict[str, float | None]
    #: before reconciliation (the aggregator's own output); only when asked for (``raw=True``)
    raw_errors: dict[str, float | None] | None = None


@dataclass
class CrossValidation:
    config: PredictorConfig
    split: Split = BUILTIN_SPLITS["model"]
    folds: list[Fold] = field(default_factory=list)
    twins: dict[str, str] = field(default_factory=dict)
    #: per node type: [test nodes, Σ % error]
    type_errors: dict[str, list[float]] = field(default_factory=dict)
    #: per level: [test nodes with gt > 0, nodes with an interval, nodes whose interval holds gt]
    coverage_counts: dict[str, list[int]] = field(default_factory=lambda: {lv: [0, 0, 0] for lv in LEVELS})
    #: per level: each test node's interval width, (high − low) / estimate (a positive one)
    interval_widths: dict[str, list[float]] = field(default_factory=lambda: {lv: [] for lv in LEVELS})
    seconds: float = 0.0

    def _mean(self, attr: str) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for level in LEVELS:
            values = [e[level] for f in self.folds if (e := getattr(f, attr)) is not None and e[level] is not None]
            out[level] = float(np.mean(values)) if values else None
        return out

    @property
    def overall(self) -> dict[str, float | None]:
        return self._mean("errors")

    @property
    def raw_overall(self) -> dict[str, float | None]:
        return self._mean("raw_errors")

    def _worst(self) -> Fold | None:
        scored = [f for f in self.folds if f.errors["model"] is not None]
        return max(scored, key=lambda f: f.errors["model"] or 0.0) if scored else None

    @property
    def worst_model(self) -> float | None:
        worst = self._worst()
        return None if worst is None else worst.errors["model"]

    @property
    def coverage(self) -> dict[str, float | None]:
        """Per level: the share of test nodes covered by their interval (``None``: no intervals)."""
        return {lv: (c[2] / c[0] if c[1] else None) for lv, c in self.coverage_counts.items()}

    @property
    def width(self) -> dict[str, float | None]:
        """Per level: the median width of the test nodes' intervals, % of their estimate (``None``: no
        intervals); coverage says how often an interval holds, its width how much it says."""
        return {lv: float(100 * np.median(w)) if w else None for lv, w in self.interval_widths.items()}

    def as_json(self) -> dict[str, Any]:
        """This split's entry of the ``irene crossvalidate --json`` document."""
        worst = self._worst()
        out: dict[str, Any] = {
            "name": self.split.name,
            "features": self.config.features,
            "overall": self.overall,
            "worst_model": None if worst is None else {"name": worst.left_out, "error": worst.errors["model"]},
            "per_model": {f.left_out: f.errors for f in self.folds},
            "per_type": {t: {"n": int(n), "error": s / n} for t, (n, s) in sorted(self.type_errors.items())},
            "coverage": self.coverage,
        }
        if self.split.twin_out:
            out["twins"] = self.twins
        out["seconds"] = self.seconds
        return out

    def _score(self, test: TreeTable, predicted: list[TreeRecord], raw: np.ndarray | None) -> None:
        """Add the scores of one fold's test trees (``predicted``: ``Predictor.predict`` output;
        ``raw``: the estimates before reconciliation, if wanted)."""
        nodes = [node for record in predicted for node, _, _ in preorder(record.root)]
        energies = np.array([n.predicted_energy for n in nodes], dtype=float)
        low = np.array([np.nan if n.predicted_low is None else n.predicted_low for n in nodes])
        high = np.array([np.nan if n.predicted_high is None else n.predicted_high for n in nodes])
        good = test.truth > 0
        error = np.where(good, 100.0 * np.abs(energies - test.truth) / np.where(good, test.truth, 1.0), np.nan)
        for model in dict.fromkeys(test.model_name):
            mine = test.model_name == model
            raw_errors = None if raw is None else level_errors(test, raw, mine)
            self.folds.append(Fold(model, level_errors(test, energies, mine), raw_errors))
        for node_type in set(test.type[good]):
            rows = good & (test.type == node_type)
            sums = self.type_errors.setdefault(node_type, [0.0, 0.0])
            sums[0] += int(rows.sum())
            sums[1] += float(error[rows].sum())
        has_interval = good & ~np.isnan(low) & ~np.isnan(high)
        covered = has_interval & (low <= test.truth) & (test.truth <= high)
        for level, counts in self.coverage_counts.items():
            at = test.level == level
            counts[0] += int((good & at).sum())
            counts[1] += int((has_interval & at).sum())
            counts[2] += int((covered & at).sum())
            rows = has_interval & at & (energies > 0)
            self.interval_widths[level] += ((high[rows] - low[rows]) / energies[rows]).tolist()


def level_errors(table: TreeTable, energies: np.ndarray, rows: np.ndarray | None = None) -> dict[str, float | None]:
    """Mean % error per level over nodes (of ``rows``, default all) with a positive ground truth."""
    good = table.truth > 0
    if rows is not None:
        good &= rows
    err = np.zeros(len(table))
    err[good] = 100.0 * np.abs(energies[good] - table.truth[good]) / table.truth[good]
    out: dict[str, float | None] = {}
    for level in LEVELS:
        mask = good & (table.level == level)
        out[level] = float(err[mask].mean()) if mask.any() else None
    return out


def experiment_models(records: Sequence[TreeRecord], models: Sequence[str] | None) -> list[str]:
    """The models of a cross-validation on ``records``: ``models`` (each must have records), else the
    paper's six where all are present, else every model; at least two (one-line error otherwise)."""
    present = sorted({r.model_name for r in records})
    if models:
        unknown = [m for m in models if m not in present]
        if unknown:
            raise IreneError(f"--models: no records for {', '.join(unknown)} (the data has: {', '.join(present)})")
        chosen = list(dict.fromkeys(models))
    elif all(m in present for m in PAPER_MODELS):
        chosen = list(PAPER_MODELS)
    else:
        chosen = present
    if len(chosen) < 2:
        raise IreneError(f"cross-validation needs at least two models (got: {', '.join(chosen) or 'none'})")
    return chosen


def shared_features(config: PredictorConfig, table: TreeTable) -> PredictorConfig:
    """``config`` with the features of its set that some node of ``table`` lacks excluded (a tree of a
    model no framework builds has no ``mem_bytes_moved``; the paper's release has no parameter counts)."""
    lacking = [f for f, nodes in feature_gaps(config, table).items() if nodes]
    if not lacking:
        return config
    return config.model_copy(update={"exclude_features": [*config.exclude_features, *lacking]})


def fit_and_predict(
    config: PredictorConfig, train: TreeTable, test: TreeTable, raw: bool
) -> tuple[list[TreeRecord], np.ndarray | None]:
    """One fold: a predictor trained on ``train``, its predictions of ``test``'s trees and, if ``raw``,
    its estimates before the tree is made to add up."""
    predictor = Predictor(config).fit_table(train)
    return predictor.predict(test.records), predictor.raw_estimates(test) if raw else None


def crossvalidate(
    records: Sequence[TreeRecord],
    config: PredictorConfig | dict[str, Any] | str | None = None,
    models: Sequence[str] | None = None,
    progress: Progress | None = None,
    split: Split | str = "model",
    raw: bool = False,
    executor: Executor | None = None,
) -> CrossValidation:
    """Cross-validate ``config`` over ``split`` (a :class:`Split` or a built-in's name) on the
    experiment's models (see the module docstring); ``raw`` also scores the estimates before the
    tree is made to add up (``raw_overall``), at the cost of a second prediction.  ``executor`` (e.g.
    :func:`~irene_core.predictor.workers.fold_workers`) trains the folds side by side; without one, one
    after the other."""
    start = time.perf_counter()
    config = load_config(config)
    if isinstance(split, str):
        if split not in BUILTIN_SPLITS:
            raise IreneError(f"unknown split '{split}' (choose from: {', '.join(BUILTIN_SPLITS)})")
        split = BUILTIN_SPLITS[split]
    chosen = experiment_models(records, models)
    table = TreeTable.from_records([r for r in records if r.model_name in chosen])
    config = shared_features(config, table)
    folds = plan_folds(split, table.records, chosen)
    result = CrossValidation(config, split)
    tests = [table.subset(fold.test) for fold in folds]
    # a fold's training table is built when its turn comes (all at once only to hand them to workers)
    jobs = ((config, table.subset(fold.train), test, raw) for fold, test in zip(folds, tests, strict=True))
    outcomes = in_order(fit_and_predict, jobs, executor)
    for i, (fold, test) in enumerate(zip(folds, tests, strict=True)):
        if progress:
            progress(i, len(folds), fold.label)
        predicted, raw_estimates = next(outcomes)
        result._score(test, predicted, raw_estimates)
        result.twins.update(fold.twins)
    if progress:
        progress(len(folds), len(folds), "")
    result.seconds = time.perf_counter() - start
    return result
