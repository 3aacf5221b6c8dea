"""Leave-one-model-out cross-validation of a predictor config (the paper's Tables 5–9 protocol).

The experiment's model set is ``models`` if given, else the paper's six models when the data has
them all, else every model in the data; records of other models are ignored.  Each fold trains a
fresh predictor on the other models of the set (nothing of the left-out model is seen: not its
rows, not its standardisation statistics) and predicts the left-out model's trees.  A fold's error
per level is the mean over that model's nodes of 100·|pred − gt|/gt (nodes with gt > 0, as
:mod:`irene_core.predictor.evaluation` does, on the same outputs ``Predictor.predict`` writes); ``overall`` is
the mean over folds (the paper's average column) and ``worst_model`` the largest model-level fold
error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from irene_core.errors import IreneError
from irene_core.predictor.config import PredictorConfig, load_config
from irene_core.predictor.predictor import Predictor
from irene_core.predictor.reconcile import reconcile
from irene_core.tree.paper_csv import PAPER_MODELS
from irene_core.tree.schema import LEVELS, TreeRecord
from irene_core.tree.table import TreeTable

Progress = Callable[[int, int, str], None]


@dataclass
class Fold:
    left_out: str
    errors: dict[str, float | None]
    raw_errors: dict[str, float | None]  # before reconciliation (the aggregator's own output)
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"left_out": self.left_out, **self.errors}


@dataclass
class CrossValidation:
    config: PredictorConfig
    folds: list[Fold] = field(default_factory=list)
    seconds: float = 0.0

    def _mean(self, attr: str) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for level in LEVELS:
            values = [getattr(f, attr)[level] for f in self.folds if getattr(f, attr)[level] is not None]
            out[level] = float(np.mean(values)) if values else None
        return out

    @property
    def overall(self) -> dict[str, float | None]:
        return self._mean("errors")

    @property
    def raw_overall(self) -> dict[str, float | None]:
        return self._mean("raw_errors")

    @property
    def worst_model(self) -> float | None:
        values = [f.errors["model"] for f in self.folds if f.errors["model"] is not None]
        return max(values) if values else None

    def as_json(self) -> dict[str, Any]:
        """The ``irene crossvalidate --json`` document."""
        return {
            "folds": [f.as_dict() for f in self.folds],
            "overall": self.overall,
            "worst_model": self.worst_model,
            "seconds": self.seconds,
        }


def level_errors(table: TreeTable, energies: np.ndarray) -> dict[str, float | None]:
    """Mean % error per level over nodes with a positive ground truth."""
    good = table.truth > 0
    err = np.zeros(len(table))
    err[good] = 100.0 * np.abs(energies[good] - table.truth[good]) / table.truth[good]
    out: dict[str, float | None] = {}
    for level in LEVELS:
        mask = good & (table.level == level)
        out[level] = float(err[mask].mean()) if mask.any() else None
    return out


def experiment_models(records: Sequence[TreeRecord], models: Sequence[str] | None) -> list[str]:
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
        raise IreneError(f"leave-one-model-out needs at least two models (got: {', '.join(chosen) or 'none'})")
    return chosen


def crossvalidate(
    records: Sequence[TreeRecord],
    config: PredictorConfig | dict[str, Any] | str | None = None,
    models: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> CrossValidation:
    """Leave-one-model-out over the experiment's models (see the module docstring)."""
    start = time.perf_counter()
    config = load_config(config)
    chosen = experiment_models(records, models)
    table = TreeTable.from_records([r for r in records if r.model_name in chosen])
    names = np.array([r.model_name for r in table.records], dtype=object)
    result = CrossValidation(config)
    for i, left_out in enumerate(chosen):
        if progress:
            progress(i, len(chosen), left_out)
        fold_start = time.perf_counter()
        held_out = names == left_out
        predictor = Predictor(config).fit_table(table.subset(~held_out))
        test = table.subset(held_out)
        raw = predictor.raw_estimates(test)
        energies, _ = reconcile(test, raw, config.reconcile)
        result.folds.append(
            Fold(left_out, level_errors(test, energies), level_errors(test, raw), time.perf_counter() - fold_start)
        )
    if progress:
        progress(len(chosen), len(chosen), "")
    result.seconds = time.perf_counter() - start
    return result
