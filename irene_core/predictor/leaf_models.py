"""The leaves of a predictor: one regressor per primitive type, plus the generic fallback.

A leaf's type is resolved through the plugin registry (kind ``primitive``): a spec's name or alias
gives the canonical primitive name and the factory of its regressor; a type no plugin knows keeps
its own name and gets core's :class:`~irene_core.predictor.leaf_regressor.LeafRegressor`.  Types with fewer
than ``min_rows`` usable training rows are skipped (and reported).  The **generic regressor** is a
:class:`LeafRegressor` fitted on every training leaf of every type: a leaf whose primitive has no
trained regressor is predicted by it, with one warning per primitive and predictor.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from irene_core.errors import IreneError
from irene_core.predictor.leaf_regressor import LeafRegressor
from irene_core.plugins import Contribution, get_registry
from irene_core.predictor.regressor import PrimitiveRegressor, RegressorSpec, make_regressor

GENERIC = "generic"


class UntrainedPrimitiveWarning(UserWarning):
    """A leaf's primitive has no trained regressor: the generic regressor predicts it."""


@dataclass
class _Entry:
    spec: str | None  # canonical spec name in the registry, None for core's LeafRegressor
    distribution: str
    regressor: PrimitiveRegressor


def _primitive_table() -> dict[str, Contribution]:
    return get_registry().contributions("primitive")


class LeafModels:
    """Per-primitive regressors of one predictor."""

    def __init__(self, feature_names: Sequence[str], params: dict[str, Any], min_rows: int = 10):
        self.feature_names = tuple(feature_names)
        self.params = dict(params)
        self.min_rows = min_rows
        self.entries: dict[str, _Entry] = {}
        self.generic: LeafRegressor | None = None
        self._warned: set[str] = set()

    def canonical(self, leaf_type: str) -> str:
        """The canonical primitive name of a leaf type (a registered spec's name, or the type)."""
        found = _primitive_table().get(leaf_type)
        return found.name if found is not None else leaf_type

    def canonical_array(self, types: np.ndarray) -> np.ndarray:
        names = {t: self.canonical(t) for t in set(types)}
        return np.array([names[t] for t in types], dtype=object)

    def _new(self, name: str) -> _Entry:
        found = _primitive_table().get(name)
        if found is None:
            return _Entry(None, "irene", LeafRegressor(self.feature_names, **self.params))
        spec: RegressorSpec = found.obj
        return _Entry(spec.name, found.distribution, make_regressor(spec.factory, self.feature_names, self.params))

    def fit(self, X: np.ndarray, y: np.ndarray, types: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
        """Fit every primitive type with enough rows and the generic regressor; returns a report
        ``{"primitives": {name: {"rows", "model"}}, "skipped": {name: rows}}``."""
        if len(y) == 0:
            raise IreneError("no leaf with a positive ground-truth energy to train the primitive regressors on")
        canonical = self.canonical_array(types)
        report: dict[str, Any] = {"primitives": {}, "skipped": {}}
        self.entries = {}
        for name in sorted(set(canonical)):
            rows = canonical == name
            if rows.sum() < self.min_rows:
                report["skipped"][name] = int(rows.sum())
                continue
            entry = self._new(name)
            entry.regressor.fit(X[rows], y[rows], groups[rows])
            self.entries[name] = entry
            report["primitives"][name] = {"rows": int(rows.sum()), "model": _describe(entry.regressor)}
        for name, contribution in sorted(_primitive_table().items()):
            spec: RegressorSpec = contribution.obj
            if name == spec.name and not spec.needs_data and name not in self.entries:
                self.entries[name] = self._new(name)
                report["primitives"][name] = {"rows": 0, "model": _describe(self.entries[name].regressor)}
        self.generic = LeafRegressor(self.feature_names, **self.params).fit(X, y, groups)
        report["generic"] = _describe(self.generic)
        return report

    def predict(self, X: np.ndarray, types: np.ndarray, warn: bool = True) -> np.ndarray:
        """Energies of leaves ``X`` of primitive ``types``; untrained primitives use the generic
        regressor and (with ``warn``) warn once each per predictor."""
        out = np.empty(len(types))
        canonical = self.canonical_array(types)
        for name in set(canonical):
            rows = canonical == name
            entry = self.entries.get(name)
            if entry is None:
                if warn and name not in self._warned:
                    self._warned.add(name)
                    warnings.warn(
                        f"no trained regressor for primitive '{name}': using the generic regressor "
                        "(see docs/predictor.md)",
                        UntrainedPrimitiveWarning,
                        stacklevel=3,
                    )
                out[rows] = self.generic.predict(X[rows])
            else:
                out[rows] = np.maximum(np.asarray(entry.regressor.predict(X[rows]), float), 0.0)
        return out

    # -- state ------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "min_rows": self.min_rows,
            "primitives": {
                name: {"spec": e.spec, "distribution": e.distribution, "state": e.regressor.get_state()}
                for name, e in sorted(self.entries.items())
            },
            "generic": self.generic.get_state(),
        }

    @classmethod
    def from_state(cls, feature_names: Sequence[str], state: dict[str, Any]) -> LeafModels:
        models = cls(feature_names, state["params"], int(state["min_rows"]))
        table = _primitive_table()
        for name, saved in state["primitives"].items():
            spec_name = saved["spec"]
            if spec_name is None:
                regressor: PrimitiveRegressor = LeafRegressor(models.feature_names, **models.params)
            else:
                found = table.get(spec_name)
                if found is None:
                    raise IreneError(
                        f"this predictor needs the primitive regressor '{spec_name}' from "
                        f"{saved['distribution']}, which is not installed (pip install {saved['distribution']})"
                    )
                regressor = make_regressor(found.obj.factory, models.feature_names, models.params)
            models.entries[name] = _Entry(spec_name, saved["distribution"], regressor.set_state(saved["state"]))
        models.generic = LeafRegressor(models.feature_names, **models.params).set_state(state["generic"])
        return models


def _describe(regressor: PrimitiveRegressor) -> str:
    describe = getattr(regressor, "describe", None)
    return describe() if callable(describe) else type(regressor).__name__
