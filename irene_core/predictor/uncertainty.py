"""90 % prediction intervals: how wide, from how the predictor erred where it could be checked.

When a predictor is fitted it is refitted on held-out folds (:data:`FOLDS` − 1 grouped by model,
one per cluster of look-alike models, the larger and the smaller halves of the sizes, one size at a
time, and the folds by model once more on half of the sizes), and every held-out node's log residual
``log(truth / estimate)`` is kept with its *group*: its primitive kind at ml level, else its level,
prefixed by its novelty in that fold (:mod:`irene_core.predictor.novelty`: known, :data:`ONE_MODEL`,
:data:`NOVEL`, :data:`NEW_FAMILY`; :data:`FOREIGN` residuals come from the aggregator's refits without
one structure at a time).  A predicted node's interval is

    ``estimate · exp([q₅ − w − c, q₉₅ + w + c])``

- ``q₅, q₉₅``: its group's residual quantiles (:meth:`IntervalModel.fit`).  Known modules and models
  take ± the 90 % quantile of the absolute residual (a held-out model's layers all err one way, and
  the folds show only a few models' signs); novel tiers ± the largest over folds of a fold's
  (:func:`_widest_fold`: a novel node errs one way in one fold and the other in the next); a novel
  node is never surer than a known one, nor one of a new family than a novel one; a group without
  residuals falls back along :data:`_FALLBACK`; and no node is surer than one more measurement of it
  may differ (:func:`measurement_noise`).
- ``w``: its widening outside the training data (:mod:`irene_core.predictor.training_ranges`), above
  and below apart: an offset and a slope per log unit, each the 90 % quantile regression
  (:func:`affine_quantile`) of what the size folds' held-out nodes outside their fold's ranges needed
  beyond their group's quantiles, per kind or level, growing in proportion beyond the distances it
  was measured at (its *reach*); an inner node takes the offset only as far as its leaves outside
  could move it (:func:`offset_caps`).
- ``c``: a device calibration's widening (:mod:`irene_core.predictor.calibration`).

Beyond that, an inner node's bounds span the floor rule's readings of its leaves below the training
range (:func:`spanning_readings`) and the margin of its leaves of a kind without a regressor
(:func:`spanning_unseen_kinds`, :func:`new_kind_margin`) or of a product no training leaf had
(:attr:`IntervalModel.new_product`: a model of another width).  Every node's interval is its own, not the
sum of its children's.  Each rule, and what it was measured to do on device_1, is in
docs/predictor.md (*Intervals and* ``extrapolated``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, stats
from sklearn.metrics import mean_pinball_loss

from irene_core.predictor.novelty import (
    SAME_PRODUCT,
    of_new_family,
    product_distances,
    product_keys,
    product_values,
    shape_sources,
    source_counts,
)
from irene_core.predictor.training_ranges import UNBOUNDED, Ranges, leaf_sum
from irene_core.tree.schema import LEVELS
from irene_core.tree.table import TreeTable

#: Folds of the out-of-fold step that measures residuals: FOLDS − 1 grouped by model, one by size.
FOLDS = 4
#: Held-out leaves a primitive kind needs for its own residual quantiles (and, outside their fold's
#: range, for its own widening per log unit).
MIN_KIND_RESIDUALS = 50
#: Held-out novel nodes a level needs for its own novel quantiles, and a fold to count in the widest-fold rule.
MIN_NOVEL_RESIDUALS = 20
#: Prefix of the residual groups of novel nodes.
NOVEL = "novel:"
#: Prefix of the residual groups of novel inner nodes of a structure no training node had.
FOREIGN = "foreign:"
#: Prefix of the residual groups of novel nodes of a model family (``meta.family``) their training lacked.
NEW_FAMILY = "new-family:"
#: Prefix of the residual groups of known leaves whose shape one training model had (see the novelty module).
ONE_MODEL = "one-model:"
#: Levels whose known nodes get a symmetric interval.
SYMMETRIC_LEVELS: tuple[str, ...] = ("module", "model")
#: Held-out nodes outside their fold's range needed to estimate the widening per log unit.
MIN_OUTSIDE = 20
#: Widening per log unit outside the training data for a level where it cannot be estimated.
DEFAULT_SLOPE = 1.0
#: Prefix of the slopes' keys for the widening below the training data.
BELOW = "below:"
#: Prefix of the widening terms measured by the size folds of one size at a time (:meth:`IntervalModel.side_widening`).
AXIS = "axis:"
#: The interval's coverage (two-sided, central).
COVERAGE = 0.90

_TAIL = (1.0 - COVERAGE) / 2
#: z of a two-sided :data:`COVERAGE` normal interval (1.645).
Z90 = float(stats.norm.ppf(1.0 - _TAIL))


def spanning_readings(table: TreeTable, energies: np.ndarray, low: np.ndarray, high: np.ndarray, lower: np.ndarray,
                      upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bounds ``(low, high)`` of every node, stretched to span the floor rule's readings of the leaves
    below it (``lower``, ``upper``: per node, a leaf's readings as shares of its energy, 1 elsewhere):
    ``low · (1 − G₋/E)`` and ``high · (1 + G₊/E)``, ``G₋`` (``G₊``) the energy the lower (upper) reading
    takes off (adds to) the node's leaves, ``E`` the node's."""
    taken = np.clip(_leaf_energy_share(table, energies, 1.0 - lower), 0.0, 1.0)
    added = np.clip(_leaf_energy_share(table, energies, upper - 1.0), 0.0, None)
    return np.minimum(low, low * (1.0 - taken)), np.maximum(high, high * (1.0 + added))


def _leaf_energy_share(table: TreeTable, energies: np.ndarray, leaf_values: np.ndarray) -> np.ndarray:
    """Each node's ``Σ E·v`` over its leaves, ``v`` their ``leaf_values`` (an entry or a row per node), over
    its own ``E`` (the predicted ``energies``; 0 for a node without any)."""
    shape = (-1, *([1] * (leaf_values.ndim - 1)))  # a column against a row per node
    weight = np.clip(energies, 0.0, None).reshape(shape)
    per_energy = (1.0 / np.where(energies > 0, energies, np.inf)).reshape(shape)
    share: np.ndarray = leaf_sum(table, weight * leaf_values) * per_energy
    return share


def offset_caps(table: TreeTable, energies: np.ndarray, leaf_widening: np.ndarray) -> np.ndarray:
    """Per node and direction ``(above, below)`` the training data, the most its leaves outside that way
    could add to it, were each off by its own widening ``leaf_widening`` (log units, a row per node;
    leaves only): ``Σ E·(e^w − 1) / E_node``, ``E`` the leaves' predicted energies (unbounded for a leaf).
    An inner node takes its offset that far, or by its share outside if that is more
    (:meth:`IntervalModel.side_widening`): a BERT root whose pooler alone lies below its training sizes
    (0.2 % of its energy) needs no more than the pooler could add."""
    caps: np.ndarray = np.where(table.is_leaf[:, None], np.inf,
                                _leaf_energy_share(table, energies, np.expm1(leaf_widening)))
    return caps


def spanning_unseen_kinds(table: TreeTable, energies: np.ndarray, low: np.ndarray, high: np.ndarray,
                          up: np.ndarray, down: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bounds ``(low, high)`` of every inner node widened for the leaves below it of kinds without a
    regressor of their own, and of products no training leaf had (``up``, ``down``: one column per such
    kind, how far each node's energy may lie above and below its estimate ``energies`` were that kind's
    leaves to cost their margin more or less, ``e^±m``, the margin of a new kind or of a new product:
    the larger of what those leaves add to the node, ``G·(e^m − 1)`` above and ``G·(1 − e^−m)`` below,
    ``G`` their estimate, and how far the predictor's own estimate of the node moves, its own work being
    estimated from its children's).  Such a kind may be off by its
    margin on all its leaves at once (one bias), which the inner nodes' residuals, measured on trained
    kinds, never show; the kinds err independently of each other and of the node's own error, so the
    node's half-widths add in quadrature with those shifts.  A leaf's own interval already holds its
    margin."""
    if up.shape[1] == 0:
        return low, high
    inner = ~table.is_leaf
    with np.errstate(invalid="ignore", over="ignore"):  # a baseline's estimate overflowed to inf: its shift is nan
        widened_high = energies + np.hypot(high - energies, np.linalg.norm(up, axis=1))
        widened_low = np.maximum(energies - np.hypot(energies - low, np.linalg.norm(down, axis=1)), 0.0)
    # fmin / fmax: a node whose shift is undefined (nan) keeps its bounds
    return np.where(inner, np.fmin(low, widened_low), low), np.where(inner, np.fmax(high, widened_high), high)


def measurement_noise(table: TreeTable) -> dict[str, float]:
    """Per level, how much one more measurement of a node may differ from another (relative, ≈ a log
    spread): the root mean square over the measured nodes of their round-to-round spread (the
    coefficient of variation of one round) times √(2 / rounds), each ground truth being the mean of its
    record's rounds (two when the record does not say); 0 for a level without spreads (one round, the
    paper's release)."""
    spread = np.array([np.nan if n.spread_pct is None else n.spread_pct / 100 for n in table.nodes])
    rounds = np.array([max(int(r.meta.get("rounds", 2)), 1) for r in table.records], dtype=float)[table.record_index]
    measured = (table.truth > 0) & np.isfinite(spread)
    variance = spread**2 * 2 / rounds
    return {level: float(np.sqrt(np.mean(variance[rows]))) if rows.any() else 0.0
            for level in LEVELS for rows in [measured & (table.level == level)]}


def replicate_noise(table: TreeTable, keys: np.ndarray, residuals: np.ndarray) -> dict[str, float]:
    """Per level, how much a prediction's error on one node differs from one tree to another (another run,
    another model around it): the pooled standard deviation of the log ``residuals`` (NaN: not measured) of
    one shape (``keys``: :func:`~irene_core.predictor.novelty.shape_keys`) across the trees that measured
    it, one value per tree and shape (their mean).  With features that do not read a run it is how much the
    measurements differ; a predictor that reads the run's times follows part of it.  A level without a
    shape measured in two trees takes the nearest level below that has one (a model's replicate would be
    the same model at the same size measured twice); none where no level has."""
    measured = np.isfinite(residuals)
    pairs, index = np.unique(np.column_stack([keys[measured], table.record_index[measured]]), axis=0,
                             return_inverse=True)
    index = index.ravel()
    means = np.bincount(index, weights=residuals[measured]) / np.bincount(index)
    levels = np.empty(len(pairs), dtype=object)
    levels[index] = table.level[measured]
    out: dict[str, float] = {}
    for level in LEVELS:
        rows = levels == level
        _, counts = np.unique(pairs[rows, 0], return_counts=True)
        components = variance_components(means[rows], pairs[rows, 0]) if (counts > 1).any() else None
        if components is not None:
            out[level] = float(np.sqrt(components[0]))
        elif out:
            out[level] = out[LEVELS[LEVELS.index(level) - 1]]
    return out


def variance_components(r: np.ndarray, groups: np.ndarray) -> tuple[float, float, int] | None:
    """``(σ², τ², k)``: the pooled variance of ``r`` within the k groups, and the variance of the group
    means less their sampling variance σ²/n (None with fewer than two groups or no node to spare)."""
    names, index, counts = np.unique(groups.astype(str), return_inverse=True, return_counts=True)
    if len(names) < 2 or len(r) <= len(names):
        return None
    means = np.bincount(index, weights=r) / counts
    sigma2 = float(np.sum((r - means[index]) ** 2)) / (len(r) - len(names))
    return sigma2, float(np.var(means, ddof=1)) - sigma2 * float(np.mean(1.0 / counts)), len(names)


def new_group_margin(components: tuple[float, float, int] | None, within: bool = False) -> float:
    """Log half-width of a 90 % prediction interval, from the k measured groups' spread τ (and σ within
    them; see :func:`variance_components`), for the mean of a group not measured,
    ``t₀.₉₅,ₖ₋₁·τ·√(1 + 1/k)``, or, ``within``, for one of its values, ``t₀.₉₅,ₖ₋₁·√(τ²(1 + 1/k) + σ²)``
    (0 with fewer than two groups)."""
    if components is None:
        return 0.0
    sigma2, tau2, k = components
    variance = max(tau2, 0.0) * (1 + 1 / k) + (sigma2 if within else 0.0)
    return float(stats.t.ppf(1 - _TAIL, k - 1)) * float(np.sqrt(variance))


def new_kind_margin(residuals: tuple[np.ndarray, np.ndarray]) -> float:
    """The log margin of a primitive kind without a regressor, from the generic regressor's
    ``(log residual, computation)`` on each computation held out in turn
    (:meth:`~irene_core.predictor.leaf_models.LeafModels.unseen_kind_residuals`): a 90 % prediction
    interval for one leaf of a computation not measured (:func:`new_group_margin`, ``within``)."""
    return new_group_margin(variance_components(*residuals), within=True)


def interval_group(level: str, kind: str) -> str:
    """The residual group of a known node: its kind at ml level, else its level."""
    return kind if level == "ml" else level


def interval_groups(
    levels: np.ndarray, kinds: np.ndarray, novel: np.ndarray, foreign: np.ndarray | None = None,
    new_family: np.ndarray | None = None, one_model: np.ndarray | None = None,
) -> np.ndarray:
    """The residual group of each node: :func:`interval_group`, prefixed :data:`NEW_FAMILY` for novel
    roots of a ``new_family`` and other novel nodes of one not of an unseen structure, :data:`FOREIGN`
    for other novel nodes of an unseen structure, :data:`NOVEL` for other novel nodes,
    :data:`ONE_MODEL` for known nodes of ``one_model``."""
    foreign, new_family, one_model = (
        np.zeros(len(levels), dtype=bool) if x is None else x for x in (foreign, new_family, one_model))
    return np.array([
        (NEW_FAMILY if w and (lv == "model" or not f) else FOREIGN if f else NOVEL if n else ONE_MODEL if o else "")
        + interval_group(lv, k)
        for lv, k, n, f, w, o in zip(levels, kinds, novel, novel & foreign, novel & new_family, one_model,
                                     strict=True)
    ], dtype=object)


#: The novelty tiers of held-out nodes whose quantiles come from the widest fold.
_TIERS = (NOVEL, NEW_FAMILY)
#: The tiers of held-out nodes whose quantiles are their own (besides the known nodes').
_OWN_TIERS = (*_TIERS, ONE_MODEL)
#: The prefixes of the groups of novel nodes.
_NOVELTIES = (NOVEL, NEW_FAMILY, FOREIGN)
#: Per group prefix (the first that matches; "": a known node), the prefixes of its level's quantiles to
#: fall back on, in order.  A known node takes a one-model leaf's before the novel ones (a look-up of a
#: shape several models had is no less sure).  A new family's come last: trained on two models of two
#: families, every node the folds by model hold out is of a new family, and those are all a level has.
_FALLBACK = ((FOREIGN, (FOREIGN, NOVEL, "", NEW_FAMILY)), (NEW_FAMILY, (NEW_FAMILY, NOVEL, "")),
             (NOVEL, (NOVEL, "", NEW_FAMILY)), (ONE_MODEL, (ONE_MODEL, "", NOVEL, NEW_FAMILY)),
             ("", ("", ONE_MODEL, NOVEL, NEW_FAMILY)))
#: The level whose quantiles an inner level without any takes.
_LEVEL_BELOW = {"model": "module", "module": "ml"}


def _widest(first: tuple[float, float], *others: tuple[float, float] | None) -> tuple[float, float]:
    """The union of the given ``(low, high)`` quantiles (None: absent)."""
    found = [first, *(q for q in others if q is not None)]
    return min(q[0] for q in found), max(q[1] for q in found)


def _at_least(quantiles: dict[str, tuple[float, float]], name: str, floor: tuple[float, float] | None) -> None:
    """``quantiles[name]`` widened to ``floor`` where both exist."""
    if name in quantiles:
        quantiles[name] = _widest(quantiles[name], floor)


def _most_novel(quantiles: Mapping[str, tuple[float, float]], level: str) -> tuple[float, float] | None:
    """The quantiles of ``level``'s most novel tier that has some (new family, novel, known; the wider
    each, see :meth:`IntervalModel.fit`)."""
    return next((quantiles[g] for g in (NEW_FAMILY + level, NOVEL + level, level) if g in quantiles), None)


def _plain(group: str) -> str:
    """``group`` without its novelty prefix."""
    return next((group.removeprefix(p) for p in (*_NOVELTIES, ONE_MODEL) if group.startswith(p)), group)


def _is_novel(group: str) -> bool:
    """Whether ``group`` holds novel nodes (novel, of a new family or of an unseen structure)."""
    return group.startswith(_NOVELTIES)


@dataclass
class Residuals:
    """Held-out log residuals with each node's group and distances ``(above, below)`` its fold's
    training data."""

    log_ratio: list[np.ndarray] = field(default_factory=list)
    groups: list[np.ndarray] = field(default_factory=list)
    levels: list[np.ndarray] = field(default_factory=list)
    distance: list[np.ndarray] = field(default_factory=list)

    def folds(self) -> np.ndarray:
        """The fold (order of :meth:`add`) of every residual."""
        return np.concatenate([np.full(len(r), i) for i, r in enumerate(self.log_ratio)]) if self.log_ratio else (
            np.zeros(0, dtype=int))

    def add(self, truth: np.ndarray, pred: np.ndarray, levels: np.ndarray, kinds: np.ndarray, distance: np.ndarray,
            novel: np.ndarray, new_family: np.ndarray | None = None, one_model: np.ndarray | None = None,
            kept: np.ndarray | None = None) -> None:
        """One fold's held-out nodes (those ``kept``, default all) with ground truth and a positive prediction."""
        ok = (truth > 0) & (pred > 0) & (True if kept is None else kept)
        self.log_ratio.append(np.log(truth[ok] / pred[ok]))
        self.levels.append(levels[ok])
        self.groups.append(interval_groups(levels[ok], kinds[ok], novel[ok], None,
                                           *(None if x is None else x[ok] for x in (new_family, one_model))))
        self.distance.append(distance[ok])

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(log_ratio, levels, groups, distance)`` of every residual."""
        if not self.log_ratio:
            empty = np.zeros(0, dtype=object)
            return np.zeros(0), empty, empty, np.zeros((0, 2))
        return (np.concatenate(self.log_ratio), np.concatenate(self.levels), np.concatenate(self.groups),
                np.concatenate(self.distance))


def _with_novel_leaves(
    by_model: Residuals, *others: Residuals | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(log_ratio, levels, groups, folds)`` of ``by_model`` and of the novel leaves of the ``others`` (the
    size folds' held-out leaves inside their fold's ranges: new sizes of a trained model), each fold
    numbered apart."""
    r, levels, groups, _ = by_model.arrays()
    folds = by_model.folds()
    for other in others:
        if other is None:
            continue
        r2, levels2, groups2, _ = other.arrays()
        novel = (levels2 == "ml") & np.array([_is_novel(g) for g in groups2], dtype=bool)
        folds2 = other.folds() + (int(folds.max()) + 1 if len(folds) else 0)
        r, levels, groups, folds = (np.concatenate([a, b[novel]]) for a, b in (
            (r, r2), (levels, levels2), (groups, groups2), (folds, folds2)))
    return r, levels, groups, folds


def affine_quantile(need: np.ndarray, distance: np.ndarray) -> tuple[float, float]:
    """``(o, s) >= 0`` such that ``o + s·d`` is the :data:`COVERAGE` quantile regression of ``need`` on
    ``distance`` (all > 0): the least pinball loss over ``s`` in ``[0, q₉₀(need / d)]`` (the slope of
    the line through the origin that covers as many), ``o`` the quantile of ``need − s·d`` at each; of
    equal losses (one distance cannot tell an offset from a slope) the steepest, the smallest offset."""
    steepest = float(np.quantile(need / distance, COVERAGE))

    def offset(s: float) -> float:
        return max(float(np.quantile(need - s * distance, COVERAGE)), 0.0)

    def loss(s: float) -> float:
        return float(mean_pinball_loss(need, offset(s) + s * distance, alpha=COVERAGE))

    candidates = [0.0, steepest]
    if steepest > 0:
        candidates.append(float(optimize.minimize_scalar(loss, bounds=(0.0, steepest), method="bounded").x))
    losses = [loss(s) for s in candidates]
    s = max(s for s, value in zip(candidates, losses, strict=True) if value <= min(losses) * (1 + 1e-9) + 1e-12)
    return offset(s), s


def _half_width(log_ratio: np.ndarray) -> float:
    """The half-width of a symmetric interval holding :data:`COVERAGE` of ``log_ratio``."""
    return float(np.quantile(np.abs(log_ratio), COVERAGE))


def new_product_widths(
    r: np.ndarray, kinds: np.ndarray, products: np.ndarray, distances: np.ndarray
) -> tuple[dict[str, float], dict[str, float]]:
    """Per kind, and ``"ml"`` over every kind (for a kind with one product), the log half-width of a leaf
    of a product training lacked: the widest held-out product's (:func:`_widest_fold`, each product one
    fold: a product's leaves share one error, a width's); and its *reach*, the furthest of those held-out
    products from the nearest they were fitted on (``distances``, log units).  Empty without residuals."""
    if not len(r):
        return {}, {}
    names = [(str(kind), kinds == kind) for kind in set(kinds)] + [("ml", np.ones(len(r), dtype=bool))]
    return ({name: _widest_fold(r[rows], products[rows]) for name, rows in names},
            {name: float(distances[rows].max()) for name, rows in names})


def _widest_fold(log_ratio: np.ndarray, folds: np.ndarray) -> float:
    """The largest over folds of a fold's :func:`_half_width`, among folds with at least
    :data:`MIN_NOVEL_RESIDUALS` residuals (the quantile of a few is their maximum: one odd layer of one
    model); all folds' together when none has that many."""
    labels, counts = np.unique(folds, return_counts=True)
    enough = labels[counts >= MIN_NOVEL_RESIDUALS]
    if not len(enough):
        return _half_width(log_ratio)
    return max(_half_width(log_ratio[folds == f]) for f in enough)


@dataclass
class IntervalModel:
    """Residual quantiles per group, the widening per log unit outside the training data, the
    training ranges, and a calibration's extra widening per group."""

    quantiles: dict[str, tuple[float, float]]
    slope: dict[str, float]
    ranges: Ranges
    extra: dict[str, float] = field(default_factory=dict)
    known: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # sorted training shape keys
    #: How many training models had each known key (empty: not counted, an older save).
    sources: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    structures: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # sorted structure keys
    #: Log widening of a leaf the generic regressor predicts (:func:`new_kind_margin`).
    unseen_kind: float = 0.0
    #: The training trees' model families (``meta.family``: :func:`~irene_core.predictor.novelty.of_new_family`).
    families: tuple[str, ...] = ()
    #: Per slope, the largest distance of the held-out nodes it was measured on (none: unbounded, an older save).
    reach: dict[str, float] = field(default_factory=dict)
    #: Per level, the training trees' measurement noise (:func:`measurement_noise`).
    noise: dict[str, float] = field(default_factory=dict)
    #: Per slope, the widening of any node outside the training data that way, before its slope (none: an older save).
    offset: dict[str, float] = field(default_factory=dict)
    #: Per kind, and ``"ml"`` for a kind with one product, the log half-width of a leaf of a product no
    #: training leaf had (:func:`new_product_widths`; none: an older save, nothing widens).
    new_product: dict[str, float] = field(default_factory=dict)
    #: An older save's sorted product keys of the training leaves (:func:`~irene_core.predictor.novelty.
    #: product_keys`; a save since keeps :attr:`product_values`), and each kind's power of the sequence length.
    products: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    powers: dict[str, int] = field(default_factory=dict)
    #: Per :attr:`new_product` width, the furthest held-out product it was measured on (none: an older save,
    #: a width that does not grow), and per kind the training leaves' sorted log products
    #: (:func:`~irene_core.predictor.novelty.product_values`), how far a new product lies from them.
    product_reach: dict[str, float] = field(default_factory=dict)
    product_values: dict[str, np.ndarray] = field(default_factory=dict)
    #: Per level, how much the error on one node differed between training trees (:func:`replicate_noise`): what
    #: one tree of a device calibration cannot show (none: an older save).
    replicates: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        by_model: Residuals,
        by_size: Residuals,
        ranges: Ranges,
        known: np.ndarray,
        unseen_structure: Mapping[str, np.ndarray] | None = None,
        structures: np.ndarray | None = None,
        unseen_kind: tuple[np.ndarray, np.ndarray] | None = None,
        families: Iterable[str] = (),
        by_both: Residuals | None = None,
        models: np.ndarray | None = None,
        noise: Mapping[str, float] | None = None,
        by_axis: Residuals | None = None,
        new_product: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
        powers: Mapping[str, int] | None = None,
        product_values: Mapping[str, np.ndarray] | None = None,
        replicates: Mapping[str, float] | None = None,
    ) -> IntervalModel:
        """Quantiles from the folds by model (known and novel nodes apart; novel leaves also from the size
        folds, ``by_size`` and ``by_both``: new sizes inside their fold's ranges) and, for novel nodes of an
        unseen structure, from the aggregator's ``unseen_structure`` residuals (per level) beside them
        (``structures``: the training inner nodes' structure keys); the widening per log unit above
        and below the training data from the size folds' nodes outside it in that direction only, for
        novel nodes from those of the folds by model and size together (``by_both``); the
        widening of a leaf of an unseen kind from the generic regressor's residuals on kinds held out
        (``unseen_kind``: residuals and their kinds); ``families``: the training trees' model families;
        ``models``: the training model (an integer code) of each ``known`` key (to count how many had each shape);
        ``noise``: the training trees' :func:`measurement_noise`; ``by_axis``: the size folds of batch and of
        sequence length apart, whose widening is a second measurement (:data:`AXIS`); ``new_product``: the
        kinds' regressors' residuals on products held out (residuals, kinds, product keys, distances),
        ``powers`` the training leaves' kinds' powers of the sequence length and ``product_values`` their log
        products per kind; ``replicates``: the training trees' :func:`replicate_noise`."""
        r, levels, groups, folds = _with_novel_leaves(by_model, by_size, by_both)
        quantiles: dict[str, tuple[float, float]] = {}
        tiers = np.array([next((t for t in _OWN_TIERS if g.startswith(t)), "") for g in groups], dtype=object)
        leaf_groups = sorted(set(groups[levels == "ml"]))
        for name, rows, least in (
            [(lv, (levels == lv) & (tiers == ""), 1) for lv in ("ml", "module", "model")]
            + [(t + lv, (levels == lv) & (tiers == t), MIN_NOVEL_RESIDUALS)
               for t in _OWN_TIERS for lv in ("ml", "module", "model")]
            + [(g, groups == g, MIN_KIND_RESIDUALS) for g in leaf_groups]
        ):
            if rows.sum() < least:
                continue
            if name.startswith(_TIERS):  # see the module docstring: symmetric, the widest fold's
                half = _widest_fold(r[rows], folds[rows])
                quantiles[name] = (-half, half)
            elif name in SYMMETRIC_LEVELS:  # see the module docstring: symmetric, pooled
                half = _half_width(r[rows])
                quantiles[name] = (-half, half)
            else:
                low, high = np.quantile(r[rows], [_TAIL, 1.0 - _TAIL])
                quantiles[name] = (min(float(low), 0.0), max(float(high), 0.0))
        for level in ("ml", "module", "model"):  # a novel node is never surer than a known one, nor a new family's
            for tier, surer in ((NOVEL, ""), (NEW_FAMILY, NOVEL), (ONE_MODEL, "")):
                _at_least(quantiles, tier + level, quantiles.get(surer + level) or quantiles.get(level))
        for level, residuals in (unseen_structure or {}).items():  # docs/predictor.md, *Unseen structures*
            base = _most_novel(quantiles, level)
            if len(residuals) >= MIN_NOVEL_RESIDUALS and base is not None:
                half = max(-base[0], base[1], _half_width(residuals))
                quantiles[FOREIGN + level] = (-half, half)
        below, roots = quantiles.get(FOREIGN + "module"), _most_novel(quantiles, "model")
        if below is not None and roots is not None:  # docs/predictor.md, *New families*
            quantiles[NEW_FAMILY + "module"] = _widest(below, quantiles.get(NEW_FAMILY + "module"))
            quantiles[NEW_FAMILY + "model"] = _widest(below, roots, quantiles.get(FOREIGN + "model"))
        known, sources = (source_counts(known, models) if models is not None
                          else (np.unique(known), np.zeros(0, np.int64)))
        model = cls(quantiles, {}, ranges, known=known, sources=sources, families=tuple(sorted(set(families))),
                    structures=np.unique(np.zeros(0, np.int64) if structures is None else structures),
                    unseen_kind=0.0 if unseen_kind is None else new_kind_margin(unseen_kind),
                    noise={level: value for level, value in (noise or {}).items() if value > 0},
                    replicates={level: value for level, value in (replicates or {}).items() if value > 0},
                    powers=dict(powers or {}),
                    product_values={k: np.unique(v) for k, v in (product_values or {}).items()})
        if new_product is not None:
            model.new_product, model.product_reach = new_product_widths(*new_product)
        model._fit_slopes(by_size)
        if by_both is not None:
            model._fit_slopes(by_both, NOVEL)
        if by_axis is not None:
            model._fit_slopes(by_axis, design=AXIS)
        return model

    def _fit_slopes(self, residuals: Residuals, tier: str = "", design: str = "") -> None:
        """The widening per log unit above and below the training data (the 90 % quantile of what each
        held-out node outside it one way only needed beyond its group's quantiles): per level and, at ml
        level, per kind, of every node; with a ``tier`` (:data:`NOVEL`), per level of the novel nodes
        only, named ``tier + level``; every name prefixed with ``design`` (:data:`AXIS`: another set of
        size folds, see :meth:`widening`)."""
        r, levels, groups, d = residuals.arrays()
        kinds = np.array([_plain(g) for g in groups], dtype=object)
        one_way = (d > 0).sum(axis=1) == 1  # beyond their fold's training data one way
        if tier:
            one_way &= np.array([_is_novel(g) for g in groups], dtype=bool)
        r, levels, groups, d, kinds = r[one_way], levels[one_way], groups[one_way], d[one_way], kinds[one_way]
        low, high = self.base(levels, groups)
        need = np.maximum(np.maximum(low - r, r - high), 0.0)
        for prefix, column in (("", 0), (BELOW, 1)):
            this_way = d[:, column] > 0
            at, kind = levels[this_way], kinds[this_way]
            named = [(tier + lv, at == lv, MIN_OUTSIDE) for lv in ("ml", "module", "model")]
            if not tier:
                named += [(k, (at == "ml") & (kind == k), MIN_KIND_RESIDUALS) for k in sorted(set(kind[at == "ml"]))]
            for name, rows, least in named:
                if rows.sum() >= least:
                    out = d[this_way][rows, column]
                    key = design + prefix + name
                    self.offset[key], self.slope[key] = affine_quantile(need[this_way][rows], out)
                    self.reach[key] = float(out.max())

    def product_margins(self, table: TreeTable, kinds: np.ndarray) -> np.ndarray:
        """Per node, the log half-width of a leaf whose product no training leaf had (its kind's, else the
        level's, :attr:`new_product`), which beyond its reach grows in proportion to how far the product
        lies from its kind's nearest trained one (as an exponent off by as much would make it err: docs/
        predictor.md, *New products*); 0 for every other node (and all of them for an older save)."""
        if not self.new_product:
            return np.zeros(len(table))
        values = product_values(table, kinds, self.powers)
        distance = product_distances(values, kinds, self.product_values)
        if self.product_values:  # a product within a rounding step of a trained one is that one (a Linear's
            # flops count its bias, a Conv1D's do not: BERT's 768 × 768 and GPT-2's lie 0.065 % apart)
            new = np.isfinite(values) & ~(distance <= SAME_PRODUCT)
        else:  # an older save: its trained products' keys
            keys = product_keys(values, kinds)
            new = (keys != 0) & ~np.isin(keys, self.products)
        names = [str(k) if str(k) in self.new_product else "ml" for k in kinds[new]]
        widths = np.array([self.new_product[name] for name in names])
        reach = np.array([self.product_reach.get(name, np.inf) for name in names])
        margins = np.zeros(len(table))
        margins[new] = widths * np.maximum(1.0, np.nan_to_num(distance[new]) / np.maximum(reach, 1e-12))
        return margins

    def sources_of(self, keys: np.ndarray) -> np.ndarray:
        """How many training models had each shape key (:func:`shape_sources`): 0 for a novel one; −1 for a
        known one that an older save did not count, and for every key where an older save kept no keys."""
        if not len(self.known):
            return np.full(len(keys), -1, dtype=np.int64)
        return shape_sources(keys, self.known, self.sources)

    def foreign(self, keys: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """Whether each inner node's structure key (0: a leaf) is absent from the training data, where
        its level has unseen-structure quantiles (none without keys: an older save; none where the
        aggregator measured no such residuals: nothing widens them)."""
        if not len(self.structures):
            return np.zeros(len(keys), dtype=bool)
        unseen: np.ndarray = (keys != 0) & ~np.isin(keys, self.structures) & self.measures_foreign(levels)
        return unseen

    def measures_foreign(self, levels: np.ndarray) -> np.ndarray:
        """Whether each level has unseen-structure quantiles."""
        return np.isin(levels, [g.removeprefix(FOREIGN) for g in self.quantiles if g.startswith(FOREIGN)])

    def new_family(self, families: np.ndarray) -> np.ndarray:
        """Whether each node's model family (None: unknown) is one no training tree had, where the roots of
        a new family have quantiles (none without training families: an older save, or trees without
        ``meta.family``)."""
        if not self.families or NEW_FAMILY + "model" not in self.quantiles:
            return np.zeros(len(families), dtype=bool)
        return of_new_family(families, self.families)

    def base(self, levels: np.ndarray, groups: np.ndarray,
             at_least: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Log offsets ``(q₅, q₉₅)`` of each node's group or its fallbacks (:meth:`_quantiles`); a
        :data:`ONE_MODEL` leaf's at least its kind's known ones; every node's at least ± ``z₉₀`` times its
        level's measurement noise, and ± its ``at_least`` (a leaf of a new product:
        :meth:`product_margins`)."""
        low, high = np.zeros(len(levels)), np.zeros(len(levels))
        for i, (level, group) in enumerate(zip(levels, groups, strict=True)):
            low[i], high[i] = self._quantiles(level, group)
            if group.startswith(ONE_MODEL):
                low[i], high[i] = _widest((low[i], high[i]), self._quantiles(level, _plain(group)))
        floor = Z90 * np.array([self.noise.get(level, 0.0) for level in levels])
        if at_least is not None:
            floor = np.maximum(floor, at_least)
        return np.minimum(low, -floor), np.maximum(high, floor)

    def _quantiles(self, level: str, group: str) -> tuple[float, float]:
        """``(q₅, q₉₅)`` of ``group``; else, for a known leaf, its kind's :data:`ONE_MODEL` ones (a look-up of
        one model is no surer than of several, and its kind's, not the level's: trained without BERT, the
        folds held out no Linear whose shape several training models had, and a BERT's Linears, whose shape
        RoBERTa and DistilBERT had, took the level's width, its LayerNorms' and Softmaxes': leave one model
        out, 97 % of the Linears covered); else the widest of the first of its level's fallbacks that has
        some (:data:`_FALLBACK`) and, for a leaf kind, the first of its kind's in the same order (trained on
        one model, a known LayerNorm has no known quantiles of its kind, and the novel ones of its kind say
        how LayerNorms err, which the level's, mostly Linears', do not); else, for an inner level without
        any (the roots of a handful of trees), as the level below (0 at the leaves)."""
        if group in self.quantiles:
            return self.quantiles[group]
        if ONE_MODEL + group in self.quantiles:
            return self.quantiles[ONE_MODEL + group]
        order = next(tiers for prefix, tiers in _FALLBACK if group.startswith(prefix))
        kind = _plain(group)
        chains = [level] if kind == level else [level, kind]
        firsts = [next((self.quantiles[g] for g in (prefix + name for prefix in order) if g in self.quantiles), None)
                  for name in chains]
        found = [q for q in firsts if q is not None]
        if found:
            return _widest(*found)
        if level in _LEVEL_BELOW and group.endswith(level):
            return self._quantiles(_LEVEL_BELOW[level], group[: -len(level)] + _LEVEL_BELOW[level])
        return 0.0, 0.0

    def bounds(self, pred: np.ndarray, levels: np.ndarray, groups: np.ndarray, distance: np.ndarray,
               beyond: np.ndarray | None = None, cap: np.ndarray | None = None,
               share: np.ndarray | None = None, at_least: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` of the 90 % interval around each prediction ``pred`` with distances ``(above,
        below)`` the training data ``distance``, offsets bounded by ``cap`` and ``share``
        (:meth:`side_widening`), log widening ``beyond`` a device calibration's data and quantiles at least
        ± ``at_least`` (:meth:`base`; a negative prediction, an OwnOps below a reconcile floor, gets its
        bounds in order too)."""
        low, high = self.base(levels, groups, at_least)
        extra = np.array([
            self.extra.get(_plain(g), self.extra.get(lv, 0.0)) for lv, g in zip(levels, groups, strict=True)
        ])
        widen = self.widening(levels, groups, distance, cap, share) + extra + (0.0 if beyond is None else beyond)
        a, b = pred * np.exp(low - widen), pred * np.exp(high + widen)
        return np.minimum(a, b), np.maximum(a, b)

    def widening(self, levels: np.ndarray, groups: np.ndarray, distance: np.ndarray,
                 cap: np.ndarray | None = None, share: np.ndarray | None = None) -> np.ndarray:
        """The log widening of each node of ``levels`` in ``groups`` for its distances ``(above, below)``
        the training data (:meth:`side_widening`, both directions together)."""
        widen: np.ndarray = self.side_widening(levels, groups, distance, cap, share).sum(axis=1)
        return widen

    def side_widening(self, levels: np.ndarray, groups: np.ndarray, distance: np.ndarray,
                      cap: np.ndarray | None = None, share: np.ndarray | None = None) -> np.ndarray:
        """The log widening ``(above, below)`` of each node of ``levels`` in ``groups`` for its distances
        ``(above, below)`` the training data: its offset for each direction it lies outside, at most the
        larger of its ``cap`` that way (default none; an inner node's :func:`offset_caps`) and its
        ``share`` of the offset (its share outside that way, :meth:`Ranges.node_extent`; default 0), and
        each distance at its slope up to the distance that slope was measured at, beyond at least as fast
        as its level's (:meth:`_terms`); those of the set of size folds that widens it most (:data:`AXIS`:
        each is one measurement of how a kind continues, and the halves of batch × seq alone missed a
        MatMul's)."""
        designs = ("", AXIS) if any(name.startswith(AXIS) for name in self.slope) else ("",)
        pairs = list(zip(levels, groups, strict=True))
        widest: np.ndarray = np.zeros((len(pairs), 2))
        for design in designs:
            by_pair = {pair: self._terms(*pair, design) for pair in set(pairs)}
            terms = np.array([by_pair[pair] for pair in pairs]).reshape(-1, 4, 2)
            offset, slope, reach, beyond = (terms[:, i] for i in range(4))
            if cap is not None:
                offset = np.minimum(offset, np.maximum(cap, offset * (0.0 if share is None else share)))
            within = np.minimum(distance, reach)
            widen = offset * (distance > 0) + slope * within + beyond * (distance - within)
            wider = widen.sum(axis=1) > widest.sum(axis=1)
            widest[wider] = widen[wider]
        return widest

    def _terms(self, level: str, group: str, design: str = "") -> tuple[tuple[float, float], ...]:
        """The offsets, slopes, reaches and slopes beyond the reach ``(above, below)`` the training data
        of a node of ``level`` in ``group`` among the terms of ``design`` (a prefix): its kind's, else its
        level's (below: those of the direction below first); a novel node's offset and slope at least its
        level's among novel nodes.  Beyond its reach ``r`` a widening ``o + s·r`` grows in proportion to
        the distance, at ``s + o / r`` per log unit, and at least at its level's rate.  A level the
        size folds did not measure widens at :data:`DEFAULT_SLOPE`; one :data:`AXIS` did not, by none."""

        def first(*names: str, default: float = DEFAULT_SLOPE) -> tuple[float, float, float]:
            name = next((design + n for n in names if design + n in self.slope), None)
            if name is None:
                return 0.0, 0.0 if design else default, UNBOUNDED
            return self.offset.get(name, 0.0), self.slope[name], self.reach.get(name, UNBOUNDED)

        def rate(terms: tuple[float, float, float]) -> float:
            return terms[1] + terms[0] / terms[2]

        kind = _plain(group)
        sides = []
        above = (kind, level), (level,), (NOVEL + level,)
        below = ((BELOW + kind, BELOW + level, kind, level), (BELOW + level, level),
                 (BELOW + NOVEL + level, NOVEL + level))
        for own, of_level, novel in (above, below):
            o, s, r = first(*own)
            if _is_novel(group):
                o_novel, s_novel, _ = first(*novel, default=0.0)
                o, s = max(o, o_novel), max(s, s_novel)
            sides.append((o, s, r, max(rate((o, s, r)), rate(first(*of_level)))))
        return tuple(zip(*sides, strict=True))

    def widened(self, extra: Mapping[str, float]) -> IntervalModel:
        """A copy whose groups are widened by ``extra`` (log units) on top of any earlier widening."""
        merged = dict(self.extra)
        for group, value in extra.items():
            merged[group] = merged.get(group, 0.0) + value
        return dataclasses.replace(self, quantiles=dict(self.quantiles), extra=merged)

    def get_state(self) -> dict[str, Any]:
        names = sorted(self.quantiles)
        return {
            "groups": names,
            "quantiles": np.array([self.quantiles[g] for g in names], float).reshape(len(names), 2),
            "slope": dict(sorted(self.slope.items())),
            "ranges": self.ranges.get_state(),
            "extra": dict(sorted(self.extra.items())),
            "known": self.known,
            "sources": self.sources,
            "structures": self.structures,
            "unseen_kind": self.unseen_kind,
            "families": list(self.families),
            "reach": dict(sorted(self.reach.items())),
            "noise": dict(sorted(self.noise.items())),
            "replicates": dict(sorted(self.replicates.items())),
            "offset": dict(sorted(self.offset.items())),
            "new_product": dict(sorted(self.new_product.items())),
            "products": self.products,
            "powers": dict(sorted(self.powers.items())),
            "product_reach": dict(sorted(self.product_reach.items())),
            "product_values": dict(sorted(self.product_values.items())),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> IntervalModel:
        names = list(state["groups"])
        q = np.asarray(state["quantiles"], float)
        if q.shape != (len(names), 2):
            raise ValueError(f"interval quantiles have shape {q.shape}, expected {(len(names), 2)}")
        if (q[:, 0] > 0).any() or (q[:, 1] < 0).any():
            raise ValueError("interval quantiles must satisfy low <= 0 <= high")
        slope, extra = ({str(k): float(v) for k, v in dict(state[key]).items()} for key in ("slope", "extra"))
        reach = {str(k): float(v) for k, v in dict(state.get("reach", {})).items()}  # older saves: unbounded
        noise = {str(k): float(v) for k, v in dict(state.get("noise", {})).items()}  # older saves: none
        replicates = {str(k): float(v) for k, v in dict(state.get("replicates", {})).items()}  # older: none
        offset = {str(k): float(v) for k, v in dict(state.get("offset", {})).items()}  # older saves: none
        new_product = {str(k): float(v) for k, v in dict(state.get("new_product", {})).items()}  # older: none
        powers = {str(k): int(v) for k, v in dict(state.get("powers", {})).items()}
        product_reach = {str(k): float(v) for k, v in dict(state.get("product_reach", {})).items()}  # older: none
        product_values = {str(k): np.unique(np.asarray(v, float))
                          for k, v in dict(state.get("product_values", {})).items()}
        unseen_kind = float(state.get("unseen_kind", 0.0))  # older saves: no such widening
        if any(not np.isfinite(v) or v < 0
               for v in [*slope.values(), *offset.values(), *extra.values(), *reach.values(), *noise.values(),
                         *replicates.values(), *new_product.values(), *product_reach.values(), unseen_kind]):
            raise ValueError("interval slopes, their offsets and reach, widening, measurement noise, replicate "
                             "noise and new products' widths and reach must be finite and >= 0")
        saved_known, structures = (np.asarray(state.get(key, np.zeros(0)), dtype=np.int64)
                                   for key in ("known", "structures"))
        known, structures = np.unique(saved_known), np.unique(structures)
        families = tuple(str(f) for f in state.get("families", ()))  # older saves: none, no new family
        sources = np.asarray(state.get("sources", np.zeros(0)), dtype=np.int64)  # older saves: not counted
        if len(sources) and (len(sources) != len(saved_known) or not np.array_equal(known, saved_known)):
            raise ValueError(f"interval sources have {len(sources)} entries for {len(saved_known)} known shapes "
                             "(which must be sorted and distinct)")
        return cls({g: (float(q[i, 0]), float(q[i, 1])) for i, g in enumerate(names)}, slope,
                   Ranges.from_state(state["ranges"]), extra, known, sources, structures, unseen_kind, families,
                   reach, noise, offset, new_product,
                   np.unique(np.asarray(state.get("products", np.zeros(0)), dtype=np.int64)), powers,
                   product_reach, product_values, replicates)
