"""Device transfer: adapt a predictor trained on one device to another from a few measured trees.

On the target trees, every node's log residual ``r = log(gt) − log(raw)`` (``raw``: the
predictor's estimate before the tree is made to add up) is fitted as ``r ≈ a + b·(log raw − c)``
(``c``: the group's mean log estimate) per group — each primitive kind at ml level, the module
level, the model level — shrunk towards its level's fit, which is shrunk towards one fit over all
nodes (each level weighing the same); a module's or model's *structure* (its level and its children's
kinds, :func:`~irene_core.predictor.novelty.structure_keys`) shifts its level's line by its own
shrunk mean residual (its own ops need not scale as the leaves do; one or two sizes cannot show a
structure's own slope).  The prior weighs ``m = σ²/τ²`` pseudo-nodes (empirical
Bayes, :func:`prior_strength`, at most :data:`PRIOR_NODES`): groups that differ clearly keep
their own scale, groups that look alike pool.  The scale ``a``
absorbs a per-kind speed or power difference, the slope ``b`` an idle-power share that weighs more
on small nodes.  Calibrated estimates are ``raw·exp(a + b·(log raw − c))``, then reconciled as usual.
A primitive the target trees lack takes the fit of one they have that performs the same computation
(``Conv1D``, GPT-2's linear layer, takes ``Linear``'s), else its level's.  A kind the predictor
holds free (0 J: a Dropout, which runs no kernel in inference, where its training measured none)
that the target measures above 0 (its call's dispatch at the target's power) costs the geometric
mean of its measured energies per call.

The intervals are widened per group (kind, level) by the larger of two log margins: how far the
target's measured nodes lie outside their intervals (the 90 % conformal quantile of that distance;
from two target trees on, each tree predicted by the calibration fitted on the others, so that the
margin measures the transfer to other models and sizes; from one tree, the tree itself), and
``z₉₀·σ/√n``, σ the spread of the log residuals and n the number of target trees: what a scale
estimated from n trees can still be off; from one tree, at least ``z₉₀·`` its level's measurement
noise, which a tree scored on itself cannot show (:func:`_one_tree_noise`: its round-to-round spread, or
how much the predictor's error on one node differed between training trees, the larger).

Beyond the calibration trees' sizes (a leaf's log distance outside the batch, sequence, flops and
bytes of its computation's calibration leaves; an inner node's largest below it, not weighted by
energy as outside the training data: calibrated on one BERT tree, the H200's decoder roots came out
30–40 % high, which only their furthest leaf, GPT-2's vocabulary, widened them for), intervals widen
further by ``|b|`` of the node's level per log unit: calibration nodes of one or two sizes cannot
show how a kind's own correction changes with size, which may differ from none by as much as the
level's trend does.  The conformal margin is measured without this term, or the next (a tree held
out is outside the others' sizes; the nodes the calibration serves mostly lie between them).

A primitive kind the calibration trees did not measure (nor one of its computation) takes the ml
level's correction, and its intervals widen by a 90 % prediction interval for a new kind's
correction, ``t₀.₉₅,ₖ₋₁·τ·√(1 + 1/k)``, τ the spread of the k measured kinds' corrections
(:func:`~irene_core.predictor.uncertainty.variance_components`).  A structure they did not measure
takes its level's line, widened by the larger of that interval for a new structure's shift and the
90 % quantile of how far the measured structures' nodes lay from the line; the nodes above it too.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from irene_core.errors import IreneError
from irene_core.predictor.leaf_models import computation, computations
from irene_core.predictor.training_ranges import Ranges
from irene_core.predictor.uncertainty import COVERAGE, Z90, measurement_noise, new_group_margin, variance_components
from irene_core.tree.schema import LEVELS, TreeRecord
from irene_core.tree.table import TreeTable

if TYPE_CHECKING:
    from irene_core.predictor.predictor import Predictor

#: The most pseudo-nodes the prior (the parent's fit) weighs in a group's shrunken fit.
PRIOR_NODES = 20.0
#: Largest |slope| of the log-log correction.
MAX_SLOPE = 0.5
_ALL = "*"


@dataclass(frozen=True)
class Fit:
    """``r = a + b·(x − c)`` in log space."""

    a: float
    b: float
    c: float

    def at(self, x: np.ndarray | float) -> np.ndarray:
        return np.asarray(self.a + self.b * (np.asarray(x, float) - self.c))

    def shifted(self, by: float) -> Fit:
        """The same line ``by`` higher."""
        return Fit(self.a + by, self.b, self.c)

    @classmethod
    def shrunk(cls, x: np.ndarray, r: np.ndarray, w: np.ndarray, prior: Fit | None, m: float = PRIOR_NODES) -> Fit:
        """Weighted least squares of ``r`` on ``x``, shrunk towards ``prior`` by ``m`` pseudo-nodes."""
        c = float(np.average(x, weights=w))
        a_hat = float(np.average(r, weights=w))
        var = float(np.average((x - c) ** 2, weights=w))
        n = float(len(x))
        if prior is None:
            b_prior, a_prior, m = 0.0, a_hat, 0.0
        else:
            b_prior, a_prior = prior.b, float(prior.at(c))
        b_hat = float(np.average((x - c) * (r - a_hat), weights=w) / var) if n >= 3 and var > 1e-12 else b_prior
        a = (n * a_hat + m * a_prior) / (n + m)
        b = float(np.clip((n * b_hat + m * b_prior) / (n + m), -MAX_SLOPE, MAX_SLOPE))
        return cls(a, b, c)


def same_computation(measured: Sequence[str], kinds: Iterable[str]) -> dict[str, str]:
    """For each of ``kinds`` not ``measured``, the first measured kind of the same computation, if any."""
    by_computation: dict[str, str] = {}
    for kind in measured:
        by_computation.setdefault(computation(kind), kind)
    return {k: by_computation[computation(k)] for k in kinds
            if k not in measured and computation(k) in by_computation}


def prior_strength(r: np.ndarray, groups: np.ndarray) -> float:
    """Pseudo-nodes ``σ²/τ²`` of the parent's fit in each group's fit (at most :data:`PRIOR_NODES`; see
    :func:`~irene_core.predictor.uncertainty.variance_components`)."""
    components = variance_components(r, groups)
    if components is None or components[1] <= 0:
        return PRIOR_NODES
    return min(components[0] / components[1], PRIOR_NODES)


@dataclass
class DeviceCalibration:
    """Per-group log-space corrections of raw estimates, and what they were fitted on."""

    fits: dict[str, Fit] = field(default_factory=dict)
    trees: list[str] = field(default_factory=list)
    #: Energy per call (J) of the ml groups the predictor holds free that the target measured.
    free: dict[str, float] = field(default_factory=dict)
    #: Per primitive kind, the sizes of the calibration trees' leaves (None: saved before ranges).
    ranges: Ranges | None = None
    #: Log margin of a primitive kind the calibration trees did not measure (``new_group_margin``).
    unmeasured: float = 0.0
    #: Per inner level, the log margin of a structure the calibration trees did not measure.
    unmeasured_structure: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fit(cls, raw: np.ndarray, truth: np.ndarray, levels: np.ndarray, groups: np.ndarray,
            trees: Sequence[str], kinds: Iterable[str] = ()) -> DeviceCalibration:
        """The calibration of the raw estimates ``raw`` to the measured ``truth`` (NaN: not measured);
        a primitive of ``kinds`` that the target trees lack takes the fit of one they have that performs
        the same computation (``Conv1D`` ≅ ``Linear``).  ``groups``: a leaf's kind, an inner node's
        structure (:meth:`~irene_core.predictor.predictor.Predictor.calibration_groups`)."""
        ok = (raw > 0) & (truth > 0)
        if not ok.any():
            raise IreneError("the target trees have no node with a positive measured energy to calibrate on")
        free = {  # groups the predictor holds free everywhere, measured above 0 on the target
            g: float(np.exp(np.mean(np.log(truth[rows & (truth > 0)]))))
            for g in sorted(set(groups[(levels == "ml") & (raw <= 0) & (truth > 0)]))
            for rows in [(levels == "ml") & (groups == g)]
            if not (raw[rows] > 0).any()
        }
        x, r = np.log(raw[ok]), np.log(truth[ok]) - np.log(raw[ok])
        levels, groups = levels[ok], groups[ok]
        count = {lv: int((levels == lv).sum()) for lv in LEVELS}
        weight = np.array([1.0 / count[lv] for lv in levels])
        overall = Fit.shrunk(x, r, weight, None)
        calibration = cls({_ALL: overall}, list(trees), free)
        m = prior_strength(r, levels)
        for level in LEVELS:
            rows = levels == level
            if rows.any():
                calibration.fits[level] = Fit.shrunk(x[rows], r[rows], weight[rows], overall, m)
        ml = levels == "ml"
        m = prior_strength(r[ml], groups[ml])
        calibration.unmeasured = new_group_margin(variance_components(r[ml], groups[ml]))
        for group in sorted(set(groups[ml])):
            rows = groups == group
            calibration.fits[group] = Fit.shrunk(x[rows], r[rows], weight[rows], calibration.fits["ml"], m)
        for kind, mate in same_computation(sorted(set(groups[ml])), kinds).items():
            calibration.fits[kind] = calibration.fits[mate]
        for level in LEVELS[1:]:  # the inner levels
            at = levels == level
            if at.any():
                calibration._fit_structures(level, x[at], r[at], groups[at])
        return calibration

    def _fit_structures(self, level: str, x: np.ndarray, r: np.ndarray, structures: np.ndarray) -> None:
        """Each inner-node structure's fit at ``level``: its level's line shifted by the structure's mean
        residual from it, shrunk (empirical Bayes); and the margin of a structure not measured."""
        off = r - self.fits[level].at(x)
        m = prior_strength(off, structures)
        self.unmeasured_structure[level] = max(new_group_margin(variance_components(off, structures)),
                                               float(np.quantile(np.abs(off), COVERAGE)))
        for structure in sorted(set(structures)):
            rows = structures == structure
            self.fits[structure] = self.fits[level].shifted(float(off[rows].sum()) / (rows.sum() + m))

    def _fit_for(self, level: str, group: str) -> Fit:
        return self.fits.get(group) or self.fits.get(level) or self.fits[_ALL]

    def correction(self, x: np.ndarray, levels: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Log correction of each estimate ``exp(x)``."""
        out = np.zeros(len(x))
        for key in set(zip(levels, groups, strict=True)):
            rows = (levels == key[0]) & (groups == key[1])
            out[rows] = self._fit_for(*key).at(x[rows])
        return out

    def outside(self, table: TreeTable, kinds: np.ndarray) -> np.ndarray:
        """Every node's log distances ``(above, below)`` outside the sizes of its computation's leaves in
        the calibration trees (inner nodes: their furthest leaf's, see the module docstring; 0 in a
        calibration saved before ranges)."""
        if self.ranges is None:
            return np.zeros((len(table), 2))
        return self.ranges.node_distance(table, computations(kinds), None)

    def trend(self, level: str) -> float:
        """Widening per log unit beyond the calibration trees' sizes at ``level``: ``|b|`` of its fit."""
        return abs(self._fit_for(level, level).b)

    def widening(self, levels: np.ndarray, distance: np.ndarray, kinds: np.ndarray | None = None) -> np.ndarray:
        """Log widening of nodes beyond the calibration data: at log distances ``(above, below)`` outside
        it, its level's :meth:`trend` per log unit; a leaf of a primitive kind of ``kinds`` that the
        calibration trees did not measure, :attr:`unmeasured` (see the module docstring)."""
        slope = {lv: self.trend(lv) for lv in set(levels)}
        out: np.ndarray = np.array([slope[lv] for lv in levels]) * distance.sum(axis=1)
        if kinds is not None:
            out[(levels == "ml") & ~self.measured(kinds)] += self.unmeasured
        return out

    def unmeasured_structures(self, levels: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Per node, its level's :attr:`unmeasured_structure` margin where the calibration trees did not
        measure its structure (``groups``); 0 for the rest, leaves included."""
        margins = np.zeros(len(levels))
        unmeasured = ~self.measured(groups)
        for level, margin in self.unmeasured_structure.items():
            margins[(levels == level) & unmeasured] = margin
        return margins

    def measured(self, groups: np.ndarray) -> np.ndarray:
        """Whether the calibration trees measured each group: a primitive kind (or one of its
        computation), an inner node's structure."""
        found: np.ndarray = np.isin(groups.astype(str), [*self.fits, *self.free])
        return found

    def apply(self, raw: np.ndarray, levels: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Calibrated raw estimates (0 stays 0, except in the groups the target measured above 0)."""
        positive = raw > 0
        out = np.where(positive, raw, 0.0)
        out[positive] = raw[positive] * np.exp(self.correction(np.log(raw[positive]), levels[positive],
                                                                groups[positive]))
        for group, energy in self.free.items():
            out[~positive & (levels == "ml") & (groups == group)] = energy
        return out

    def report(self, labels: Mapping[str, str]) -> dict[str, Any]:
        """What the calibration was fitted on and its scale per group (for the training report), a
        structure named by its ``labels`` (the node types that had it; with its key as well where another
        structure had the same types)."""
        groups: dict[str, dict[str, float]] = {}
        for group, fit in sorted(self.fits.items()):
            name = labels.get(group, group)
            groups[f"{name} ({group})" if name in groups else name] = {
                "scale": round(float(np.exp(fit.a)), 4), "slope": round(fit.b, 4)}
        return {
            "trees": self.trees,
            "groups": dict(sorted(groups.items())),
            "free_groups_j": {g: float(f"{e:.4g}") for g, e in sorted(self.free.items())},
            "widening_per_log_unit": {lv: round(self.trend(lv), 4) for lv in LEVELS},
            "unmeasured_kind_widening": round(self.unmeasured, 4),
            "unmeasured_structure_widening": {lv: round(v, 4) for lv, v in self.unmeasured_structure.items()},
        }

    def get_state(self) -> dict[str, Any]:
        names = sorted(self.fits)
        return {
            "groups": names,
            "fits": np.array([[self.fits[g].a, self.fits[g].b, self.fits[g].c] for g in names], float).reshape(-1, 3),
            "trees": self.trees,
            "free_groups": sorted(self.free),
            "free_energy": np.array([self.free[g] for g in sorted(self.free)], float),
            **({} if self.ranges is None else {"ranges": self.ranges.get_state()}),
            "unmeasured": self.unmeasured,
            "unmeasured_structure": self.unmeasured_structure,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> DeviceCalibration:
        names = list(state["groups"])
        fits = np.asarray(state["fits"], float)
        if fits.shape != (len(names), 3):
            raise ValueError(f"calibration fits have shape {fits.shape}, expected {(len(names), 3)}")
        if _ALL not in names:
            raise ValueError("calibration lacks its overall fit")
        free = np.asarray(state.get("free_energy", []), float)  # absent: saved before free groups
        ranges = state.get("ranges")  # absent, as the margin of unmeasured kinds: saved before them
        unmeasured = float(state.get("unmeasured", 0.0))
        structures = {str(lv): float(v) for lv, v in state.get("unmeasured_structure", {}).items()}  # absent: before
        for margin in (unmeasured, *structures.values()):
            if not np.isfinite(margin) or margin < 0:
                raise ValueError(f"calibration margins of unmeasured groups must be finite and >= 0, got {margin}")
        return cls({g: Fit(*map(float, fits[i])) for i, g in enumerate(names)}, list(state["trees"]),
                   dict(zip(state.get("free_groups", []), map(float, free), strict=True)),
                   None if ranges is None else Ranges.from_state(ranges), unmeasured, structures)


def calibrate(predictor: Predictor, records: Sequence[TreeRecord]) -> Predictor:
    """A copy of ``predictor`` calibrated on measured ``records`` of the target device (replacing any
    earlier calibration), with widened intervals and the calibration in its training report."""
    if not predictor.is_fitted:
        raise IreneError("the predictor is not trained: nothing to calibrate")
    if not records:
        raise IreneError("no target trees to calibrate on")
    settings = sorted({f"{r.dtype} {r.phase}" for r in records})
    if len(settings) > 1:  # one correction per kind cannot serve two settings that cost differently
        raise IreneError(f"the target trees mix {', '.join(settings)} trees: calibrate one dtype and phase at a time")
    devices = sorted({r.device for r in records if r.device})
    if len(devices) > 1:  # nor two devices
        raise IreneError(f"the target trees come from devices {', '.join(devices)}: calibrate one device at a time "
                         "(irene calibrate --device LABEL)")
    table = TreeTable.from_records(list(records))
    if not (table.truth > 0).any():
        raise IreneError("the target trees have no measured energy (ground_truth_energy): nothing to calibrate on")
    new = copy.deepcopy(predictor)
    new.calibration_ = None
    raw = new.raw_estimates(table)
    node_kinds = new._kinds(table)
    groups = new.calibration_groups(table, node_kinds, new._structure_keys(table))
    trees = [r.key.describe() for r in records]
    assert new.leaves_ is not None  # fitted
    kinds = sorted(new.leaves_.entries)

    def fitted(rows: np.ndarray) -> DeviceCalibration:
        return DeviceCalibration.fit(raw[rows], table.truth[rows], table.level[rows], groups[rows], trees, kinds)

    new.calibration_ = fitted(np.ones(len(table), dtype=bool))
    new.calibration_.ranges = Ranges.fit(table, table.is_leaf & (table.truth > 0), computations(node_kinds))
    noise = _one_tree_noise(predictor, table) if len(records) == 1 else {}  # a tree held out shows it itself
    if predictor.intervals_ is not None:
        new.intervals_ = copy.deepcopy(predictor.intervals_)
        new.intervals_.extra = {}  # an earlier calibration's widening goes with it
        if len(records) == 1:  # the tree itself tells what it can
            scored = [(new, table)]
        else:  # each tree predicted by the calibration on the others: transfer across models and sizes
            scored = [(_with(new, fitted(table.record_index != i)), TreeTable.from_records([record]))
                      for i, record in enumerate(records)]
        widening = _widening(scored, len(records), noise)
        for kind, mate in same_computation(sorted(widening), kinds).items():
            widening[kind] = widening[mate]
        new.intervals_ = new.intervals_.widened(widening)
    labels = {g: f"{level} {', '.join(sorted(set(table.type[groups == g])))}"
              for level in LEVELS[1:] for g in set(groups[table.level == level])}
    new.training_ = {**predictor.training_, "calibration": {
        **new.calibration_.report(labels), "devices": devices,  # the settings the calibrated predictor stands for:
        "dtypes": sorted({r.dtype for r in records}), "phases": sorted({r.phase for r in records}),
        "measurement_noise": {level: round(value, 4) for level, value in noise.items()},
    }}
    if devices:
        new.hardware_ = f"{devices[0]} (calibrated from {predictor.hardware})"
    return new


def _one_tree_noise(predictor: Predictor, table: TreeTable) -> dict[str, float]:
    """Per level, how much another measurement of a node may differ, which one target tree scored on itself
    cannot show: the larger of its nodes' round-to-round spread (:func:`measurement_noise`) and how much the
    predictor's error on one node differed between its training trees
    (:func:`~irene_core.predictor.uncertainty.replicate_noise`: runs differ more than one run's rounds,
    and a tree of the paper's release has no rounds)."""
    replicates = {} if predictor.intervals_ is None else predictor.intervals_.replicates
    return {level: max(spread, replicates.get(level, 0.0)) for level, spread in measurement_noise(table).items()}


def _with(predictor: Predictor, calibration: DeviceCalibration) -> Predictor:
    """A shallow copy of ``predictor`` with ``calibration``, less its widening beyond its data (the
    conformal margin is measured without it: see the module docstring)."""
    out = copy.copy(predictor)
    out.calibration_ = dataclasses.replace(calibration, ranges=None, unmeasured=0.0, unmeasured_structure={})
    return out


def _widening(scored: Sequence[tuple[Predictor, TreeTable]], n_trees: int, noise: Mapping[str, float]
              ) -> dict[str, float]:
    """Per group and level, the log widening of the intervals (not yet widened) of the calibrated
    predictors ``scored`` on their measured trees: the largest of the 90 % conformal quantile of how far
    the nodes lie outside their intervals, ``z₉₀·σ/√n_trees`` (σ: spread of the log residuals) and
    ``z₉₀·`` the measurement ``noise`` of their level (what one more measurement of a node may differ
    by, which a tree scored on itself cannot show; a tree held out shows it).  A kind or level measured at
    one shape only (its nodes one measurement) shows no spread of its own: it takes its level's (the level,
    the pooled one)."""
    outside, residual, levels, groups, shapes = [], [], [], [], []
    for predictor, table in scored:
        energies, own = predictor.predict_table(table)
        bounds = predictor.annotate(table, energies, own)
        ok = (table.truth > 0) & (bounds.low > 0) & (energies > 0)
        truth = np.log(table.truth[ok])
        outside.append(np.maximum(np.maximum(np.log(bounds.low[ok]) - truth, truth - np.log(bounds.high[ok])), 0.0))
        residual.append(truth - np.log(energies[ok]))
        levels.append(table.level[ok])
        groups.append(predictor._groups(table, predictor._kinds(table))[ok])
        shapes.append(predictor._shape_keys(table)[ok])
    out, res, lv, gr, shape = map(np.concatenate, (outside, residual, levels, groups, shapes))

    def margin(rows: np.ndarray) -> float:
        n = int(rows.sum())
        conformal = float(np.quantile(out[rows], min(1.0, COVERAGE * (1 + 1 / n))))
        floor = Z90 * max(noise.get(level, 0.0) for level in set(lv[rows]))
        return max(conformal, Z90 * float(np.std(res[rows])) / float(np.sqrt(n_trees)), floor)

    pooled = margin(np.ones(len(lv), dtype=bool))  # a level with one measured shape cannot tell its own
    widening: dict[str, float] = {level: pooled for level in LEVELS}
    for group in sorted(set(gr) | set(lv)):
        rows = (gr == group) | (lv == group)
        if len(np.unique(shape[rows])) >= 2:  # nodes of one shape: one measurement (copies, in the release)
            widening[group] = margin(rows)
    return widening
