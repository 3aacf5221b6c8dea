"""The energy predictor (public API): fit on measured trees, predict every node of new trees.

>>> p = Predictor(features="model").fit(records)          # doctest: +SKIP
>>> predicted = p.predict(new_records)                      # doctest: +SKIP

``predict`` returns deep copies with ``predicted_energy``, a 90 % interval (``predicted_low``,
``predicted_high``) and ``extrapolated`` on every node, and the predictor's warnings as the record's
``notices`` (:mod:`irene_core.predictor.uncertainty`); every inner node gets a
synthetic ``OwnOps`` child (level ``ml``) holding what the node spends beyond its children, so a
parent equals the sum of its children exactly and energy shares sum to 100 %.  The pipeline:
per-primitive regressors at the leaves (:mod:`irene_core.predictor.leaf_models`), an aggregator for inner
nodes (:mod:`irene_core.predictor.aggregators.base`), then :mod:`irene_core.predictor.reconcile`.
See docs/predictor.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.model_selection import GroupKFold

from irene_core._version import __version__
from irene_core.errors import IreneError
from irene_core.plugins import get_registry
from irene_core.predictor import artifacts
from irene_core.predictor.aggregators import Aggregator, NodeData, make_aggregator
from irene_core.predictor.calibration import DeviceCalibration
from irene_core.predictor.config import PredictorConfig, load_config
from irene_core.predictor.design import POWER_TERMS_REVISION, feature_names, power_terms_changed
from irene_core.predictor.leaf_models import LeafModels
from irene_core.predictor.novelty import (
    layered,
    model_clusters,
    of_new_family,
    product_keys,
    product_values,
    seq_powers,
    shape_keys,
    shape_sources,
    source_counts,
    structure_keys,
    through_sums,
)
from irene_core.predictor.reconcile import fit_floors, floor_per_node, reconcile
from irene_core.predictor.training_ranges import Ranges, describe_extrapolation, leaf_sum, propagate_up
from irene_core.predictor.uncertainty import (
    FOLDS,
    IntervalModel,
    Residuals,
    interval_group,
    interval_groups,
    measurement_noise,
    offset_caps,
    replicate_noise,
    spanning_readings,
    spanning_unseen_kinds,
)
from irene_core.tree.schema import ABSORBED_LEAVES, OWN_OPS_TYPE, RESOURCE_FEATURES, Node, Notice, TreeRecord, unique_id
from irene_core.tree.table import TreeTable, preorder

if TYPE_CHECKING:
    from irene_core.tracing.framework import TracedModel

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
#: What every ``--predictor`` also calls the shipped model-features predictor (the web API's name for it).
REFERENCE = "reference"
#: Held-out records predicted per fold of the out-of-fold step (evenly spaced; bounds its cost).
MAX_HELD_OUT_RECORDS = 32
NOTICE_SOURCE = "predictor"


@dataclass
class Annotations:
    """What :meth:`Predictor.annotate` adds to the point predictions of a table: per node the 90 %
    interval and the extrapolation flag, per inner node its OwnOps interval, per record its notices."""

    low: np.ndarray
    high: np.ndarray
    own_low: np.ndarray
    own_high: np.ndarray
    extrapolated: np.ndarray
    notices: list[list[Notice]]


def _held_out_folds(
    table: TreeTable, by_model: Residuals, by_size: Residuals, by_both: Residuals, by_axis: Residuals
) -> Iterator[tuple[np.ndarray, np.ndarray, Residuals]]:
    """(train, held-out record masks, where the fold's residuals go): ``FOLDS − 1`` group folds by
    model (by record with a single model), one fold per cluster of look-alike models
    (:func:`model_clusters`, when there are several: its nodes are novel to the others) that no group
    fold holds out already (the same fold twice would count its residuals twice), then two
    size folds (train on the smaller half of batch × seq and hold out the larger, and the reverse)
    whose held-out nodes lie above or below the training sizes, as a new model's may, then the same
    per size that varies, batch and sequence length apart (``by_axis``: the halves of batch × seq keep
    most held-out nodes inside the training sequence lengths, where an attention product's new length
    is not), then the group folds by model once more with their training on one half of the sizes and
    their held-out records on the other, both ways (a new model at new sizes, ``by_both``); at most
    :data:`MAX_HELD_OUT_RECORDS` evenly spaced held-out records per fold."""
    names = np.array([r.model_name for r in table.records], dtype=object)
    batch, seq = (np.array([getattr(r, size) for r in table.records]) for size in ("batch_size", "seq_len"))
    tokens = batch * seq
    groups = names if len(set(names)) > 1 else np.arange(len(names))
    n_folds = min(FOLDS - 1, len(set(groups)))
    by_group = list(GroupKFold(n_folds).split(names, groups=groups)) if n_folds >= 2 else []
    splits = [(*s, by_model) for s in by_group]
    cluster = model_clusters(table)
    clusters = np.array([cluster[n] for n in names])
    if len(set(clusters)) > 1:
        held = {frozenset(test.tolist()) for _, test in by_group}
        out = ((np.flatnonzero(clusters != c), np.flatnonzero(clusters == c)) for c in sorted(set(clusters)))
        splits += [(train, test, by_model) for train, test in out if frozenset(test.tolist()) not in held]
    small = tokens <= np.median(tokens)
    if small.any() and not small.all():
        halves = (small, ~small), (~small, small)
        splits += [(np.flatnonzero(train), np.flatnonzero(test), by_size) for train, test in halves]
        for size in (batch, seq):
            lower = size <= np.median(size)
            if lower.any() and not lower.all():
                splits += [(np.flatnonzero(train), np.flatnonzero(test), by_axis)
                           for train, test in ((lower, ~lower), (~lower, lower))]
        both = [(np.intersect1d(train, np.flatnonzero(train_half)), np.intersect1d(test, np.flatnonzero(test_half)))
                for train, test in by_group for train_half, test_half in halves]
        splits += [(train, test, by_both) for train, test in both if len(train) and len(test)]
    for train, test, residuals in splits:
        keep_train = np.zeros(len(names), bool)
        keep_train[train] = True
        keep_test = np.zeros(len(names), bool)
        keep_test[test[np.linspace(0, len(test) - 1, min(len(test), MAX_HELD_OUT_RECORDS)).astype(int)]] = True
        yield keep_train, keep_test, residuals


def _notify(
    notices: list[list[Notice]], table: TreeTable, mask: np.ndarray, message: str | Callable[[np.ndarray], str]
) -> None:
    """One predictor notice per record with nodes in ``mask``: ``message``, or ``message(rows of that record)``."""
    for r in sorted(set(table.record_index[mask])):
        rows = np.flatnonzero(mask & (table.record_index == r))
        text = message if isinstance(message, str) else message(rows)
        notices[r].append(Notice(source=NOTICE_SOURCE, message=text, nodes=[table.nodes[i].id for i in rows]))


def feature_gaps(config: PredictorConfig, table: TreeTable) -> dict[str, int]:
    """Per feature ``config`` uses (its set's, less ``exclude_features``, in order), how many nodes of
    ``table`` lack it: a predictor trained on ``table`` drops those some node lacks."""
    return {f: int(np.isnan(table.column(f)).sum()) for f in feature_names(config.features, config.bytes_feature)
            if f not in config.exclude_features}


class Predictor:
    """scikit-learn style: plain parameters (a :class:`PredictorConfig`), ``fit``, ``predict``."""

    def __init__(self, config: PredictorConfig | dict[str, Any] | str | Path | None = None, **overrides: Any):
        self.config = load_config(config, **overrides)
        self.feature_names_: tuple[str, ...] = ()
        self.leaves_: LeafModels | None = None
        self.aggregator_: Aggregator | None = None
        self.hardware_: str = "unknown hardware"
        self.training_: dict[str, Any] = {}
        self.intervals_: IntervalModel | None = None
        self.calibration_: DeviceCalibration | None = None
        self.floors_: dict[str, float] = {}

    @classmethod
    def from_config(
        cls, config: PredictorConfig | dict[str, Any] | str | Path | None = None, **overrides: Any
    ) -> Predictor:
        return cls(config, **overrides)

    @property
    def hardware(self) -> str:
        """What the predicted figures stand for (the training data's hardware)."""
        return self.hardware_

    @property
    def feature_set(self) -> str:
        return self.config.features

    @property
    def is_fitted(self) -> bool:
        return self.aggregator_ is not None

    # -- training ---------------------------------------------------------------------------------
    def fit(self, records: Sequence[TreeRecord]) -> Predictor:
        """Train on measured trees (ground truth on the nodes); returns ``self``."""
        return self.fit_table(TreeTable.from_records(list(records)))

    def fit_table(self, table: TreeTable) -> Predictor:
        """Fit the point predictor, then the intervals from out-of-fold residuals (see
        :mod:`irene_core.predictor.uncertainty`)."""
        self._fit_point(table)
        start = time.perf_counter()
        by_model, by_size, by_both, by_axis = Residuals(), Residuals(), Residuals(), Residuals()
        folds = 0
        keys = self._shape_keys(table)
        # each node's model, an integer code (to count how many training models had a shape)
        models = np.unique([r.model_name for r in table.records], return_inverse=True)[1].ravel()[table.record_index]
        for train, test, residuals in _held_out_folds(table, by_model, by_size, by_both, by_axis):
            sub = Predictor(self.config)
            try:
                trained_on = table.subset(train)
                sub._fit_point(trained_on)
                held_out = table.subset(test)
                energies, _ = sub.predict_table(held_out)
            except IreneError:  # a fold without enough data to fit: its residuals are missing
                continue
            kinds = sub._kinds(held_out)
            distance = sub._ranges(trained_on).node_distance(held_out, kinds, energies)
            trained = train[table.record_index]
            sources = shape_sources(keys[test[table.record_index]], *source_counts(keys[trained], models[trained]))
            novel = layered(held_out, sources == 0)
            kept = None
            if residuals is by_model:  # a leaf outside its fold's ranges: the size folds measure such leaves
                kept = ~(held_out.is_leaf & (distance > 0).any(axis=1))
            else:
                novel = self._interval_novelty(held_out, novel, distance)
            new_family = of_new_family(held_out.family, [r.family for r in trained_on.records])
            residuals.add(held_out.truth, energies, held_out.level, kinds, distance, novel, new_family,
                          held_out.is_leaf & (sources == 1), kept)
            folds += 1
        assert self.aggregator_ is not None and self.leaves_ is not None  # set by _fit_point
        usable = table.is_leaf & (table.truth > 0)
        kinds = self._kinds(table)
        powers = seq_powers(table, kinds, usable)
        values = product_values(table, kinds, powers)[usable]
        X = self._matrix(table)[usable]
        self.intervals_ = IntervalModel.fit(
            by_model, by_size, self._ranges(table), keys, self.aggregator_.unseen_structure_residuals(),
            self._structure_keys(table)[~table.is_leaf],
            self.leaves_.unseen_kind_residuals(X, table.truth[usable], table.type[usable]),
            [r.family for r in table.records if r.family is not None], by_both, models, measurement_noise(table),
            by_axis=by_axis,
            new_product=self.leaves_.new_product_residuals(
                X, table.truth[usable], table.type[usable], product_keys(values, kinds[usable]), values,
                table.model_name[usable]),
            powers=powers,
            product_values={str(k): values[(kinds[usable] == k) & np.isfinite(values)] for k in powers},
            replicates=replicate_noise(table, keys, self._log_residuals(table)),
        )
        self.training_["intervals"] = {
            "folds": folds,
            "slope": self.intervals_.slope,
            "offset": self.intervals_.offset,
            "unseen_kind_widening": round(self.intervals_.unseen_kind, 4),
            "new_product_widening": {k: round(v, 4) for k, v in sorted(self.intervals_.new_product.items())},
            "new_product_reach": {k: round(v, 4) for k, v in sorted(self.intervals_.product_reach.items())},
            "measurement_noise": {level: round(v, 4) for level, v in self.intervals_.noise.items()},
            "replicate_noise": {level: round(v, 4) for level, v in self.intervals_.replicates.items()},
            "groups": sorted(self.intervals_.quantiles),
            "seconds": round(time.perf_counter() - start, 3),
        }
        return self

    def _log_residuals(self, table: TreeTable) -> np.ndarray:
        """``log(truth / prediction)`` of every node of ``table`` (NaN where either is not positive)."""
        energies, _ = self.predict_table(table)
        ok = (table.truth > 0) & (energies > 0)
        out = np.full(len(table), np.nan)
        out[ok] = np.log(table.truth[ok] / energies[ok])
        return out

    @staticmethod
    def _interval_novelty(table: TreeTable, novel: np.ndarray, distance: np.ndarray) -> np.ndarray:
        """``novel`` without the leaves outside their training ranges: new sizes of a trained kind, whose
        errors the size folds measure (its known quantiles plus the widening per log unit), not the
        folds by model (see :mod:`irene_core.predictor.uncertainty`)."""
        kept: np.ndarray = novel & ~(table.is_leaf & (distance > 0).any(axis=1))
        return kept

    def _ranges(self, table: TreeTable) -> Ranges:
        usable = table.is_leaf & (table.truth > 0)
        return Ranges.fit(table, usable, self._kinds(table))

    def _fit_point(self, table: TreeTable) -> None:
        self.intervals_ = self.calibration_ = None
        if not table.records:
            raise IreneError("no training records")
        missing = feature_gaps(self.config, table)
        self.feature_names_ = tuple(f for f, lacking in missing.items() if lacking == 0)
        if not self.feature_names_:
            raise IreneError(f"the training data has none of the '{self.config.features}' features on every node")
        X = self._matrix(table)
        truth = table.truth
        leaf = table.is_leaf
        usable = leaf & (truth > 0)
        self.leaves_ = LeafModels(
            self.feature_names_, {"method": self.config.leaf_method}, self.config.min_rows, self.config.below_range
        )
        leaf_report = self.leaves_.fit(X[usable], truth[usable], table.type[usable], table.model_name[usable])
        leaf_estimates = self._leaf_estimates(table, X)
        teacher = table.standing_in(leaf_estimates)  # a borrowed leaf's measurement is none of its own
        self.aggregator_ = make_aggregator(self.config)
        aggregator_report = self.aggregator_.fit(self._data(teacher, X), leaf_estimates)
        self.floors_ = fit_floors(teacher)
        devices = sorted({r.device for r in table.records if r.device})
        self.hardware_ = self.config.hardware or (", ".join(devices) if devices else "unknown hardware")
        self.training_ = {
            "fingerprint": artifacts.fingerprint(table),
            "code": artifacts.code_fingerprint(),
            "records": len(table.records),
            "models": sorted({r.model_name for r in table.records}),
            "dtypes": sorted({r.dtype for r in table.records}),
            "phases": sorted({r.phase for r in table.records}),
            "devices": devices,
            "nodes": {lv: int((table.level == lv).sum()) for lv in ("ml", "module", "model")},
            "skipped_nodes": {
                "no ground truth": int(np.isnan(truth).sum() - table.borrowed.sum()),
                "zero ground truth": int((truth == 0).sum()),
                "measured on other work": int(table.borrowed.sum()),
            },
            "dropped_features": {f: n for f, n in missing.items() if n},
            "absorbed_kinds": sorted({self.leaves_.canonical(t) for r in table.records
                                      for t in r.meta.get(ABSORBED_LEAVES, [])}),
            "leaves": leaf_report,
            "aggregator": aggregator_report,
        }

    # -- prediction -------------------------------------------------------------------------------
    def _matrix(self, table: TreeTable) -> np.ndarray:
        return table.features[:, [table.feature_names.index(f) for f in self.feature_names_]]

    def _canonical_kinds(self, table: TreeTable) -> np.ndarray:
        """Each leaf's own canonical primitive (``"module"`` for inner nodes), before any stand-in."""
        assert self.leaves_ is not None  # fitted
        kinds = np.full(len(table), "module", dtype=object)
        kinds[table.is_leaf] = self.leaves_.canonical_array(table.type[table.is_leaf])
        return kinds

    def _shape_keys(self, table: TreeTable) -> np.ndarray:
        """:func:`shape_keys` of every node by its own kind (a stand-in of the same computation is not a
        look-alike)."""
        return shape_keys(table, self._canonical_kinds(table))

    def _structure_keys(self, table: TreeTable) -> np.ndarray:
        """:func:`structure_keys` of every node, children counted as the aggregator counts them (a kind
        it takes for its parent's own work is not a child)."""
        assert self.aggregator_ is not None  # fitted
        kinds = self._kinds(table)
        return structure_keys(table, kinds, self.aggregator_.counted(table, kinds))

    def _kinds(self, table: TreeTable) -> np.ndarray:
        assert self.leaves_ is not None  # set by fit_table / load before anything is predicted
        kinds = np.full(len(table), "module", dtype=object)
        leaf = table.is_leaf
        kinds[leaf] = self.leaves_.kind_array(table.type[leaf])
        return kinds

    def _data(self, table: TreeTable, X: np.ndarray) -> NodeData:
        return NodeData(table, X, self.feature_names_, self._kinds(table))

    def _leaf_estimates(self, table: TreeTable, X: np.ndarray) -> np.ndarray:
        assert self.leaves_ is not None  # set by fit_table / load before anything is predicted
        leaf = table.is_leaf
        out = np.zeros(len(table))
        out[leaf] = self.leaves_.predict(X[leaf], table.type[leaf])  # untrained kinds: see annotate()
        return out

    def _absorbed(self, kinds: np.ndarray) -> list[str]:
        """The kinds the training trees kept in their parents' own work (``absorbed_kinds``: GELU in the
        paper's trees, as a trace of their models shows; a predictor trained before that was recorded:
        every known primitive of ``kinds`` no training tree had as a child)."""
        absorbed = self.training_.get("absorbed_kinds")
        if absorbed is not None:
            return list(absorbed)
        children = getattr(self.aggregator_, "kinds_", None)  # child kinds the own-ops aggregator saw
        registry = get_registry()
        return [k for k in set(kinds) if children is not None and k not in children
                and registry.find("primitive", k) is not None]

    def _check_features(self, table: TreeTable, X: np.ndarray) -> None:
        bad = np.isnan(X)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            record = table.records[table.record_index[i]]
            raise IreneError(
                f"{record.model_name} batch {record.batch_size} seq {record.seq_len}: node '{table.nodes[i].id}' "
                f"lacks the feature '{self.feature_names_[j]}' that this predictor (features={self.feature_set}) "
                f"needs; {int(bad.any(axis=1).sum())} node(s) lack features "
                "(use a predictor trained with fewer features)"
            )

    def raw_estimates(self, table: TreeTable, leaf_factors: np.ndarray | None = None) -> np.ndarray:
        """Every node's estimate from the leaf regressors and the aggregator, before the tree is
        made to add up; ``leaf_factors`` (one per node) scale the leaves' estimates the aggregator
        starts from (what the inner nodes would say were some leaves to cost that much more)."""
        if not self.is_fitted:
            raise IreneError("the predictor is not trained (call fit or load one)")
        assert self.aggregator_ is not None  # is_fitted
        X = self._matrix(table)
        self._check_features(table, X)
        data = self._data(table, X)
        leaves = self._leaf_estimates(table, X)
        raw = self.aggregator_.predict(data, leaves if leaf_factors is None else leaves * leaf_factors)
        if self.calibration_ is not None:
            raw = self.calibration_.apply(raw, table.level, self.calibration_groups(table, data.kinds,
                                                                                  self._structure_keys(table)))
        return raw

    def _stands_for(self) -> tuple[str, list[str], list[str], list[str]]:
        """``(how, dtypes, phases, devices)`` of the trees the predictor stands for: its device calibration's
        trees (``calibrated``), else its training data (``trained``; older predictors: the paper's float32
        forward, no device)."""
        calibration = self.training_.get("calibration") or {}
        how, source = ("calibrated", calibration) if "dtypes" in calibration else ("trained", self.training_)
        dtypes, phases, devices = ([str(v) for v in source.get(key, default)] for key, default in
                                   (("dtypes", ["float32"]), ("phases", ["forward"]), ("devices", [])))
        return how, dtypes, phases, devices

    def _reads_measurements(self) -> bool:
        """Whether the predictor reads what a run measured (times, utilisations, GPU energy): those
        of another device are not its own device's."""
        return any(f in RESOURCE_FEATURES for f in self.feature_names_)

    def _unseen_settings(self, table: TreeTable, dtypes: list[str], phases: list[str],
                         devices: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per record: whether its dtype or phase is none of ``dtypes`` and ``phases`` (those of the trees the
        predictor stands for, :meth:`_stands_for`), and whether it was measured on another device than
        theirs, ``devices``, while the predictor reads its measurements."""
        setting = np.array([r.dtype not in dtypes or r.phase not in phases for r in table.records], dtype=bool)
        reads = bool(devices) and self._reads_measurements()
        device = np.array([reads and r.device is not None and r.device not in devices for r in table.records],
                          dtype=bool)
        return setting, device

    @staticmethod
    def _groups(table: TreeTable, kinds: np.ndarray) -> np.ndarray:
        return np.array([interval_group(lv, k) for lv, k in zip(table.level, kinds, strict=True)], dtype=object)

    def calibration_groups(self, table: TreeTable, kinds: np.ndarray, structures: np.ndarray) -> np.ndarray:
        """The group of each node's device correction: its kind at ml level, else its level and its structure
        (``structures``: :meth:`_structure_keys`)."""
        groups = self._groups(table, kinds)
        inner = ~table.is_leaf
        groups[inner] = [f"{lv}:{k}" for lv, k in zip(table.level[inner], structures[inner], strict=True)]
        return groups

    def annotate(self, table: TreeTable, energies: np.ndarray, own: np.ndarray) -> Annotations:
        """Intervals, extrapolation flags and notices for the predictions ``(energies, own)`` of ``table``."""
        kinds = self._kinds(table)
        leaf = table.is_leaf
        assert self.leaves_ is not None and self.aggregator_ is not None  # fitted
        generic = leaf & ~np.isin(kinds, list(self.leaves_.entries))  # predicted by the generic regressor
        absorbed = generic & np.isin(kinds, self._absorbed(kinds[generic]))  # its parent's own work in training
        untrained = generic & ~absorbed  # flagged and noticed
        own_kind = self._canonical_kinds(table)
        stand_in = leaf & ~untrained & (own_kind != kinds)  # predicted as a primitive of the same computation
        distance, share = (self.intervals_.ranges.node_extent(table, kinds, energies) if self.intervals_
                           else (np.zeros((len(table), 2)),) * 2)
        outside = leaf & (distance > 0).any(axis=1)
        how, dtypes, phases, devices = self._stands_for()
        setting, device = self._unseen_settings(table, dtypes, phases, devices)
        unseen = (setting | device)[table.record_index] if len(table.records) else np.zeros(len(table), dtype=bool)
        extrapolated = (propagate_up(table, (untrained | stand_in | outside).astype(float)) > 0) | unseen
        foreign = np.zeros(len(table), dtype=bool)  # novel inner nodes of a structure training lacks
        new_family = np.zeros(len(table), dtype=bool)  # novel nodes of a family training lacks
        beyond_calibration = np.zeros(len(table), dtype=bool)  # leaves outside a calibration's sizes
        uncalibrated = np.zeros(len(table), dtype=bool)  # inner nodes of a structure a calibration lacks
        widening = np.zeros(len(table), dtype=bool)  # leaves of a kind whose guess widens the nodes above them
        new_product = np.zeros(len(table), dtype=bool)  # leaves of a product no training leaf had
        if self.intervals_ is None:  # a predictor saved before intervals existed: no interval
            low, high, own_low, own_high = (np.full(len(table), np.nan) for _ in range(4))
        else:
            sources = self.intervals_.sources_of(shape_keys(table, own_kind))
            novel = layered(table, sources == 0)
            structures = self._structure_keys(table)
            foreign = novel & self.intervals_.foreign(structures, table.level)
            # a novel node that costs its children's sum errs as they do: as a structure training lacks
            # where they mostly are one
            summed = novel & self.intervals_.measures_foreign(table.level) & self.aggregator_.sums_children(
                self._data(table, self._matrix(table)))
            new_family = novel & self.intervals_.new_family(table.family)
            groups = interval_groups(table.level, kinds, self._interval_novelty(table, novel, distance),
                                     through_sums(table, foreign, summed, energies), new_family,
                                     leaf & (sources == 1))
            own_levels = np.full(len(table), "ml", dtype=object)
            beyond = np.zeros((2, len(table)))  # widening beyond a calibration's data, nodes then own ops
            if self.calibration_ is not None:
                calibration_distance = self.calibration_.outside(table, kinds)
                beyond = np.stack([self.calibration_.widening(table.level, calibration_distance, kinds),
                                   self.calibration_.widening(own_levels, calibration_distance)])
                structure_margins = self.calibration_.unmeasured_structures(
                    table.level, self.calibration_groups(table, kinds, structures))
                uncalibrated = structure_margins > 0
                # the modules of one such structure share one error, which the nodes above them do not average out
                beyond[0] += propagate_up(table, structure_margins)
                beyond_calibration = leaf & (calibration_distance > 0).any(axis=1)
                generic &= ~self.calibration_.measured(kinds)  # a kind the target measured: bounded by that
            beyond[0, generic] += self.intervals_.unseen_kind
            # a leaf of a new product: at least the width its kind's held-out products needed
            margins = np.where(leaf & ~untrained, self.intervals_.product_margins(table, kinds), 0.0)
            new_product = margins > 0
            side = np.zeros((len(table), 2))  # the leaves' widening each way, which bounds their ancestors' offsets
            side[leaf] = self.intervals_.side_widening(table.level[leaf], groups[leaf], distance[leaf])
            cap = offset_caps(table, energies, side)
            low, high = self.intervals_.bounds(energies, table.level, groups, distance, beyond[0], cap, share, margins)
            readings = np.ones((2, len(table)))
            readings[:, leaf] = self.leaves_.reading_shares(self._matrix(table)[leaf], table.type[leaf])
            low, high = spanning_readings(table, energies, low, high, *readings)
            widening = generic & ~absorbed
            biases = [np.where(widening & (kinds == name), self.intervals_.unseen_kind, 0.0)
                      for name in sorted(set(kinds[widening]))]
            biases += [np.where(new_product & (kinds == name), margins, 0.0)
                       for name in sorted(set(kinds[new_product]))]
            low, high = spanning_unseen_kinds(table, energies, low, high, *self._bias_shifts(table, energies, biases))
            if self.leaves_.floor is not None:  # a leaf at 0 J runs no kernel: at most the device's smallest one
                high = np.where(leaf & (energies <= 0), np.maximum(high, self.leaves_.floor), high)
            own_low, own_high = self.intervals_.bounds(
                own, own_levels, interval_groups(own_levels, np.full(len(table), OWN_OPS_TYPE, dtype=object), novel),
                distance, beyond[1], cap, share,
            )
        notices: list[list[Notice]] = [[] for _ in table.records]
        for kind in sorted(set(kinds[untrained])):
            widened = "; the intervals above it widened" if widening[kinds == kind].any() else ""
            _notify(notices, table, untrained & (kinds == kind),
                    f"no trained regressor for primitive '{kind}': predicted by the generic regressor "
                    f"(extrapolated{widened})")
        for kind, same in sorted(set(zip(own_kind[stand_in], kinds[stand_in], strict=True))):
            _notify(notices, table, stand_in & (own_kind == kind),
                    f"no training leaves of primitive '{kind}': predicted as '{same}', which performs the same "
                    "computation (extrapolated)")
        for r in map(int, np.flatnonzero(setting)):
            record = table.records[r]
            notices[r].append(Notice(
                source=NOTICE_SOURCE,
                message=f"{how} on {'/'.join(dtypes)} {'/'.join(phases)} trees only: this {record.dtype} "
                f"{record.phase} tree is extrapolated",
            ))
        for r in map(int, np.flatnonzero(device)):
            notices[r].append(Notice(
                source=NOTICE_SOURCE,
                message=f"{how} on trees measured on {', '.join(devices)}: this tree's times and utilisations "
                f"were measured on {table.records[r].device}, and its figures are neither device's (extrapolated; "
                "`irene calibrate` adapts the predictor to this device)",
            ))
        _notify(notices, table, outside, lambda rows: (
            f"{len(rows)} leaf node(s) outside the training range of batch, seq, flops or bytes "
            f"({describe_extrapolation(kinds[rows])}): extrapolated, intervals widened"
        ))
        _notify(notices, table, new_product, lambda rows: (
            f"{len(rows)} leaf node(s) of a product no training leaf had ({describe_extrapolation(kinds[rows])}, "
            "another width, or another work per token): intervals widened by how the kind erred on products held out, "
            "the nodes above too"
        ))
        _notify(notices, table, beyond_calibration, lambda rows: (
            f"{len(rows)} leaf node(s) outside the sizes of the device calibration's trees "
            f"({describe_extrapolation(kinds[rows])}): intervals widened"
        ))
        _notify(notices, table, uncalibrated, lambda rows: (
            f"{len(rows)} inner node(s) of a structure the device calibration's trees lack "
            f"({describe_extrapolation(table.type[rows])}): their level's correction, intervals widened, the nodes "
            "above too"
        ))
        _notify(notices, table, foreign, lambda rows: (
            f"{len(rows)} module(s) of a structure no training tree had ({describe_extrapolation(table.type[rows])}): "
            "own work estimated from other structures, intervals widened"
        ))
        _notify(notices, table, new_family & (table.level == "model"), lambda rows: (
            f"a model of a family no training tree had ({table.family[rows[0]]}): "
            "it errs as its new blocks do, interval widened"
        ))
        trained = self.training_.get("models", [])
        if len(trained) == 1:
            for r in (r for r, record in enumerate(table.records) if record.model_name != trained[0]):
                notices[r].append(Notice(
                    source=NOTICE_SOURCE,
                    message=f"trained on one model ({trained[0]}): the intervals hold how its own runs varied, "
                    "not how another model differs from it",
                ))
        if self.calibration_ is not None and len(self.calibration_.trees) == 1:
            tree = self.calibration_.trees[0]
            for r in (r for r, record in enumerate(table.records) if record.key.describe() != tree):
                notices[r].append(Notice(
                    source=NOTICE_SOURCE,
                    message=f"calibrated on one tree ({tree}): the intervals hold how its nodes lay and how much the "
                    "training trees' runs differed, not how much this device's do (calibrate on 2–3 trees)",
                ))
        return Annotations(low, high, own_low, own_high, extrapolated, notices)

    def _bias_shifts(self, table: TreeTable, energies: np.ndarray,
                     biases: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(up, down)``, one column per bias of ``biases``: each a log margin ``m`` per node (0 outside
        it) of leaves that may all be off one way at once (a kind predicted by the generic regressor, ``m``
        the margin of a new kind; a kind's leaves of products training lacked, each ``m`` its product's
        width), how far each node's energy may lie above and below its estimate ``energies`` were those
        leaves to cost ``e^m`` times their estimate or ``e^−m`` of it, the larger of what they add to it
        and how far the predictor's own estimate moves (see
        :func:`~irene_core.predictor.uncertainty.spanning_unseen_kinds`)."""
        up, down = np.zeros((len(table), len(biases))), np.zeros((len(table), len(biases)))
        for column, margin in enumerate(biases):
            held = np.where(margin > 0, np.clip(energies, 0.0, None), 0.0)
            # a baseline's margin may overflow (the log-ridge's: hundreds of log units): its nodes move by
            # inf or nan, which fmax leaves to the other reading
            with np.errstate(invalid="ignore", over="ignore"):
                moved = [self.predict_table(table, np.exp(sign * margin))[0] - energies for sign in (1.0, -1.0)]
                above, below = (leaf_sum(table, np.where(held > 0, held * np.expm1(sign * margin), 0.0))
                                for sign in (1.0, -1.0))
                up[:, column] = np.fmax.reduce([*moved, above])
                down[:, column] = np.fmax.reduce([*(-m for m in moved), -below])
        return up, down

    def predict_table(self, table: TreeTable, leaf_factors: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(energies, own_ops)`` for every node of ``table``; energies add up, own ops down to the floors
        training measured (:mod:`irene_core.predictor.reconcile`); ``leaf_factors``: see :meth:`raw_estimates`."""
        floor = floor_per_node(table, self.floors_)
        return reconcile(table, self.raw_estimates(table, leaf_factors), self.config.reconcile, floor)

    def predict(self, records: Sequence[TreeRecord]) -> list[TreeRecord]:
        """Deep copies of ``records`` with ``predicted_energy``, its 90 % interval and ``extrapolated``
        on every node, an ``OwnOps`` pseudo-child on every inner node (existing OwnOps children are
        replaced), and the predictor's notices in ``notices`` (earlier predictor notices replaced)."""
        records = list(records)
        table = TreeTable.from_records(records)
        energies, own = self.predict_table(table)
        notes = self.annotate(table, energies, own)
        out: list[TreeRecord] = []
        row = 0
        meta = {"hardware": self.hardware, "features": self.feature_set, "aggregator": self.config.aggregator}
        for record in records:
            copy = record.model_copy(deep=True)
            taken = {n.id for n in copy.nodes()}
            for node, _, _ in list(preorder(copy.root)):
                node.children = [c for c in node.children if not c.synthetic]
                node.predicted_energy = float(energies[row])
                node.predicted_low, node.predicted_high = _finite(notes.low[row]), _finite(notes.high[row])
                node.extrapolated = bool(notes.extrapolated[row])
                if node.children:
                    own_id = unique_id(node.scope, OWN_OPS_TYPE, taken)
                    node.children.append(
                        Node(
                            id=own_id,
                            scope=node.scope,
                            type=OWN_OPS_TYPE,
                            level="ml",
                            synthetic=True,
                            predicted_energy=float(own[row]),
                            predicted_low=_finite(notes.own_low[row]),
                            predicted_high=_finite(notes.own_high[row]),
                            extrapolated=node.extrapolated,
                        )
                    )
                row += 1
            copy.meta = {**copy.meta, "prediction": meta}
            copy.notices = [n for n in copy.notices if n.source != NOTICE_SOURCE] + notes.notices[len(out)]
            out.append(copy)
        return out

    # -- artifacts --------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        if not self.is_fitted:
            raise IreneError("the predictor is not trained: nothing to save")
        assert self.leaves_ is not None and self.aggregator_ is not None  # is_fitted (leaves_ are set first)
        payload = {
            "irene_version": __version__,
            "config": self.config.model_dump(),
            "feature_names": list(self.feature_names_),
            "hardware": self.hardware_,
            "training": self.training_,
            "leaves": self.leaves_.get_state(),
            "aggregator": {"name": self.config.aggregator, "state": self.aggregator_.get_state()},
            "intervals": None if self.intervals_ is None else self.intervals_.get_state(),
            "calibration": None if self.calibration_ is None else self.calibration_.get_state(),
            "reconcile_floors": self.floors_,
            "power_terms": POWER_TERMS_REVISION,
        }
        return artifacts.save(directory, payload)

    @classmethod
    def load(cls, directory: str | Path) -> Predictor:
        payload = artifacts.load(directory)
        where = Path(directory) / artifacts.MANIFEST
        try:
            predictor = cls({"below_range": "regressor", **payload["config"]})  # absent: saved before the rule
            predictor.feature_names_ = tuple(payload["feature_names"])
            revision = payload.get("power_terms", 1)  # absent: saved before the revisions were counted
            if revision != POWER_TERMS_REVISION and power_terms_changed(predictor.feature_names_):
                raise IreneError(
                    f"its physical power model is revision {revision}, this IrEne's is {POWER_TERMS_REVISION} "
                    "(host memory occupancy left out): train it again with `irene train`"
                )
            predictor.hardware_ = payload["hardware"]
            predictor.training_ = payload["training"]
            predictor.leaves_ = LeafModels.from_state(predictor.feature_names_, payload["leaves"])
            predictor.aggregator_ = make_aggregator(predictor.config).set_state(payload["aggregator"]["state"])
            intervals, calibration = payload.get("intervals"), payload.get("calibration")
            predictor.intervals_ = None if intervals is None else IntervalModel.from_state(intervals)
            predictor.calibration_ = None if calibration is None else DeviceCalibration.from_state(calibration)
            floors = payload.get("reconcile_floors") or {}  # absent before floors: own ops >= 0
            predictor.floors_ = {str(level): float(rho) for level, rho in floors.items()}
        except IreneError as exc:
            raise IreneError(f"{where}: {exc}") from None
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise IreneError(f"{where}: incomplete or inconsistent predictor ({type(exc).__name__}: {exc})") from None
        return predictor


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def reference_features() -> list[str]:
    """Feature sets of the reference predictors shipped with IrEne."""
    return (
        sorted(p.name for p in REFERENCE_DIR.iterdir() if (p / artifacts.MANIFEST).is_file())
        if REFERENCE_DIR.is_dir()
        else []
    )


def load_reference_predictor(features: str = "model") -> Predictor:
    """A predictor shipped with IrEne, trained on the paper's device_1 data (see
    ``scripts/train_reference_predictors.py``); ``features`` is ``"model"`` or ``"all"``."""
    available = reference_features()
    if features not in available:
        raise IreneError(
            f"no reference predictor with features '{features}' (shipped: {', '.join(available) or 'none'}; "
            "run `make reference-predictors`)"
        )
    return Predictor.load(REFERENCE_DIR / features)


def shipped_predictors() -> list[str]:
    """The names that :func:`load_predictor` reads as shipped predictors, not directories."""
    return [REFERENCE, *reference_features()]


def load_predictor(spec: str | None = None, flag: str = "--predictor") -> Predictor:
    """The predictor a user names: none or ``reference``, the shipped model-features one; the name of a
    shipped one (``model``, ``all``: :func:`reference_features`); else a predictor directory (one named
    like a shipped predictor is given as ``./model``).  A bad name or directory is one
    :class:`~irene_core.errors.IreneError` naming ``flag``."""
    name = "model" if spec is None or spec == REFERENCE else spec
    if name in reference_features():
        return load_reference_predictor(name)
    if not Path(name).is_dir():
        raise IreneError(f"{flag} {name}: neither a shipped predictor ({', '.join(shipped_predictors())}) "
                         "nor a predictor directory")
    try:
        return Predictor.load(name)
    except IreneError as exc:
        raise IreneError(f"{flag} {name}: {exc}") from None


def predict(
    records: TreeRecord | Iterable[TreeRecord] | TracedModel, predictor: Predictor | None = None
) -> list[TreeRecord]:
    """Predicted copies of ``records`` — one :class:`TreeRecord`, an iterable of them, or a traced
    model (anything with a ``.record``) — by ``predictor`` (default: the shipped reference predictor
    with model features, trained on the paper's device_1); see :meth:`Predictor.predict`."""
    if isinstance(records, TreeRecord):
        batch = [records]
    elif hasattr(records, "record"):
        batch = [records.record]
    else:
        batch = list(records)
    return (predictor or load_reference_predictor("model")).predict(batch)
