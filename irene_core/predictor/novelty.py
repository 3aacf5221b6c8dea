"""What a node is to the training data: known, novel, of an unseen structure, of a new family or product.

**Novelty.**  A node is *known* when a training node of its level and kind had the same shape (batch,
sequence length, flops and bytes moved, to 0.1 %: :func:`shape_keys`) and children of the same
shapes, all the way down; a node with module children also when most of those are known
(:func:`layered`: a RoBERTa's root, whose embeddings differ from BERT's by their vocabulary but whose
layers are BERT's, is a look-alike).  Known nodes are predicted almost by look-up; *novel* ones
(another family's modules, new sizes) are not.  A known leaf whose shape **one** training model had
is a look-up of one run of one model (:func:`source_counts`, :func:`shape_sources`).

**Unseen structures.**  A module's *structure* is its level and the kinds of its counted children,
whatever its size (:func:`structure_keys`): BERT's output block, a linear and a layer norm, is one
structure at every size, and no decoder has it.  A novel node that costs its children's sum (a pure
container no anchor measures) errs as they do (:func:`through_sums`).

**Products.**  A leaf's *product* is what it computes whatever the batch and sequence it runs on: its
work per batch element over the power of the sequence length its kind's work grows with
(:func:`seq_powers`, :func:`product_keys`): a `Linear`'s in × out.  A model of another width has
leaves of products no training leaf had, and one product's leaves share one error.

**Families.**  Models that share layers form clusters of look-alikes (:func:`model_clusters`), held
out together by the interval folds; a tree whose ``meta.family`` no training tree had is of a *new
family* (:func:`of_new_family`).

How each tier errs, and why the tiers are drawn where they are, is measured in docs/predictor.md
(*Intervals and* ``extrapolated``); :mod:`irene_core.predictor.uncertainty` turns them into widths.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from irene_core.predictor.estimators import unique_rows
from irene_core.predictor.training_ranges import log_features
from irene_core.tree.table import TreeTable

#: Shapes agree when their log flops and bytes agree to this many decimals (0.1 %).
_SHAPE_DECIMALS = 3
#: Two products (:func:`product_values`, rounded to 0.1 %) are one when they lie a rounding step apart or less.
SAME_PRODUCT = 1.5 * 10.0**-_SHAPE_DECIMALS


def _key(text: str) -> int:
    """A stable signed 64-bit key of ``text`` (the same in every process and release)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)


def shape_keys(table: TreeTable, kinds: np.ndarray) -> np.ndarray:
    """A stable 64-bit key per node of its level, kind, batch, seq, flops and bytes moved, and its
    children's keys: equal keys, equal shapes all the way down (see *Novelty* in the module docstring)."""
    logs = np.round(log_features(table), _SHAPE_DECIMALS)
    children: list[list[int]] = [[] for _ in range(len(table))]
    keys = np.empty(len(table), dtype=np.int64)
    for i in range(len(table) - 1, -1, -1):  # pre-order reversed: children before their parent
        below = ",".join(map(str, sorted(children[i])))
        keys[i] = _key(f"{table.level[i]}|{kinds[i]}|{'|'.join(map(repr, logs[i].tolist()))}|{below}")
        if table.parent[i] >= 0:
            children[table.parent[i]].append(int(keys[i]))
    return keys


#: The powers of the sequence length a primitive's work per batch element may grow with (:func:`seq_powers`).
SEQ_POWERS = (1, 2, 0)


def _work_per_element(table: TreeTable) -> np.ndarray:
    """Each node's log flops per batch element (NaN without flops > 0)."""
    flops = table.column("flops")
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = np.where(flops > 0, np.log(flops / table.column("batch_size")), np.nan)
    return out


def seq_powers(table: TreeTable, kinds: np.ndarray, rows: np.ndarray) -> dict[str, int]:
    """Per primitive kind of the leaves ``rows``, the power of the sequence length its work per batch
    element grows with, among :data:`SEQ_POWERS` the one under which its leaves share the fewest
    :func:`product_keys` (first listed on a tie): 1 for a `Linear` (its product, once per token), 2 for an
    attention `MatMul` (every token with every other)."""
    work, seq = _work_per_element(table), np.log(table.column("seq_len"))
    powers = {}
    for kind in sorted(set(kinds[rows])):
        at = rows & (kinds == kind) & np.isfinite(work)
        if at.any():
            counts = [len(np.unique(np.round(work[at] - k * seq[at], _SHAPE_DECIMALS))) for k in SEQ_POWERS]
            powers[str(kind)] = SEQ_POWERS[int(np.argmin(counts))]
    return powers


def product_values(table: TreeTable, kinds: np.ndarray, powers: dict[str, int]) -> np.ndarray:
    """Per leaf, the log of its *product*: its work per batch element over the sequence length to its
    kind's power (:func:`seq_powers`), to 0.1 % — what the leaf computes whatever the batch and sequence
    it runs on (a `Linear`'s in × out).  NaN for inner nodes and leaves without flops or of a kind
    without a power."""
    per = _work_per_element(table) - np.log(table.column("seq_len")) * np.array(
        [powers.get(k, np.nan) for k in kinds], dtype=float)
    out = np.full(len(table), np.nan)
    for i in np.flatnonzero(table.is_leaf & np.isfinite(per)):  # Python's rounding: the keys of older saves
        out[i] = round(float(per[i]), _SHAPE_DECIMALS)
    return out


def product_keys(values: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """A stable 64-bit key per leaf of its kind and its product (:func:`product_values`); 0 where it has none."""
    keys = np.zeros(len(values), dtype=np.int64)
    for i in np.flatnonzero(np.isfinite(values)):
        keys[i] = _key(f"{kinds[i]}|{float(values[i])!r}")
    return keys


def product_distances(values: np.ndarray, kinds: np.ndarray, trained: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per leaf, how far (natural-log units) its product (:func:`product_values`) lies from the nearest
    of its kind's ``trained`` products (sorted log values per kind); NaN where it has none or its kind
    no trained products."""
    out = np.full(len(values), np.nan)
    for kind in set(kinds[np.isfinite(values)]):
        at = (kinds == kind) & np.isfinite(values)
        known = trained.get(str(kind), np.zeros(0))
        if len(known):
            out[at] = np.abs(values[at, None] - known[None, :]).min(axis=1)
    return out


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


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct strings of ``values`` and each value's position among them (a dictionary
    look-up per value: several times faster than sorting the strings)."""
    names = sorted(set(map(str, values)))
    position = {name: i for i, name in enumerate(names)}
    return np.array(names, dtype=object), np.fromiter(map(position.__getitem__, map(str, values)), np.intp, len(values))


def structure_keys(table: TreeTable, kinds: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """A stable 64-bit key per inner node of its *structure*, whatever its size: its level, whether it
    is the root, the set of its ``counted`` children's kinds (``kinds``: canonical primitive, or
    ``"module"``) and how many of them are leaves; 0 for leaves.  BERT's output block (a linear and a
    layer norm) is one structure at every batch and sequence length, and no decoder has it."""
    names, codes = _factorize(kinds)
    child = np.flatnonzero(counted & (table.parent >= 0))
    present = np.zeros((len(table), len(names)), dtype=bool)  # which kinds each node's counted children have
    present[table.parent[child], codes[child]] = True
    leaves = table.children_sum((counted & table.is_leaf).astype(float)).astype(int)
    inner = np.flatnonzero(~table.is_leaf)
    rows = np.column_stack([_factorize(table.level)[1], table.parent < 0, leaves, present])
    first, inverse = unique_rows(rows[inner])
    hashed = []  # identical layers repeat one structure: one text per distinct structure
    for i in inner[first]:
        hashed.append(_key(f"{table.level[i]}|{table.parent[i] < 0}|{','.join(names[present[i]])}|{leaves[i]}"))
    keys = np.zeros(len(table), dtype=np.int64)
    keys[inner] = np.array(hashed, dtype=np.int64)[inverse]
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
