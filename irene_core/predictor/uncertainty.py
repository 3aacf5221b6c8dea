"""90 % prediction intervals and the ``extrapolated`` flag.

**Training ranges.**  For every canonical primitive kind the predictor keeps the range, over its
training leaves, of batch, sequence length, flops and bytes moved (log scale; a feature the
records lack sets no bound).  A leaf's *distance* above the training data is the largest amount
(natural-log units) by which one of them lies above its kind's range, its distance below the
largest by which one lies below it; a module's or model's are its leaves' weighted by their predicted
energy (a BERT root whose pooler alone lies below the training sizes is barely outside).
A leaf is extrapolated when it lies outside (a distance > 0) or when its kind has no training
leaves and is predicted by the generic regressor; a module or model when any descendant is.

**Novelty.**  A node is *known* when a training node of its level and kind had the same shape
(batch, sequence length, flops and bytes moved, to 0.1 %) and children of the same shapes, all the
way down: a layer that another training model also has; a node with module children also when most
of those are known (:func:`layered`: a RoBERTa's root, whose embeddings differ from BERT's
by their vocabulary but whose layers are BERT's, is a look-alike, not a new family's model).
Known nodes are predicted almost by look-up; *novel* ones (another family's modules, new sizes) are
not, and their errors are larger.  A known leaf whose shape **one training model** had is a look-up
of one run of one model, whose noise and context no average over models removes (trained without
RoBERTa, a BERT's Linear leaves have their shape in DistilBERT only): it is in a tier of its own,
:data:`ONE_MODEL`, with quantiles of its own from such leaves of the folds by model, never narrower
than its kind's known ones (the training shapes are kept with how many models had each; a predictor
saved before counted none, and has no such tier).  A known leaf of a kind without known quantiles
takes its kind's one-model ones, not its level's (the folds by model may hold out no shape of a kind
that several training models had, and the level's known leaves are other kinds).
A leaf outside its kind's training range is the exception: a new size of a trained kind, it takes
its kind's known quantiles and the widening outside the training data, both measured where such
leaves are held out (the size folds); the novel leaves of the folds by model are another population
(leaves of held-out models, an embedding of another vocabulary), and the folds by model keep none of
their held-out leaves that lie outside their fold's ranges (trained on batch 8 and 32 of RoBERTa,
DistilBERT and GPT-2, the fold without RoBERTa has no pooler: RoBERTa's pooler ``Linear`` lay far below
every training one and erred ×3, which made every novel leaf ± ×2.8, a BERT's at batch 16 too, new
shapes between the training sizes that erred 2–3 %).  Such a leaf, a new size inside its kind's
ranges, is what the size folds hold out inside their fold's ranges: their novel leaves count among the
novel leaves of the folds by model (the folds by model of a grid of sizes hold out models whose
leaves mostly have twins).

**Unseen structures.**  A module's *structure* is its level and the kinds of its counted children
(:func:`structure_keys`), whatever its size.  Folds that hold out models of one family of
look-alikes never show a structure the training data lacks (trained on decoders, every held-out
module is a GPT-2-style block, attention or MLP; BERT's output block, a linear and a layer norm,
is none of them), so the aggregator measures it itself: it refits its own-ops model without one
structure at a time (:meth:`~irene_core.predictor.aggregators.base.Aggregator.unseen_structure_residuals`).
A novel inner node of a structure no training node had takes ± the larger of its level's novel
half-width and the 90 % quantile of those residuals' absolute values (with at least
:data:`MIN_NOVEL_RESIDUALS` of them; without, as an aggregator that measures none, it is a novel
node like any other).  A novel node that costs its children's sum (a pure container no anchor
measures) errs as they do, and takes that width where children of an unseen structure carry most of
its estimate (:func:`through_sums`).

**New families.**  A held-out node is of a *new family* when its tree's model family (``meta.family``)
is none of its fold's training trees': a fold that holds out the training data's only decoder
measures how a new family errs, not how a novel node of a trained family does, so its novel nodes
have their own quantiles (the ``NEW_FAMILY`` groups, never narrower than the novel ones) and the
novel quantiles come from the other folds.  Trained on one family, no fold shows how another errs: a
novel module of a new family has its own work learnt on the other family's modules of its structure
and errs by its family's bias (trained on the decoders, model features: DistilBERT's FFN blocks
−20 % and its layers −13 %, where the novel modules' width was ± 6 %), and a novel root errs as its
blocks do: they share that bias, which no sum averages out (trained on the encoders, the GPT-2 roots
erred −4 % where the novel roots' width was ± 2.6 %).  So both take at least the width of a module
of an unseen structure.  The training families are saved with the predictor (an older save has
none: no node is of a new family).

**Unseen kinds.**  A leaf the generic regressor predicts (a kind without a regressor of its own: an
RMSNorm after training on BERTs, or a GELU whose work the training trees kept in their parents')
takes its level's quantiles widened by a 90 % prediction interval for a kind the regressor has not
seen, ``t₀.₉₅,ₖ₋₁·√(τ²(1 + 1/k) + σ²)`` (:func:`new_group_margin`): the generic regressor is fitted
without each of the k training computations in turn, τ is the spread of its mean log error on the
held-out computation and σ the spread within one.  With resource features a new kind is predicted
within a few % (power × time carries over; the widening is ×1.01–1.2); from flops and bytes alone
a kind's energy per unit of work is not another's, and the widening is ×10–20.  A device
calibration that measured the kind bounds its leaves instead.

**Measurement noise.**  A prediction is never surer than one more measurement of its node may differ
from another: every node's quantiles are at least ± ``z₉₀·n``, ``n`` its level's
:func:`measurement_noise` in the training trees (the round-to-round spread ``irene run --rounds``
records; none in the paper's release, or with one round).  The folds' held-out nodes show it only where
a look-alike pair of models measured a shape twice: on an H200 whose modules spread 6 % between two
rounds (the median; 15 % at the 90th percentile), a RoBERTa's layers, BERT's shapes measured in the
same run, came out 1–11 % off BERT's measurements, where the known modules' width, from GPT-2 and
DistilGPT-2's shared blocks, was ± 5.8 %.  A predictor saved before has no noise.

**Intervals.**  When the predictor is fitted, it is re-fitted on folds that hold out some models
(grouped by model, and grouped by clusters of models that share layers, so that held-out nodes
are novel as they are for a new model; see *New families* for a fold that holds out a family), and
on a fold that holds out the larger sizes; every
held-out node's log residual ``log(gt / pred)`` is recorded with its novelty in that fold.  The
interval of a node is ``pred · exp([q₅ − w − c, q₉₅ + w + c])`` where ``q₅``, ``q₉₅`` are the
residual quantiles of its group among residuals of its novelty (its primitive kind at ml level when
that kind has :data:`MIN_KIND_RESIDUALS` such residuals, else its level; a known module or model
takes ``q₉₅ = −q₅`` = the 90 % quantile of the absolute residual: a held-out model's layers all err
one way, which way is the model's own, and the few models of the folds show a few signs; a novel
level's quantiles are at least as wide as the known ones'; a level without residuals of a node's
novelty takes another's, a new family's last (trained on one encoder and one decoder, they are all
a level has), a leaf at least its kind's of the first other novelty that has some (trained on one
model, every held-out leaf is novel, and a LayerNorm errs as LayerNorms did, not as the level's
Linears), and an inner level without any the level below's; novel nodes err one way in one fold and
the other way in the next, by as much as that fold's novelty is large, so their ``q₉₅ = −q₅`` is
the largest over folds of a fold's 90 % quantile of the absolute residual, among folds with
:data:`MIN_NOVEL_RESIDUALS` of them), ``w = Σ (min(o, max(m, f·o))·[d > 0] + s·d)`` its widening for
its distances above (``d₊``) and below (``d₋``) the training data (``m``, ``f``: see below), and
``c`` the widening of a device calibration, per group and beyond the calibration trees' sizes (see
:mod:`irene_core.predictor.calibration`).  Each offset ``o`` and slope ``s`` is the 90 % quantile
regression (:func:`affine_quantile`) of what the held-out nodes of the size folds that lay outside
their fold's training ranges in that direction only needed beyond their group's quantiles, on their
distance: above them (larger sizes), or below them (smaller ones, as for a miniature model).  What
they need need not grow with the distance (trained on batch ≤ 16 and seq ≤ 128 without GPT-2,
no-gpu-energy, the held-out modules needed 0.04–0.08 at every distance from 0.01 to 1), and a slope
through the origin, set by the nearest nodes, widened the farthest ten times too much (a predictor
saved before has no offsets, and its slopes are those).  The two directions differ by design: above
the range a leaf model continues as a power law in the work, below it the device's launch floor plus
its edge's excess scaled with the work (:mod:`irene_core.predictor.leaf_models`), a coarser guess.
The size folds split the records by batch × seq, which keeps most held-out nodes among the training
batch sizes and sequence lengths; a new sequence length may cost more than its work says (trained on
seq ≤ 128, device_1's attention ``MatMul`` at seq 256 erred +47 %, 7 % of them inside an interval
widened by those folds), so the offsets and slopes are estimated once more on folds that hold out one
size at a time (kept under :data:`AXIS`), and a node widens by the larger of the two measurements.
Each fit is its primitive kind's at ml level when that kind has :data:`MIN_KIND_RESIDUALS` residuals
in that direction (kinds extrapolate differently: a Linear barely errs beyond its sizes, a MatMul
may), else its level's (those of the direction below are kept under :data:`BELOW`; a predictor saved
before has one slope for both).  A fit says nothing beyond the distances it was measured at (its
*reach* ``r``, the furthest of its held-out nodes): further out a node's widening grows in
proportion to the distance, at ``s + o / r`` per log unit (as an exponent off by as much would make
it), and at least as fast as its level's (a MatMul of the shipped model-features predictor, ``o`` =
0.28 and ``s`` = 0 to ``r`` = 1.1, widens 0.26 per log unit beyond; a Linear a few times below its
range was not yet under-used by its small products; at batch 8 and seq 32, trained on batch ≥ 16 and
seq ≥ 96, it cost 7–9 % more than predicted, where its kind's slope below was 0; a predictor saved
before has no reach).  The floor rule's readings (the energy falling with the work down to
the floor; its excess falling with the amount of work that shrinks least) are ones no size fold
measures, as their held-out leaves lie a few times below their training data, where the floor barely
matters: every node's bounds are stretched by the share of its energy that the readings take off or
add to its leaves (:func:`spanning_readings`).  The size folds hold
out models they trained on, whose new sizes the novel width holds; a new model at new sizes errs by
both (GPT-2 at seq 256, trained without it on seq ≤ 128: +4 % where each alone erred 1–2 %).  So the
folds by model are fitted once more on one half of the sizes, holding out the other half of their
held-out models, and a novel node's offsets and slopes are at least what those folds' novel nodes
needed beyond the novel width (kept under ``NOVEL + level``; a predictor saved before has none).
The offset is what a node needed for lying outside at all; an inner node takes it at most as far
as its leaves outside could move it, were each off by its own widening (:func:`offset_caps`), or in
proportion to its share outside, whichever is more: a BERT root whose pooler alone lies below its
training sizes (0.2 % of its energy) took the model level's whole offset, ± 17 % where such roots
erred 2 %, though its pooler could move it by 0.1 %.
Every node's interval is its own (a parent's is not the sum of its children's).
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, stats
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.metrics import mean_pinball_loss

from irene_core.predictor.estimators import unique_rows
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
#: Prefix of the residual groups of known leaves whose shape one training model had (see *Novelty*).
ONE_MODEL = "one-model:"
#: Shapes agree when their log flops and bytes agree to this many decimals (0.1 %).
_SHAPE_DECIMALS = 3
#: Levels whose known nodes get a symmetric interval (see *Intervals* in the module docstring).
SYMMETRIC_LEVELS: tuple[str, ...] = ("module", "model")
#: Held-out nodes outside their fold's range needed to estimate the widening per log unit.
MIN_OUTSIDE = 20
#: Widening per log unit outside the training data for a level where it cannot be estimated.
DEFAULT_SLOPE = 1.0
#: Prefix of the slopes' keys for the widening below the training data.
BELOW = "below:"
#: Prefix of the widening terms measured by the size folds of one size at a time (see *Intervals*).
AXIS = "axis:"
#: The interval's coverage (two-sided, central).
COVERAGE = 0.90
#: Features whose training range defines extrapolation (log scale).
RANGE_FEATURES: tuple[str, ...] = ("batch_size", "seq_len", "flops", "mem_bytes_moved")
#: The range features of predictors saved before ranges named theirs.
_LEGACY_RANGE_FEATURES: tuple[str, ...] = ("batch_size", "seq_len", "flops", "mem_bytes")

_TAIL = (1.0 - COVERAGE) / 2
#: z of a two-sided :data:`COVERAGE` normal interval (1.645).
Z90 = float(stats.norm.ppf(1.0 - _TAIL))
_UNBOUNDED = 1e3  # a log-scale bound no feature reaches


def log_features(table: TreeTable, features: tuple[str, ...] = RANGE_FEATURES) -> np.ndarray:
    """The range features of every node in log scale (``log1p`` for flops and bytes, NaN if missing)."""
    cols = np.column_stack([table.column(f) for f in features])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log1p(np.where(cols >= 0, cols, np.nan))


def shape_keys(table: TreeTable, kinds: np.ndarray) -> np.ndarray:
    """A stable 64-bit key per node of its level, kind, batch, seq, flops and bytes moved, and its
    children's keys: equal keys, equal shapes all the way down (see *Novelty* in the module docstring)."""
    logs = np.round(log_features(table), _SHAPE_DECIMALS)
    children: list[list[int]] = [[] for _ in range(len(table))]
    keys = np.empty(len(table), dtype=np.int64)
    for i in range(len(table) - 1, -1, -1):  # pre-order reversed: children before their parent
        below = ",".join(map(str, sorted(children[i])))
        text = f"{table.level[i]}|{kinds[i]}|{'|'.join(map(repr, logs[i].tolist()))}|{below}".encode()
        keys[i] = int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little", signed=True)
        if table.parent[i] >= 0:
            children[table.parent[i]].append(int(keys[i]))
    return keys


def source_counts(keys: np.ndarray, models: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct shape ``keys`` (sorted) and how many distinct training ``models`` (an integer code per
    key) had each."""
    order = np.lexsort((models, keys))
    keys, models = keys[order], models[order]
    first = np.ones(len(keys), dtype=bool)  # the first row of each distinct (key, model) pair
    first[1:] = (keys[1:] != keys[:-1]) | (models[1:] != models[:-1])
    known, sources = np.unique(keys[first], return_counts=True)
    return known.astype(np.int64), sources.astype(np.int64)


def shape_sources(keys: np.ndarray, known: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """How many training models had each shape key: 0 where it is absent from the sorted ``known`` keys, −1
    where it is known but ``sources`` (the count per known key) were not counted (an older save)."""
    if not len(known):
        return np.zeros(len(keys), dtype=np.int64)
    at = np.clip(np.searchsorted(known, keys), 0, len(known) - 1)
    counted = sources[at] if len(sources) == len(known) else np.full(len(keys), -1)
    out: np.ndarray = np.where(known[at] == keys, counted, 0)
    return out


def layered(table: TreeTable, flags: np.ndarray) -> np.ndarray:
    """``flags`` (a node's novelty) where an inner node with module children keeps its flag only when
    most of them have it too."""
    modules = ~table.is_leaf
    count = table.children_sum(modules.astype(float))
    out: np.ndarray = flags & ((count == 0) | (table.children_sum((modules & flags).astype(float)) > count / 2))
    return out


def through_sums(table: TreeTable, flags: np.ndarray, sums: np.ndarray, energies: np.ndarray) -> np.ndarray:
    """``flags`` extended, deepest first, to each node of ``sums`` whose flagged children carry most of
    its estimate (``energies``).  A node of ``sums`` is estimated as its children's sum (a pure
    container no anchor measures), so it errs as they do: BERT's attention block, trained without
    BERT or RoBERTa, sums a self-attention and an output block of structures training lacks."""
    out = flags.copy()
    total = table.children_sum(energies)
    for idx in table.inner_by_depth:
        share = table.children_sum(np.where(out, energies, 0.0))[idx]
        out[idx] |= sums[idx] & (share > total[idx] / 2)
    return out


def structure_keys(table: TreeTable, kinds: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """A stable 64-bit key per inner node of its *structure*, whatever its size: its level, whether it
    is the root, the set of its ``counted`` children's kinds (``kinds``: canonical primitive, or
    ``"module"``) and how many of them are leaves; 0 for leaves.  BERT's output block (a linear and a
    layer norm) is one structure at every batch and sequence length, and no decoder has it."""
    children: list[set[str]] = [set() for _ in range(len(table))]
    leaves = table.children_sum((counted & table.is_leaf).astype(float)).astype(int)
    for i in np.flatnonzero(counted & (table.parent >= 0)):
        children[table.parent[i]].add(str(kinds[i]))
    keys = np.zeros(len(table), dtype=np.int64)
    for i in np.flatnonzero(~table.is_leaf):
        text = f"{table.level[i]}|{table.parent[i] < 0}|{','.join(sorted(children[i]))}|{leaves[i]}".encode()
        keys[i] = int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little", signed=True)
    return keys


#: Share of a model's distinct module shapes another model must have for the two to be look-alikes.
CLUSTER_SHARE = 0.5


def of_new_family(families: np.ndarray, trained: Iterable[str | None]) -> np.ndarray:
    """Whether each model family of ``families`` (None: unknown, never new) is none of ``trained``."""
    seen = set(trained)
    new: np.ndarray = np.array([f is not None and f not in seen for f in families], dtype=bool)
    return new


def model_clusters(table: TreeTable) -> dict[str, int]:
    """Models grouped by the layers they share: two models are linked when at least
    :data:`CLUSTER_SHARE` of one's distinct module shapes (level, batch, sequence, flops, bytes moved
    and number of children) are the other's; clusters are the connected components (a family of
    look-alikes, e.g. BERT and RoBERTa)."""
    names = sorted({r.model_name for r in table.records})
    inner = table.level != "ml"
    rows = np.column_stack([
        np.nan_to_num(np.round(log_features(table)[inner], _SHAPE_DECIMALS), nan=-1.0),
        table.n_children[inner],
        np.unique(table.level[inner], return_inverse=True)[1].ravel(),
    ])
    keys = unique_rows(rows)[1]
    owner = np.array([table.records[i].model_name for i in table.record_index], dtype=object)[inner]
    shapes = [set(keys[owner == name].tolist()) for name in names]
    linked = np.array([
        [bool(a) and len(a & b) >= CLUSTER_SHARE * len(a) for b in shapes] for a in shapes
    ])
    _, labels = connected_components(csr_matrix(linked | linked.T), directed=False)
    return {name: int(label) for name, label in zip(names, labels, strict=True)}


def propagate_up(table: TreeTable, values: np.ndarray) -> np.ndarray:
    """Each node's maximum of ``values`` (per column) over itself and its descendants."""
    return _propagate(table, values, np.maximum)


def leaf_sum(table: TreeTable, values: np.ndarray) -> np.ndarray:
    """Each node's Σ of ``values`` (per column) over the leaves of its subtree (a leaf: its own)."""
    return _propagate(table, np.where(_column(table.is_leaf, values), values, 0.0), np.add)


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
    regressor of their own (``up``, ``down``: one column per such kind, how far each node's energy may
    lie above and below its estimate ``energies`` were that kind's leaves to cost the margin of a new
    kind more or less, ``e^±m``: the larger of what those leaves add to the node, ``G·(e^m − 1)`` above
    and ``G·(1 − e^−m)`` below, ``G`` their estimate, and how far the predictor's own estimate of the
    node moves, its own work being estimated from its children's).  Such a kind may be off by its
    margin on all its leaves at once (one bias), which the inner nodes' residuals, measured on trained
    kinds, never show; the kinds err independently of each other and of the node's own error, so the
    node's half-widths add in quadrature with those shifts.  A leaf's own interval already holds its
    margin."""
    if up.shape[1] == 0:
        return low, high
    inner = ~table.is_leaf
    with np.errstate(invalid="ignore"):  # a baseline's estimate overflowed to inf: its shift is nan
        widened_high = energies + np.hypot(high - energies, np.linalg.norm(up, axis=1))
        widened_low = np.maximum(energies - np.hypot(energies - low, np.linalg.norm(down, axis=1)), 0.0)
    # fmin / fmax: a node whose shift is undefined (nan) keeps its bounds
    return np.where(inner, np.fmin(low, widened_low), low), np.where(inner, np.fmax(high, widened_high), high)


def _leaf_weighted(table: TreeTable, values: np.ndarray, energies: np.ndarray) -> np.ndarray:
    """A leaf's ``values`` (a row per node), an inner node's its leaves' weighted by their predicted
    ``energies`` (where its leaves weigh nothing, their largest)."""
    leaf = table.is_leaf
    weight = np.where(leaf, np.clip(np.nan_to_num(energies), 0.0, None), 0.0)
    total = leaf_sum(table, weight)[:, None]
    weighted = leaf_sum(table, values * weight[:, None]) / np.where(total > 0, total, 1.0)
    out: np.ndarray = np.where(leaf[:, None], values, np.where(total > 0, weighted, propagate_up(table, values)))
    return out


def _column(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``mask`` shaped to broadcast against ``values`` (one entry per node, or a row per node)."""
    return mask.reshape(-1, *([1] * (values.ndim - 1)))


def _propagate(table: TreeTable, values: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
    """``values`` folded bottom up with ``ufunc``: each node combined with every descendant."""
    out = values.astype(float, copy=True)
    for depth in range(int(table.depth.max(initial=0)), 0, -1):
        rows = np.flatnonzero(table.depth == depth)
        ufunc.at(out, table.parent[rows], out[rows])
    return out


@dataclass
class Ranges:
    """Per canonical kind: ``(low, high)`` of :data:`RANGE_FEATURES` in log scale over its training leaves."""

    bounds: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    features: tuple[str, ...] = RANGE_FEATURES

    @classmethod
    def fit(cls, table: TreeTable, rows: np.ndarray, kinds: np.ndarray) -> Ranges:
        """The ranges of the leaves ``rows`` of ``table`` by kind (``kinds``, one per row of ``table``)."""
        ranges = cls()
        logs, kinds = log_features(table)[rows], kinds[rows]
        for kind in sorted(set(kinds)):
            rows = logs[kinds == kind]
            with np.errstate(invalid="ignore"), warnings.catch_warnings():  # a feature missing on all: no bound
                warnings.simplefilter("ignore", RuntimeWarning)
                low, high = np.nanmin(rows, axis=0), np.nanmax(rows, axis=0)
            ranges.bounds[kind] = (np.nan_to_num(low, nan=-_UNBOUNDED), np.nan_to_num(high, nan=_UNBOUNDED))
        return ranges

    def distance(self, table: TreeTable, rows: np.ndarray, kinds: np.ndarray) -> np.ndarray:
        """Log distances ``(above, below)`` of the leaves ``rows`` of ``table`` outside their kind's
        range, one row each (0 inside or for a kind without a range); ``kinds`` has one entry per row
        of ``table``."""
        logs, kinds = log_features(table, self.features)[rows], kinds[rows]
        out = np.zeros((len(kinds), 2))
        for kind in set(kinds):
            if kind not in self.bounds:
                continue
            rows = kinds == kind
            low, high = self.bounds[kind]
            for column, excess in enumerate((logs[rows] - high, low - logs[rows])):
                out[rows, column] = np.nan_to_num(np.nanmax(np.fmax(excess, 0.0), axis=1, initial=0.0), nan=0.0)
        return out

    def node_distance(self, table: TreeTable, kinds: np.ndarray, energies: np.ndarray | None) -> np.ndarray:
        """Every node's log distances ``(above, below)`` (:meth:`node_extent`)."""
        return self.node_extent(table, kinds, energies)[0]

    def node_extent(
        self, table: TreeTable, kinds: np.ndarray, energies: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every node's log distances ``(above, below)`` and the shares of it that lie outside each way;
        ``kinds`` and the predicted ``energies`` have one entry per node.  A leaf's share is 1 outside, 0
        inside; an inner node's distances and shares are its leaves' weighted by their predicted energy:
        a root whose pooler alone lies below the training sizes is barely outside (where its leaves weigh
        nothing, or without ``energies``, their largest)."""
        leaf = table.is_leaf
        d = np.zeros((len(table), 2))
        d[leaf] = self.distance(table, leaf, kinds)
        outside = (d > 0).astype(float)
        if energies is None:
            return propagate_up(table, d), propagate_up(table, outside)
        return _leaf_weighted(table, d, energies), _leaf_weighted(table, outside, energies)

    def get_state(self) -> dict[str, Any]:
        kinds = sorted(self.bounds)
        width = len(self.features)
        return {
            "kinds": kinds,
            "features": list(self.features),
            "low": np.array([self.bounds[k][0] for k in kinds]).reshape(len(kinds), width),
            "high": np.array([self.bounds[k][1] for k in kinds]).reshape(len(kinds), width),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Ranges:
        kinds = list(state["kinds"])
        features = tuple(str(f) for f in state.get("features", _LEGACY_RANGE_FEATURES))
        low, high = np.asarray(state["low"], float), np.asarray(state["high"], float)
        shape = (len(kinds), len(features))
        if low.shape != shape or high.shape != shape:
            raise ValueError(f"range arrays have shapes {low.shape} and {high.shape}, expected {shape}")
        return cls({k: (low[i], high[i]) for i, k in enumerate(kinds)}, features)


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
    #: Log widening of a leaf the generic regressor predicts (see *Unseen kinds* in the module docstring).
    unseen_kind: float = 0.0
    #: The training trees' model families (``meta.family``; see *New families* in the module docstring).
    families: tuple[str, ...] = ()
    #: Per slope, the largest distance of the held-out nodes it was measured on (none: unbounded, an older save).
    reach: dict[str, float] = field(default_factory=dict)
    #: Per level, the training trees' measurement noise (:func:`measurement_noise`; see *Measurement noise*).
    noise: dict[str, float] = field(default_factory=dict)
    #: Per slope, the widening of any node outside the training data that way, before its slope (none: an older save).
    offset: dict[str, float] = field(default_factory=dict)

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
        sequence length apart, whose widening is a second measurement (:data:`AXIS`)."""
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
        for level, residuals in (unseen_structure or {}).items():  # see *Unseen structures*
            base = _most_novel(quantiles, level)
            if len(residuals) >= MIN_NOVEL_RESIDUALS and base is not None:
                half = max(-base[0], base[1], _half_width(residuals))
                quantiles[FOREIGN + level] = (-half, half)
        below, roots = quantiles.get(FOREIGN + "module"), _most_novel(quantiles, "model")
        if below is not None and roots is not None:  # see *New families*
            quantiles[NEW_FAMILY + "module"] = _widest(below, quantiles.get(NEW_FAMILY + "module"))
            quantiles[NEW_FAMILY + "model"] = _widest(below, roots, quantiles.get(FOREIGN + "model"))
        known, sources = (source_counts(known, models) if models is not None
                          else (np.unique(known), np.zeros(0, np.int64)))
        model = cls(quantiles, {}, ranges, known=known, sources=sources, families=tuple(sorted(set(families))),
                    structures=np.unique(np.zeros(0, np.int64) if structures is None else structures),
                    unseen_kind=0.0 if unseen_kind is None else new_kind_margin(unseen_kind),
                    noise={level: value for level, value in (noise or {}).items() if value > 0})
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

    def base(self, levels: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log offsets ``(q₅, q₉₅)`` of each node's group or its fallbacks (:meth:`_quantiles`); a
        :data:`ONE_MODEL` leaf's at least its kind's known ones; every node's at least ± ``z₉₀`` times its
        level's measurement noise."""
        low, high = np.zeros(len(levels)), np.zeros(len(levels))
        for i, (level, group) in enumerate(zip(levels, groups, strict=True)):
            low[i], high[i] = self._quantiles(level, group)
            if group.startswith(ONE_MODEL):
                low[i], high[i] = _widest((low[i], high[i]), self._quantiles(level, _plain(group)))
        floor = Z90 * np.array([self.noise.get(level, 0.0) for level in levels])
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
               share: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` of the 90 % interval around each prediction ``pred`` with distances ``(above,
        below)`` the training data ``distance``, offsets bounded by ``cap`` and ``share``
        (:meth:`side_widening`) and log widening ``beyond`` a device calibration's data (a negative
        prediction, an OwnOps below a reconcile floor, gets its bounds in order too)."""
        low, high = self.base(levels, groups)
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
                return 0.0, 0.0 if design else default, _UNBOUNDED
            return self.offset.get(name, 0.0), self.slope[name], self.reach.get(name, _UNBOUNDED)

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
            "offset": dict(sorted(self.offset.items())),
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
        offset = {str(k): float(v) for k, v in dict(state.get("offset", {})).items()}  # older saves: none
        unseen_kind = float(state.get("unseen_kind", 0.0))  # older saves: no such widening
        if any(not np.isfinite(v) or v < 0
               for v in [*slope.values(), *offset.values(), *extra.values(), *reach.values(), *noise.values(),
                         unseen_kind]):
            raise ValueError("interval slopes, their offsets and reach, widening and measurement noise must be "
                             "finite and >= 0")
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
                   reach, noise, offset)


def describe_extrapolation(kinds: Iterable[str]) -> str:
    """``Linear, MatMul`` (sorted, unique) for a notice."""
    return ", ".join(sorted(set(kinds)))
