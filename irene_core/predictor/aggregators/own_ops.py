"""The default aggregator, ``own-ops``.

An inner node costs the sum of its children times an own-ops factor,
``E = S·exp(f(φ))``, where ``S`` is the sum of the children's estimates and ``f`` a ridge regression
(log space, penalty chosen by leave-one-model-out inside the training data) on features that
describe the node *relative to its children*: the flops, bytes (moved, and the paper's byte model)
and parameters it has beyond its children, its time and GPU energy over its children's, its
utilisation minus theirs, the share of each primitive kind among its children, batch, sequence
length and fan-out; plus a kernel smoother of its residuals over (input size, fan-out, share of
module children, extra flops).
None of them is a module class name, so a model whose module types were never seen is predicted
like any other.  A leaf of a kind that had training leaves (so a regressor) always counts in its
parent's children sum.  A leaf whose primitive kind training never saw as a leaf (GELU leaves of a
traced tree, when the training trees kept GELU in their modules' own work) is counted as part of
its parent's own work, as in training: it is left out of ``S`` and of the children's sums, and
the reconciled tree shows its estimate and the rest of the parent's own work beside it.
A **pure container** (children all modules, no work beyond theirs: BERT's layer, attention block
and encoder) runs its children and nothing else: unless an anchor measures it, it costs its
children's sum (a ridge trained on decoders, whose modules all have work of their own, gave BERT's
containers the factor of nodes with own work).
When the features include time, ``f`` may be **anchored** on the physical wall-energy model
``P`` (:func:`~irene_core.predictor.design.power_terms`, E ≈ a·E_gpu + t·(p₀ + Σ pᵢ·uᵢ) + …, one
linear fit over all inner nodes): ``E = P·exp(g(φ))``, so that the penalty shrinks towards the
physics, which knows nothing of a model's structure, instead of towards one factor for every node.
Trained on ground-truth children sums (identical nodes pooled); penalty, smoother and anchor chosen
on folds that leave out one model, one cluster of look-alike models (:func:`cluster_folds`) or the
largest batch or sequence lengths (:func:`range_folds`) inside the training data, the physical
model refitted in each fold; with the chosen ones, one fold per structure
(:func:`~irene_core.predictor.novelty.structure_keys`) measures how it errs on a structure it
never saw (for the intervals).  The factor is clipped to the range its level (module or model) had
in training: a model's stays within the few % training measured, however far its features lie outside.
Anchored, the clip bounds the correction ``g`` to the range training had instead: the physics, which
measured time and energy drive, may lead a node beyond the factors training saw.
The anchor is chosen per level: the modules' (none or ``P``) with the penalty and smoother by the
error over all inner nodes, then the root's (the modules' choice, or ``D``) by the roots' error alone.
``D`` is a log-linear fit of the training roots' energy on their own work and activity
(:func:`~irene_core.predictor.design.direct_terms`): a model's wall energy may follow its measured
time and utilisation by a power law that neither ``P``, fitted mostly on modules, nor a ridge shared
with the modules follows (without GPU energy, host-side work no module shows).  Its factor
``log(D/S)`` is clipped to the training roots' range, widened like the factors' bounds: fitted on a
handful of roots, the power law interpolates them and may run off by hundreds of orders of magnitude
one step outside them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from irene_core.errors import IreneError
from irene_core.predictor.aggregators.base import Aggregator, NodeData, bottom_up, teacher_mask
from irene_core.predictor.design import BYTE_FEATURES, direct_terms, power_terms
from irene_core.predictor.estimators import (
    FoldSmoothing,
    KernelSmoother,
    RelativeLinear,
    Ridge,
    cluster_folds,
    deduplicate,
    group_folds,
    range_folds,
    weighted_mean,
)
from irene_core.predictor.novelty import model_clusters, structure_keys
from irene_core.tree.table import TreeTable

_TINY = 1e-12
#: The bounds' key for an inner level training never saw (the range over all levels).
ANY_LEVEL = "*"
#: How far (share of its training range) a level's own-ops factor may go beyond that range.
BOUND_MARGIN = 0.1
#: Ridge penalty of the root's direct anchor ``D``.
DIRECT_ALPHA = 1e-4
#: The column of :meth:`OwnOpsAggregator._keys` that flags the root.
_ROOT_KEY = 4
#: Work beyond the children below this share of a node's own is rounding, not work.
_WORK_TOLERANCE = 1e-6
_PERCENT = ("cpu", "mem", "gpu", "gpu_mem")
_CLOCKS = ("gpu_clk", "gpu_mem_clk")
#: Values per node → their sum over each node's counted children.
ChildrenSum = Callable[[np.ndarray], np.ndarray]
#: A smoother option of :class:`OwnOpsAggregator` (bandwidth, shrinkage), or ``None`` for none.
Option = tuple[float, ...] | None


class _Pooled(NamedTuple):
    """The own-ops model's training rows, identical ones pooled (``weight``: how many): features ``phi``,
    log factor ``y``, smoother keys, physical and direct anchor columns, log children sums."""

    phi: np.ndarray
    y: np.ndarray
    keys: np.ndarray
    weight: np.ndarray
    terms: np.ndarray
    direct: np.ndarray
    log_s: np.ndarray

    @property
    def roots(self) -> np.ndarray:
        return self.keys[:, _ROOT_KEY] > 0


class _Fold(NamedTuple):
    """One held-out fold of the pooled rows: masks, every smoother's corrections of its held-out rows, the
    anchors' offsets refitted on the fold's training rows."""

    train: np.ndarray
    valid: np.ndarray
    smoothing: FoldSmoothing
    offsets: dict[str, np.ndarray]


def _widened(v: np.ndarray) -> tuple[float, float]:
    """The range of ``v`` widened by :data:`BOUND_MARGIN` of its width on each side."""
    return float(v.min() - BOUND_MARGIN * np.ptp(v)), float(v.max() + BOUND_MARGIN * np.ptp(v))


def _factor_bounds(y: np.ndarray, levels: np.ndarray) -> dict[str, tuple[float, float]]:
    """Per inner level, the range of the training log own-ops factors ``y``, :func:`_widened`: a model's
    factor, which training measured within a few % of 1, stays there however far its features
    extrapolate, while a module's keeps its wide range; :data:`ANY_LEVEL` holds the range over all
    levels."""
    groups = {level: y[levels == level] for level in np.unique(levels)} | {ANY_LEVEL: y}
    return {str(level): _widened(v) for level, v in groups.items()}


class DirectAnchor(NamedTuple):
    """The root's direct anchor ``D`` (see the module docstring): a log-linear model of a root's
    energy, and the range (:func:`_widened`) of the training roots' log factors ``log(energy/S)`` that
    its factor ``log(D/S)`` is clipped to."""

    model: Ridge
    low: float
    high: float

    @classmethod
    def fit(cls, direct: np.ndarray, log_energy: np.ndarray, log_s: np.ndarray, weight: np.ndarray) -> DirectAnchor:
        return cls(Ridge(DIRECT_ALPHA).fit(direct, log_energy, weight), *_widened(log_energy - log_s))

    def clip(self, log_factor: np.ndarray) -> np.ndarray:
        clipped: np.ndarray = np.clip(log_factor, self.low, self.high)
        return clipped

    def log_factor(self, direct: np.ndarray, log_s: np.ndarray) -> np.ndarray:
        """``log(D/S)`` of roots with direct columns ``direct`` and log children sums ``log_s``."""
        return self.clip(self.model.predict(direct) - log_s)


def _offsets(
    power: RelativeLinear, root_model: DirectAnchor | None, terms: np.ndarray, direct: np.ndarray,
    roots: np.ndarray, log_s: np.ndarray,
) -> dict[str, np.ndarray]:
    """The anchored offsets log(anchor/S) of rows with physical columns ``terms``, direct columns
    ``direct`` and log children sums ``log_s``: ``power`` (``P`` everywhere) and, given the root's
    model, ``direct`` (``D`` at the ``roots``, ``P`` elsewhere) and ``root`` (``D`` at the roots, no
    anchor elsewhere)."""
    offsets = {"power": np.log(np.maximum(power.predict(terms), _TINY)) - log_s}
    if root_model is not None:
        at_root = root_model.log_factor(direct, log_s)
        offsets["direct"] = np.where(roots, at_root, offsets["power"])
        offsets["root"] = np.where(roots, at_root, 0.0)
    return offsets


class OwnOpsAggregator(Aggregator):
    """``E = S·exp(f(φ))`` (see the module docstring)."""

    name = "own-ops"

    def __init__(
        self,
        alphas: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1e3),
        smoothers: tuple[tuple[float, float], ...] = ((0.1, 1.0), (0.3, 1.0), (0.3, 10.0), (1.0, 10.0)),
        anchor: bool = True,
    ):
        self.alphas = tuple(alphas)
        self.anchor = anchor
        self.smoothers: tuple[tuple[float, ...], ...] = tuple(tuple(x) for x in smoothers)
        self.kinds_: list[str] = []
        self.power_: RelativeLinear | None = None
        self.direct_: DirectAnchor | None = None  # the root's anchor D, when cross-validation chose it
        self.model_: Ridge | None = None
        self.smoother_: KernelSmoother | None = None
        self.bounds_: dict[str, tuple[float, float]] = {}
        self.anchored_ = False
        self.bounded_ = "factor"  # what the bounds clip: the factor f, or (anchored) the correction g
        self.structure_residuals_: dict[str, np.ndarray] = {}

    # -- features ---------------------------------------------------------------------------------
    def counted(self, table: TreeTable, kinds: np.ndarray) -> np.ndarray:
        """Inner nodes and leaves of a kind seen as a child in training (others are part of their
        parent's own work)."""
        mask: np.ndarray = ~table.is_leaf | np.isin(kinds, self.kinds_)
        return mask

    def _children_summer(self, data: NodeData) -> ChildrenSum:
        """Σ over each node's counted children (:meth:`counted`)."""
        t, counted = data.table, self.counted(data.table, data.kinds)
        return lambda values: t.children_sum(np.where(counted, values, 0.0))

    @staticmethod
    def _work(data: NodeData, children_sum: ChildrenSum) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per work feature present (flops, bytes, parameters): the node's own and what it adds to its
        children's."""
        names = [n for n in ("flops", *BYTE_FEATURES, "num_parameters") if n in data.names]
        return [(own, own - children_sum(own)) for own in (data.X[:, data.names.index(n)] for n in names)]

    @staticmethod
    def _containers(data: NodeData, work: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Pure containers: inner nodes whose children are all modules and which add no work of their
        own (no flops, bytes or parameters beyond their children's): they run their children and
        nothing else.  None without a work feature (the resource set): nothing says the work is none."""
        t = data.table
        own_work = np.full(len(t), not work)
        for own, extra in work:
            own_work |= extra > _WORK_TOLERANCE * np.abs(own)
        modules_only = t.children_sum((~t.is_leaf).astype(float)) == t.n_children
        mask: np.ndarray = ~t.is_leaf & modules_only & ~own_work
        return mask

    @staticmethod
    def _static(data: NodeData, children_sum: ChildrenSum, work: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        t = data.table
        children = children_sum(np.ones(len(t)))
        cols = []
        for own, extra in work:
            extra = np.maximum(extra, 0.0)
            cols += [np.log1p(extra), extra / (np.abs(own) + 1e-3)]
        cols += [np.log(t.column("batch_size")), np.log(t.column("seq_len"))]
        cols += [
            np.log1p(children),
            np.log1p(children_sum(t.is_leaf.astype(float))),
            (t.parent < 0).astype(float),
        ]
        time = data.col("times_mean")
        if time is not None:
            child_time = np.maximum(children_sum(time), _TINY)
            cols.append(np.log(np.maximum(time, _TINY) / child_time))
            for name, unit in [(n, 100.0) for n in _PERCENT] + [(n, 1000.0) for n in _CLOCKS]:
                value = data.col(name)
                if value is not None:
                    cols.append((value - children_sum(value * time) / child_time) / unit)
        gpu_energy = data.col("gpu_energy_mean")
        if gpu_energy is not None:
            cols.append(np.log(np.maximum(gpu_energy, _TINY) / np.maximum(children_sum(gpu_energy), _TINY)))
        return np.column_stack(cols)

    def _keys(self, data: NodeData, children_sum: ChildrenSum) -> np.ndarray:
        """Where a node sits among inner nodes, for smoothing the own-ops residuals: input size,
        fan-out, share of module children, extra flops share, root or not."""
        t = data.table
        children = children_sum(np.ones(len(t)))
        module_children = t.children_sum((~t.is_leaf).astype(float)) / np.maximum(children, 1)
        cols = [
            np.log(t.column("batch_size")),
            np.log(t.column("seq_len")),
            np.log1p(children),
            module_children,
            (t.parent < 0).astype(float),
        ]
        flops = data.col("flops")
        if flops is not None:
            cols.append(np.maximum(flops - children_sum(flops), 0.0) / (np.abs(flops) + 1e-3))
        return np.column_stack(cols)

    def _dynamic(
        self, data: NodeData, idx: np.ndarray, E: np.ndarray, S: np.ndarray, power: np.ndarray | None
    ) -> np.ndarray:
        t = data.table
        safe = np.maximum(S, _TINY)
        cols = [t.children_sum(np.where(data.kinds == kind, E, 0.0))[idx] / safe for kind in self.kinds_]
        if power is not None:
            cols.append(np.log(np.maximum(power[idx], _TINY) / safe))
        return np.column_stack(cols)

    def _power(self, data: NodeData) -> np.ndarray | None:
        return None if self.power_ is None else self.power_.predict(power_terms(data.X, data.names))

    def _log_anchor(self, data: NodeData, power: np.ndarray | None) -> np.ndarray:
        """Each node's log anchor: log ``P`` when anchored, log ``D`` at the root when it has one, else NaN."""
        anchor = np.full(len(data.table), np.nan)
        if self.anchored_ and power is not None:
            anchor = np.log(np.maximum(power, _TINY))
        if self.direct_ is not None:
            root = data.table.parent < 0
            anchor[root] = self.direct_.model.predict(direct_terms(data.X[root], data.names))
        return anchor

    # -- fit / predict ----------------------------------------------------------------------------
    def fit(self, data: NodeData, leaf_estimates: np.ndarray) -> dict[str, Any]:
        t = data.table
        rows = teacher_mask(t)
        if not rows.any():
            raise IreneError(
                "no inner node with ground truth on itself and all its children: cannot train the own-ops model"
            )
        truth = np.where(t.truth > 0, t.truth, 0.0)
        child_kinds = data.kinds[(t.parent >= 0) & rows[np.maximum(t.parent, 0)]]
        trained_kinds = data.kinds[t.is_leaf & (t.truth > 0)]  # a kind with a regressor always counts
        self.kinds_ = sorted(set(child_kinds) | set(trained_kinds))
        idx = np.flatnonzero(rows)
        self.power_ = self.direct_ = None
        terms = np.zeros((len(idx), 0))  # the physical model's columns on the training rows
        direct = np.zeros((len(idx), 0))  # the root's direct model's columns on the training rows
        if "times_mean" in data.names:
            terms = power_terms(data.X[idx], data.names)
            self.power_ = RelativeLinear(1e-8).fit(terms, t.truth[idx])
            if (t.parent[idx] < 0).any():
                direct = direct_terms(data.X[idx], data.names)
        power = self._power(data)
        children_sum = self._children_summer(data)
        S = children_sum(truth)
        work = self._work(data, children_sum)
        static = self._static(data, children_sum, work)
        phi = np.hstack([static[idx], self._dynamic(data, idx, truth, S[idx], power)])
        keys = self._keys(data, children_sum)[idx]
        if not self.anchor:
            terms, direct = terms[:, :0], direct[:, :0]
        structure_key = structure_keys(t, data.kinds, self.counted(t, data.kinds))
        structure = np.unique(structure_key, return_inverse=True)[1].ravel()
        labels = np.column_stack([structure, self._containers(data, work)])[idx]
        blocks = [phi, keys, terms, direct, np.log(S[idx])[:, None], labels]
        X, y, groups, weight = deduplicate(np.hstack(blocks), np.log(t.truth[idx] / S[idx]), t.model_name[idx])
        phi, keys, terms, direct, log_s, labels = np.split(X, np.cumsum([b.shape[1] for b in blocks])[:-1], axis=1)
        pooled = _Pooled(phi, y, keys, weight, terms, direct, log_s[:, 0])
        roots, log_s = pooled.roots, pooled.log_s
        alpha, smoother, anchor = self._select(pooled, groups, model_clusters(t))
        self.structure_residuals_ = self._structure_residuals(
            pooled, labels[:, 0], labels[:, 1] > 0, (alpha, smoother, anchor)
        )
        self.anchored_ = anchor in ("power", "direct")
        if anchor in ("direct", "root"):
            self.direct_ = DirectAnchor.fit(direct[roots], y[roots] + log_s[roots], log_s[roots], weight[roots])
        target = y
        if anchor != "none":
            assert self.power_ is not None  # anchors are offered with the physical model only
            target = y - _offsets(self.power_, self.direct_, terms, direct, roots, log_s)[anchor]
        # the range per level (the root is the model level) of what the ridge fits: the factor, or the
        # correction to the anchor; pooling identical rows leaves every range as it was
        self.bounds_ = _factor_bounds(target, np.where(roots, "model", "module"))
        self.bounded_ = "correction" if anchor != "none" else "factor"
        self.model_ = Ridge(alpha).fit(phi, target, weight)
        self.smoother_ = None
        if smoother is not None:
            residuals = target - self.model_.predict(phi)
            self.smoother_ = KernelSmoother(smoother[0], smoother[1]).fit(keys, residuals, weight)
        return {
            "inner_rows": len(idx),
            "alpha": alpha,
            "smoother": smoother,
            "anchored": self.anchored_,
            "anchor": anchor,
            "kinds": self.kinds_,
        }

    @staticmethod
    def _offset(log_anchor: np.ndarray, S: np.ndarray) -> np.ndarray:
        """The offset of ``f``: log(anchor/S), 0 for a node without an anchor (NaN)."""
        offset: np.ndarray = np.where(
            np.isnan(log_anchor), 0.0, np.nan_to_num(log_anchor) - np.log(np.maximum(S, _TINY))
        )
        return offset

    def _fold(self, rows: _Pooled, train: np.ndarray, valid: np.ndarray) -> _Fold:
        """The fold holding out ``valid``, with ``P`` and ``D`` refitted on its ``train`` rows (when the
        rows have their columns)."""
        bandwidths = (s[0] for s in self.smoothers)
        smoothing = FoldSmoothing(rows.keys[train], rows.weight[train], rows.keys[valid], bandwidths)
        offsets = {"none": np.zeros(len(rows.y))}
        if rows.terms.shape[1]:
            log_energy = rows.y + rows.log_s
            power = RelativeLinear(1e-8).fit(rows.terms[train], np.exp(log_energy[train]), rows.weight[train])
            fit_roots = train & rows.roots
            root_model = None
            if rows.direct.shape[1] and fit_roots.any():
                root_model = DirectAnchor.fit(
                    rows.direct[fit_roots], log_energy[fit_roots], rows.log_s[fit_roots], rows.weight[fit_roots]
                )
            offsets |= _offsets(power, root_model, rows.terms, rows.direct, rows.roots, rows.log_s)
        return _Fold(train, valid, smoothing, offsets)

    def _held_out(
        self, rows: _Pooled, folds: list[_Fold], anchor: str, alpha: float
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Per fold offering ``anchor``: the held-out log residuals ``log(truth / estimate)`` of the own-ops
        factor, one row per smoother option (:attr:`options`), and the held-out rows."""
        for fold in folds:
            if anchor not in fold.offsets:
                continue
            target = rows.y - fold.offsets[anchor]
            model = Ridge(alpha).fit(rows.phi[fold.train], target[fold.train], rows.weight[fold.train])
            pred = model.predict(rows.phi[fold.valid]) + fold.offsets[anchor][fold.valid]
            residuals = target[fold.train] - model.predict(rows.phi[fold.train])
            yield rows.y[fold.valid] - (pred + fold.smoothing.corrections(residuals, self.options)), fold.valid

    @property
    def options(self) -> list[Option]:
        """The own-ops factor's smoother options: none, then each of :attr:`smoothers`."""
        return [None, *self.smoothers]

    def _select(self, rows: _Pooled, groups: np.ndarray, clusters: dict[str, int]) -> tuple[float, Option, str]:
        """(ridge penalty, smoother, anchor) with the least mean error of the own-ops factor over the
        folds that leave out one model (``groups``), one cluster of look-alike models (``clusters``:
        model → cluster) or the largest batch or sequence lengths (the keys' first two columns); the
        anchor is ``"none"`` or ``"power"`` (``P`` on every inner node), or, when the roots' error alone
        says so, the same with ``D`` at the root (``"root"``, ``"direct"``; see :func:`_offsets`).
        Anchors are judged with ``P`` and ``D`` refitted on each fold's training rows (offered when the
        rows have their columns)."""
        roots = rows.roots
        splits = [*group_folds(groups), *cluster_folds(groups, clusters), *range_folds(rows.keys[:, :2])]
        folds = [self._fold(rows, train, valid) for train, valid in splits]

        Key = tuple[float, Option, str]
        scores: dict[Key, list[float]] = {}
        root_scores: dict[Key, list[float]] = {}  # the roots' alone

        def score(anchor: str, alpha: float) -> None:
            for residual, valid in self._held_out(rows, folds, anchor, alpha):
                error, weight, at = np.abs(np.expm1(-residual)), rows.weight[valid], roots[valid]
                means = weighted_mean(error, weight)
                at_roots = weighted_mean(error[:, at], weight[at]) if at.any() else None
                for row, option in enumerate(self.options):
                    key = (alpha, option, anchor)
                    scores.setdefault(key, []).append(float(means[row]))
                    if at_roots is not None:
                        root_scores.setdefault(key, []).append(float(at_roots[row]))

        # the penalty, smoother and modules' anchor by the mean error over all nodes ...
        for anchor in ("none", "power"):
            for a in self.alphas:
                score(anchor, a)
        if not scores:
            return self.alphas[len(self.alphas) // 2], None, "none"
        a, option, anchor = min(scores, key=lambda k: np.mean(scores[k]))

        # ... then the root's (D or the modules' anchor) by the roots' error alone
        at_root = {"none": "root", "power": "direct"}[anchor]
        score(at_root, a)

        def root_error(candidate: str) -> float:
            values = root_scores.get((a, option, candidate))
            return float(np.mean(values)) if values else np.inf

        return a, option, at_root if root_error(at_root) < root_error(anchor) else anchor

    def _structure_residuals(
        self, rows: _Pooled, structure: np.ndarray, container: np.ndarray, choice: tuple[float, Option, str]
    ) -> dict[str, np.ndarray]:
        """:meth:`unseen_structure_residuals` with the chosen (penalty, smoother, anchor): each
        structure's rows held out in turn; a pure container that no anchor measures is left out (it
        costs its children's sum, whatever its structure)."""
        alpha, chosen, anchor = choice
        roots = rows.roots
        anchored = np.full(len(roots), anchor in ("power", "direct")) | (roots & (anchor == "root"))
        folds = [self._fold(rows, train, valid) for train, valid in group_folds(structure)]
        out: dict[str, list[np.ndarray]] = {}
        for residuals, valid in self._held_out(rows, folds, anchor, alpha):
            keep = ~container[valid] | anchored[valid]
            if not keep.any():
                continue
            residual = residuals[self.options.index(chosen)]
            counts = np.rint(rows.weight[valid][keep]).astype(int)
            for level, at in (("model", roots[valid][keep]), ("module", ~roots[valid][keep])):
                out.setdefault(level, []).append(np.repeat(residual[keep][at], counts[at]))
        return {level: np.concatenate(parts) for level, parts in out.items()}

    def unseen_structure_residuals(self) -> dict[str, np.ndarray]:
        return self.structure_residuals_

    def sums_children(self, data: NodeData) -> np.ndarray:
        """Pure containers that no anchor measures: they cost their children (see the module docstring)."""
        return self._summed(data, self._log_anchor(data, self._power(data)),
                            self._work(data, self._children_summer(data)))

    def _summed(self, data: NodeData, anchor: np.ndarray, work: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        summed: np.ndarray = np.isnan(anchor) & self._containers(data, work)
        return summed

    def predict(self, data: NodeData, leaf_estimates: np.ndarray) -> np.ndarray:
        children_sum = self._children_summer(data)
        work = self._work(data, children_sum)
        static = self._static(data, children_sum, work)
        power = self._power(data)
        anchor = self._log_anchor(data, power)
        t = data.table
        smoother = self.smoother_
        correction = np.zeros(len(t)) if smoother is None else smoother.predict(self._keys(data, children_sum))
        bounds = np.array([self.bounds_.get(level, self.bounds_[ANY_LEVEL]) for level in t.level])
        container = self._summed(data, anchor, work)  # costs its children

        def combine(idx: np.ndarray, E: np.ndarray) -> np.ndarray:
            assert self.model_ is not None  # set by fit / set_state
            S = children_sum(E)[idx]
            phi = np.hstack([static[idx], self._dynamic(data, idx, E, S, power)])
            low, high = bounds[idx, 0], bounds[idx, 1]
            g = self.model_.predict(phi) + correction[idx]
            offset = self._offset(anchor[idx], S)
            if self.direct_ is not None:
                offset = np.where(t.parent[idx] < 0, self.direct_.clip(offset), offset)
            # bounding the correction, the physics may lead a node beyond the factors training saw
            f = offset + np.clip(g, low, high) if self.bounded_ == "correction" else np.clip(offset + g, low, high)
            estimate: np.ndarray = S * np.exp(np.where(container[idx], 0.0, f))
            return estimate

        return bottom_up(data.table, leaf_estimates, combine)

    def get_state(self) -> dict[str, Any]:
        assert self.model_ is not None  # only fitted aggregators are saved
        return {
            "alphas": list(self.alphas),
            "smoothers": [list(x) for x in self.smoothers],
            "kinds": self.kinds_,
            "power": None if self.power_ is None else self.power_.get_state(),
            "direct": None if self.direct_ is None else {
                **self.direct_.model.get_state(), "range": [self.direct_.low, self.direct_.high]
            },
            "model": self.model_.get_state(),
            "smoother": None if self.smoother_ is None else self.smoother_.get_state(),
            "bounds": {level: list(b) for level, b in self.bounds_.items()},
            "bounded": self.bounded_,
            "anchor": self.anchor,
            "anchored": self.anchored_,
        }

    def set_state(self, state: dict[str, Any]) -> OwnOpsAggregator:
        self.alphas = tuple(float(a) for a in state["alphas"])
        self.smoothers = tuple(tuple(float(v) for v in x) for x in state["smoothers"])
        self.kinds_ = list(state["kinds"])
        self.power_ = None if state["power"] is None else RelativeLinear.from_state(state["power"])
        direct = state.get("direct")  # absent before the root's direct anchor: P everywhere
        self.direct_ = None if direct is None else DirectAnchor(
            Ridge.from_state(direct), *direct.get("range", (-np.inf, np.inf))  # saved before the clip: none
        )
        self.model_ = Ridge.from_state(state["model"])
        self.smoother_ = None if state["smoother"] is None else KernelSmoother.from_state(state["smoother"])
        bounds = state["bounds"]
        if isinstance(bounds, list):  # saved before per-level bounds: one range for every inner node
            bounds = {ANY_LEVEL: bounds}
        self.bounds_ = {str(level): (float(b[0]), float(b[1])) for level, b in bounds.items()}
        self.bounded_ = str(state.get("bounded", "factor"))  # saved before: the factor
        self.anchor = bool(state.get("anchor", False))  # saved before the anchor: never anchored
        self.anchored_ = bool(state.get("anchored", False))
        return self
