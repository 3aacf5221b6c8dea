"""The leaves of a predictor: one regressor per primitive type, plus the generic fallback.

A leaf's type is resolved through the plugin registry (kind ``primitive``): a spec's name or alias
gives the canonical primitive name and the factory of its regressor; a type no plugin knows keeps
its own name.  A primitive without a trained regressor of its own is predicted as the trained
primitive its spec ``computes_as`` (``Conv1D`` → ``Linear``: the same product), else by the regressor
of the ``generic`` spec (core's
:class:`~irene_core.predictor.leaf_regressor.LeafRegressor`, contributed by
:mod:`irene_core.default_plugins.generic_regressor`; a plugin may replace it).  Types with fewer
than ``min_rows`` usable training rows are skipped (and reported).  A primitive whose training rows
come from one model only pools them with the rows of the other trained primitives of its
computation (``Linear`` trained on DistilBERT alone borrows GPT-2's ``Conv1D``): one model cannot
show how its energy carries over to other models, the same computation on other models can; the
pooled regressor is scaled to the primitive's own rows (the median log ratio).  The **generic regressor** is the
``generic`` spec's regressor (made with ``fallback=True``) fitted on every training leaf of every
type, its hyperparameters chosen on folds that hold out whole computations: it predicts the leaves
of a primitive without a trained regressor, kinds it has not seen.  How far off it is on such a kind
is measured by fitting it without each computation in turn (:meth:`LeafModels.unseen_kind_residuals`).

**Below the training range** (``below_range="floor"``, the default predictor's): a leaf whose work
lies below every training leaf of its kind in each of its measures (flops, bytes and, where they are
features, time and GPU energy) is predicted as the device's launch floor ``F`` plus the excess over
``F`` of its energy ``E₀`` with the work held at the range's edge, scaled with the work:
``F + (E₀ − F)·r``, never above ``E₀`` nor below ``F`` (a run's state,
an idle GPU, may set ``E₀`` below the floor: without the GPU energy, a ``Softmax`` at batch 8 and
sequence 32 came out 1.8 mJ on a 2.3 mJ floor, against 2.45 mJ measured).  ``F`` is the smallest a
training leaf cost (its :data:`FLOOR_QUANTILE` quantile: on device_1, a pooler's ``Tanh`` or the
smallest ``Softmax``, 2.3 mJ).  A regressor fitted inside the range cannot know how its energy falls
below it: held at the edge, a ``Softmax`` at batch 8 and sequence 32, trained on batch ≥ 16 and
sequence ≥ 96, came out 5× too high; continued along its fit, anywhere from 7× high (a linear fit
whose terms trade collinear columns) to 0.4× low (a log-space one steeper than the work).  Energy
affine in the work with the device's floor as its intercept is the physical model; the floor is
measured on every kind, the excess on the kind's own edge.  A leaf below in some measures only (a
pooler's ``Linear``: fewer flops, the same weights to read) keeps its regressor's estimate.  The
training data cannot show whether the floor adds to the work's energy or only bounds it, as it
never reaches the floor: the rule's *lower reading*, ``max(F, E₀/k)`` (the energy falling with
the work down to the floor), is as physical.  Nor can it show which of its amounts of work, flops or
bytes, the excess follows below the range: a small product leaves the GPU's arithmetic idle and
becomes bound by its bytes (a roofline), which shrink less than its flops (a ``Conv1D`` at batch 8
and sequence 32 cost 7–9 % more than the rule, its flops 6× below the edge and its bytes 3×).  The
rule's *upper reading* scales the excess with the amount that shrinks least, by ``j``: ``F + (E₀ − F)/j``.
The rule itself scales it as the kind's own training leaves split their excess between the amounts:
``r = Σₐ cₐ·xₐ / Σₐ cₐ·xₐ₀`` over flops and bytes, ``xₐ₀`` the range's edge and ``cₐ ≥ 0`` the kind's
energy above ``F`` per unit of each (:func:`excess_per_amount`), between ``1/k`` (``k`` the largest shrink
of any measure) and ``1/j``.  A BERT pooler's ``Linear`` (one token per sequence: 32× fewer flops than
the smallest training ``Linear``, 1.6× fewer bytes, the same weights to read) cost 8.3 mJ on device_1;
trained without RoBERTa (so without a pooler) and without the GPU energy, the largest shrink said 3.3 mJ,
the kind's mix 8.4 mJ.  A ``Softmax`` or a ``LayerNorm``, whose amounts shrink alike, is as before.  A
predictor saved before keeps ``r = 1/k``.
A node's interval spans both readings (:meth:`LeafModels.reading_shares`;
:func:`~irene_core.predictor.uncertainty.spanning_readings`).  A regressor that ``scales_with_work``
(the metered model of time and GPU energy, :mod:`~irene_core.predictor.leaf_regressor`) keeps its own
estimate: the measured work, launch overhead included, already falls with the shape (BERT's
``Softmax`` at batch 8 and sequence ≤ 64, trained on batch ≥ 16 and sequence ≥ 96: 0.3 % off, the
rule's 37 %).

A saved regressor records its spec and distribution and is restored by that spec from that
distribution, even when another plugin has replaced the name since.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from irene_core.errors import IreneError
from irene_core.plugins import CORE_DISTRIBUTION, GENERIC, Contribution, get_registry
from irene_core.predictor.design import BYTE_FEATURES, transform, work_features
from irene_core.predictor.novelty import product_distances
from irene_core.predictor.regressor import PrimitiveRegressor, RegressorSpec, make_regressor

#: How leaves below their kind's training range are predicted (see the module docstring).
BELOW_RANGE = ("floor", "regressor")
#: The quantile of the training leaves' energies taken as the device's launch floor.
FLOOR_QUANTILE = 0.001


@dataclass
class _Entry:
    spec: str  # canonical spec name in the registry
    distribution: str
    regressor: PrimitiveRegressor
    offset: float = 0.0  # log scale of the primitive over a regressor that pooled its computation's others


def _spec(name: str) -> Contribution:
    """The spec registered for primitive ``name``, or the generic one when no plugin knows it."""
    registry = get_registry()
    return registry.find("primitive", name) or registry.lookup("primitive", GENERIC)


def computation(name: str) -> str:
    """The computation a primitive performs: the end of its specs' ``computes_as`` chain
    (``Conv1D`` → ``Linear``), or its canonical name."""
    registry = get_registry()
    seen: set[str] = set()
    while name not in seen:
        seen.add(name)
        found = registry.find("primitive", name)
        if found is None:
            return name
        name = found.name
        target = getattr(found.obj, "computes_as", None)
        if not isinstance(target, str) or not target:
            return name
        name = target
    return name


#: Measured products (of :data:`MIN_PRODUCT_LEAVES` leaves or more) a kind needs for its held-out products'
#: residuals (:meth:`LeafModels.new_product_residuals`): one held out, two left to fit on.
MIN_PRODUCTS = 3
MIN_PRODUCT_LEAVES = 20


def computations(kinds: np.ndarray) -> np.ndarray:
    """:func:`computation` of every kind."""
    names = {k: computation(k) for k in set(kinds)}
    return np.array([names[k] for k in kinds], dtype=object)


def _restore(
    spec_name: str, distribution: str, feature_names: Sequence[str], params: dict[str, Any], state: dict[str, Any]
) -> PrimitiveRegressor:
    """A saved regressor, made by the spec that trained it (even if another plugin replaced it since)."""
    found = get_registry().provided_by("primitive", spec_name, distribution)
    if found is None:
        raise IreneError(
            f"this predictor needs the primitive regressor '{spec_name}' from {distribution}, which is not "
            f"installed or broken (pip install {distribution}; see irene plugins)"
        )
    return make_regressor(found.obj.factory, feature_names, params).set_state(state)


class LeafModels:
    """Per-primitive regressors of one predictor."""

    def __init__(
        self, feature_names: Sequence[str], params: dict[str, Any], min_rows: int = 10, below_range: str = "regressor"
    ):
        if below_range not in BELOW_RANGE:
            raise IreneError(f"unknown below_range '{below_range}' (choose from: {', '.join(BELOW_RANGE)})")
        self.feature_names = tuple(feature_names)
        self.params = dict(params)
        self.min_rows = min_rows
        self.below_range = below_range
        self.entries: dict[str, _Entry] = {}
        self.generic: PrimitiveRegressor | None = None
        self.generic_distribution = CORE_DISTRIBUTION
        #: The device's launch floor (J) and, per trained primitive (and :data:`GENERIC`), the smallest
        #: training value of each feature; empty with ``below_range="regressor"``.
        self.floor: float | None = None
        self.lows: dict[str, np.ndarray] = {}
        #: Per trained primitive (and :data:`GENERIC`), its :func:`excess_per_amount` (empty: saved
        #: before, or ``below_range="regressor"``).
        self.excess: dict[str, np.ndarray] = {}

    def canonical(self, leaf_type: str) -> str:
        """The canonical primitive name of a leaf type (a registered spec's name, or the type)."""
        found = get_registry().find("primitive", leaf_type)
        return found.name if found is not None else leaf_type

    def kind(self, leaf_type: str) -> str:
        """The primitive a leaf is predicted as: its canonical name, or, when that has no trained
        regressor, a trained primitive of the same computation (``Conv1D`` ≅ ``Linear``, both ways;
        see :func:`computation`), the computation's own name first."""
        name = self.canonical(leaf_type)
        if name in self.entries:
            return name
        same = computation(name)
        trained = sorted(k for k in self.entries if computation(k) == same)
        return same if same in trained else (trained[0] if trained else name)

    def canonical_array(self, types: np.ndarray) -> np.ndarray:
        names = {t: self.canonical(t) for t in set(types)}
        return np.array([names[t] for t in types], dtype=object)

    def kind_array(self, types: np.ndarray) -> np.ndarray:
        """:meth:`kind` of every type."""
        names = {t: self.kind(t) for t in set(types)}
        return np.array([names[t] for t in types], dtype=object)

    def _new(self, name: str, fallback: bool = False) -> _Entry:
        """A fresh regressor of primitive ``name``'s spec; ``fallback``: the one that predicts kinds
        without a regressor of their own (told so by the ``fallback=True`` parameter)."""
        found = _spec(name)
        params = {**self.params, "fallback": True} if fallback else self.params
        return _Entry(found.name, found.distribution, make_regressor(found.obj.factory, self.feature_names, params))

    def fit(self, X: np.ndarray, y: np.ndarray, types: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
        """Fit every primitive type with enough rows and the generic regressor; returns a report
        ``{"primitives": {name: {"rows", "model"}}, "skipped": {name: rows}}``."""
        if len(y) == 0:
            raise IreneError("no leaf with a positive ground-truth energy to train the primitive regressors on")
        canonical = self.canonical_array(types)
        report: dict[str, Any] = {"primitives": {}, "skipped": {}}
        self.entries = {}
        names, counts = np.unique(canonical, return_counts=True)
        enough = names[counts >= self.min_rows]
        performs = computations(canonical)
        fitted_on: dict[str, np.ndarray] = {}
        for name, count in zip(names, counts, strict=True):
            if count < self.min_rows:
                report["skipped"][name] = int(count)
                continue
            rows = canonical == name
            borrowed = np.zeros(len(y), dtype=bool)
            if len(np.unique(groups[rows])) < 2:  # one model: borrow its computation's other primitives' rows
                borrowed = (performs == computation(name)) & np.isin(canonical, enough) & ~rows
            pooled = rows | borrowed
            fitted_on[name] = pooled
            entry = self._new(name)
            entry.regressor.fit(X[pooled], y[pooled], groups[pooled])
            report["primitives"][name] = {"rows": int(count), "model": _describe(entry.regressor)}
            if borrowed.any():
                own = np.maximum(np.asarray(entry.regressor.predict(X[rows]), float), 1e-300)
                entry.offset = float(np.median(np.log(y[rows] / own)))
                report["primitives"][name]["pooled_with"] = sorted(set(canonical[borrowed]))
            self.entries[name] = entry
            self._note_range(name, X[rows])
        for name, contribution in sorted(get_registry().contributions("primitive").items()):
            spec: RegressorSpec = contribution.obj
            if name == spec.name and not spec.needs_data and name not in self.entries:
                self.entries[name] = self._new(name)
                report["primitives"][name] = {"rows": 0, "model": _describe(self.entries[name].regressor)}
        report["generic"] = self.fit_generic(X, y, types)
        if self.floor is not None:
            self.excess = {name: excess_per_amount(X[rows], y[rows], self.feature_names, self.floor)
                           for name, rows in fitted_on.items()}
            self.excess[GENERIC] = excess_per_amount(X, y, self.feature_names, self.floor)
        return report

    def fit_generic(self, X: np.ndarray, y: np.ndarray, types: np.ndarray) -> str:
        """Fit the generic regressor (and the launch floor) on the leaves ``X`` of primitive ``types``,
        chosen on folds that hold out computations; returns its description."""
        generic = self._new(GENERIC, fallback=True)
        performs = computations(self.canonical_array(types))
        self.generic, self.generic_distribution = generic.regressor.fit(X, y, performs), generic.distribution
        if self.below_range == "floor":
            self.floor = float(np.quantile(y, FLOOR_QUANTILE))
            self._note_range(GENERIC, X)
        return _describe(self.generic)

    def _note_range(self, name: str, X: np.ndarray) -> None:
        """Remember the smallest training value of each feature of primitive ``name``."""
        if self.below_range == "floor":
            self.lows[name] = X.min(axis=0)

    def _below(self, name: str, X: np.ndarray, regressor: PrimitiveRegressor,
               scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(rule, lower, upper)`` energies of the rows ``X`` of primitive ``name`` (GENERIC: the generic
        regressor's) that lie below its training range in every measure of their work: the floor rule's
        ``F + (E₀ − F)·r``, its lower reading ``max(F, E₀/k)`` and its upper reading ``F + (E₀ − F)/j``
        (see the module docstring; ``regressor`` × ``scale`` predicts the primitive); NaN for the others;
        None when no row does (or the rule is off)."""
        low = self.lows.get(name)
        if self.floor is None or low is None or getattr(regressor, "scales_with_work", False):
            return None
        held = work_features(self.feature_names)
        names = [n for n, h in zip(self.feature_names, held, strict=True) if h]
        below = transform(low[None, held], names) - transform(X[:, held], names)
        shrink = np.where((below > 0).all(axis=1), below.max(axis=1, initial=0.0), 0.0)
        if not (shrink > 0).any():
            return None
        rows = shrink > 0
        amounts = _amounts(self.feature_names)[held]  # the work itself, not what running it took
        least = below[rows][:, amounts].min(axis=1) if amounts.any() else shrink[rows]
        at_edge = np.asarray(regressor.predict(np.where(held, np.maximum(X[rows], low), X[rows])), float) * scale
        excess, factor = at_edge - self.floor, np.exp(-shrink[rows])  # factor = 1/k
        per_amount = self.excess.get(name)
        edge = 0.0 if per_amount is None else float(per_amount @ np.nan_to_num(low))
        r = factor if edge <= 0 else np.clip(np.nan_to_num(X[rows]) @ per_amount / edge, factor, np.exp(-least))
        rule, lower, upper = (np.full(len(X), np.nan) for _ in range(3))
        rule[rows] = np.maximum(self.floor, np.minimum(at_edge, self.floor + excess * r))
        lower[rows] = np.minimum(rule[rows], np.maximum(self.floor, at_edge * factor))
        upper[rows] = np.maximum(rule[rows], np.minimum(at_edge, self.floor + excess * np.exp(-least)))
        return rule, lower, upper

    def unseen_kind_residuals(self, X: np.ndarray, y: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(log(y / estimate), computation)`` of every leaf, each computation's leaves estimated by a
        generic regressor fitted on the others': how far off the generic regressor is on a kind it has
        not seen (none with a single computation)."""
        of = computations(self.canonical_array(types))
        r = np.zeros(len(y))
        names = np.unique(of)
        if len(names) < 2:
            return r[:0], of[:0]
        for name in names:
            rows = of == name
            regressor = self._new(GENERIC, fallback=True).regressor.fit(X[~rows], y[~rows], of[~rows])
            r[rows] = np.log(y[rows] / np.maximum(np.asarray(regressor.predict(X[rows]), float), 1e-300))
        return r, of

    def new_product_residuals(
        self, X: np.ndarray, y: np.ndarray, types: np.ndarray, keys: np.ndarray, values: np.ndarray,
        groups: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(log(y / estimate), kind, product key, distance)`` of the leaves of every kind with at least
        :data:`MIN_PRODUCTS` measured products (:func:`~irene_core.predictor.novelty.product_keys` ``keys``,
        0: none; measured: of :data:`MIN_PRODUCT_LEAVES` leaves or more), each measured product's leaves
        estimated by their kind's regressor fitted on its other products' (``groups``: their models): how
        far off a kind's regressor is on a product it has not seen (a model of another width), and how far
        (log units) that product lies from the nearest it was fitted on (``values``: the log products,
        :func:`~irene_core.predictor.novelty.product_values`).  Each fold keeps two measured products or
        more: fitted on one, a regressor has never seen the work of a product vary (trained on BERT's
        768 × 768 Linears, their 768 ↔ 3072 ones came out 10 % low on median and within ×1.27 for 90 % of
        them, model features), which says nothing of a regressor that has."""
        canonical = self.canonical_array(types)
        parts: list[tuple[np.ndarray, ...]] = []
        for kind in sorted(set(canonical[keys != 0])):
            of_kind = (canonical == kind) & (keys != 0)
            products, counts = np.unique(keys[of_kind], return_counts=True)
            measured = products[counts >= MIN_PRODUCT_LEAVES]
            if len(measured) < MIN_PRODUCTS:
                continue
            for product in measured:
                held, train = of_kind & (keys == product), of_kind & (keys != product)
                try:
                    regressor = self._new(kind).regressor.fit(X[train], y[train], groups[train])
                except IreneError:  # too few rows or models left to fit on: this product measures nothing
                    continue
                estimate = np.maximum(np.asarray(regressor.predict(X[held]), float), 1e-300)
                distance = product_distances(values[held], canonical[held], {kind: np.unique(values[train])})
                parts.append((np.log(y[held] / estimate), canonical[held], keys[held], distance))
        if not parts:
            return np.zeros(0), np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64), np.zeros(0)
        r, kinds, products, distances = (np.concatenate(p) for p in zip(*parts, strict=True))
        return r, kinds, products, distances

    def predict(self, X: np.ndarray, types: np.ndarray) -> np.ndarray:
        """Energies of leaves ``X`` of primitive ``types``; untrained primitives use the generic regressor
        (the predictor reports them as notices on the records)."""
        out = np.empty(len(types))
        for rows, key, regressor, scale in self._by_kind(types):
            energy = np.asarray(regressor.predict(X[rows]), float) * scale
            below = self._below(key, X[rows], regressor, scale)
            if below is not None:
                energy = np.where(np.isnan(below[0]), energy, below[0])
            out[rows] = np.maximum(energy, 0.0)
        return out

    def reading_shares(self, X: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per leaf, the floor rule's lower and upper readings as shares of its energy (1 where the rule
        does not apply): the interval of a leaf below its kind's training range spans both (see the
        module docstring)."""
        lower, upper = np.ones(len(types)), np.ones(len(types))
        for rows, key, regressor, scale in self._by_kind(types):
            below = self._below(key, X[rows], regressor, scale)
            if below is not None:  # the rule is at least the floor (> 0), between its two readings
                rule, low, high = below
                lower[rows] = np.where(np.isnan(rule), 1.0, low / rule)
                upper[rows] = np.where(np.isnan(rule), 1.0, high / rule)
        return lower, upper

    def _by_kind(self, types: np.ndarray) -> Iterator[tuple[np.ndarray, str, PrimitiveRegressor, float]]:
        """Per primitive a leaf of ``types`` is predicted as: its rows, the name its range is kept under
        (GENERIC for the generic regressor's), its regressor and the regressor's scale."""
        kinds = self.kind_array(types)
        for name in set(kinds):
            entry = self.entries.get(name)
            if entry is None:
                yield kinds == name, GENERIC, self._generic(), 1.0
            else:
                yield kinds == name, name, entry.regressor, float(np.exp(entry.offset))

    def _generic(self) -> PrimitiveRegressor:
        if self.generic is None:
            raise IreneError("the primitive regressors are not fitted")
        return self.generic

    # -- state ------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "min_rows": self.min_rows,
            "primitives": {
                name: {"spec": e.spec, "distribution": e.distribution, "state": e.regressor.get_state(),
                       "offset": e.offset}
                for name, e in sorted(self.entries.items())
            },
            "generic": self._generic().get_state(),
            "generic_distribution": self.generic_distribution,
            "below_range": self.below_range,
            "floor": self.floor,
            "lows": {name: low for name, low in sorted(self.lows.items())},
            "excess": {name: value for name, value in sorted(self.excess.items())},
        }

    @classmethod
    def from_state(cls, feature_names: Sequence[str], state: dict[str, Any]) -> LeafModels:
        """Restore saved leaves (older saves: ``spec`` None and no ``generic_distribution`` meant core's
        generic regressor; no ``below_range``, the regressor's own)."""
        models = cls(feature_names, state["params"], int(state["min_rows"]), state.get("below_range", "regressor"))
        floor = state.get("floor")
        models.floor = None if floor is None else float(floor)
        models.lows = {name: np.asarray(low, float) for name, low in state.get("lows", {}).items()}
        models.excess = {name: np.asarray(value, float) for name, value in state.get("excess", {}).items()}
        for name, saved in state["primitives"].items():
            spec = saved["spec"] or GENERIC
            regressor = _restore(spec, saved["distribution"], models.feature_names, models.params, saved["state"])
            models.entries[name] = _Entry(spec, saved["distribution"], regressor, float(saved.get("offset", 0.0)))
        models.generic_distribution = state.get("generic_distribution", CORE_DISTRIBUTION)
        models.generic = _restore(
            GENERIC, models.generic_distribution, models.feature_names, models.params, state["generic"]
        )
        return models


def _amounts(names: Sequence[str]) -> np.ndarray:
    """Which of ``names`` are amounts of work: flops and the bytes that measure work (not time or energy,
    what running it took)."""
    amounts: np.ndarray = np.isin(names, ["flops", *BYTE_FEATURES]) & work_features(names)
    return amounts


def excess_per_amount(X: np.ndarray, y: np.ndarray, names: Sequence[str], floor: float) -> np.ndarray:
    """Per feature of ``names``, a kind's energy above the device's launch ``floor`` per unit of each
    amount of work (:func:`_amounts`; 0 for the other features): the non-negative least-squares fit of
    ``y − floor`` on the amounts of the leaves ``X`` above the floor, each row relative to its ``y``.  How
    its excess splits between arithmetic and memory traffic, which shrink apart below the range (see the
    module docstring); all 0 where fewer than two leaves lie above the floor."""
    amounts = _amounts(names)
    per_amount = np.zeros(len(names))
    rows = (y > floor) & np.isfinite(X[:, amounts]).all(axis=1)
    if amounts.any() and rows.sum() >= 2:
        scaled = np.maximum(X[rows][:, amounts], 0.0) / y[rows, None]
        per_amount[amounts] = optimize.nnls(scaled, (y[rows] - floor) / y[rows])[0]
    return per_amount


def _describe(regressor: PrimitiveRegressor) -> str:
    describe = getattr(regressor, "describe", None)
    return describe() if callable(describe) else type(regressor).__name__
