"""The energy predictor (public API): fit on measured trees, predict every node of new trees.

>>> p = Predictor(features="model").fit(records)          # doctest: +SKIP
>>> predicted = p.predict(new_records)                      # doctest: +SKIP

``predict`` returns deep copies with ``predicted_energy`` on every node; every inner node gets a
synthetic ``OwnOps`` child (level ``ml``) holding what the node spends beyond its children, so a
parent equals the sum of its children exactly and energy shares sum to 100 %.  The pipeline:
per-primitive regressors at the leaves (:mod:`irene_core.predictor.leaf_models`), an aggregator for inner
nodes (:mod:`irene_core.predictor.aggregators.base`), then :mod:`irene_core.predictor.reconcile`.
See docs/predictor.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from irene_core._version import __version__
from irene_core.errors import IreneError
from irene_core.predictor import artifacts
from irene_core.predictor.aggregators import Aggregator, NodeData, make_aggregator
from irene_core.predictor.config import PredictorConfig, load_config
from irene_core.predictor.design import feature_names
from irene_core.predictor.leaf_models import LeafModels
from irene_core.predictor.reconcile import reconcile
from irene_core.tree.schema import OWN_OPS_TYPE, Node, TreeRecord, unique_id
from irene_core.tree.table import TreeTable, preorder

if TYPE_CHECKING:
    from irene_core.tracing.framework import TracedModel

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"


class Predictor:
    """scikit-learn style: plain parameters (a :class:`PredictorConfig`), ``fit``, ``predict``."""

    def __init__(self, config: PredictorConfig | dict[str, Any] | str | Path | None = None, **overrides: Any):
        self.config = load_config(config, **overrides)
        self.feature_names_: tuple[str, ...] = ()
        self.leaves_: LeafModels | None = None
        self.aggregator_: Aggregator | None = None
        self.hardware_: str = "unknown hardware"
        self.training_: dict[str, Any] = {}

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
        if not table.records:
            raise IreneError("no training records")
        wanted = tuple(f for f in feature_names(self.config.features) if f not in self.config.exclude_features)
        missing = {f: int(np.isnan(table.column(f)).sum()) for f in wanted}
        self.feature_names_ = tuple(f for f in wanted if missing[f] == 0)
        if not self.feature_names_:
            raise IreneError(f"the training data has none of the '{self.config.features}' features on every node")
        X = self._matrix(table)
        truth = table.truth
        leaf = table.is_leaf
        usable = leaf & (truth > 0)
        self.leaves_ = LeafModels(self.feature_names_, {"method": self.config.leaf_method}, self.config.min_rows)
        leaf_report = self.leaves_.fit(X[usable], truth[usable], table.type[usable], table.model_name[usable])
        leaf_estimates = self._leaf_estimates(table, X, warn=False)
        self.aggregator_ = make_aggregator(self.config)
        aggregator_report = self.aggregator_.fit(self._data(table, X), leaf_estimates)
        devices = sorted({r.device for r in table.records if r.device})
        self.hardware_ = self.config.hardware or (", ".join(devices) if devices else "unknown hardware")
        self.training_ = {
            "fingerprint": artifacts.fingerprint(table),
            "records": len(table.records),
            "models": sorted({r.model_name for r in table.records}),
            "nodes": {lv: int((table.level == lv).sum()) for lv in ("ml", "module", "model")},
            "skipped_nodes": {
                "no ground truth": int(np.isnan(truth).sum()),
                "zero ground truth": int((truth == 0).sum()),
            },
            "dropped_features": {f: n for f, n in missing.items() if n},
            "leaves": leaf_report,
            "aggregator": aggregator_report,
        }
        return self

    # -- prediction -------------------------------------------------------------------------------
    def _matrix(self, table: TreeTable) -> np.ndarray:
        return table.features[:, [table.feature_names.index(f) for f in self.feature_names_]]

    def _kinds(self, table: TreeTable) -> np.ndarray:
        assert self.leaves_ is not None  # set by fit_table / load before anything is predicted
        kinds = np.full(len(table), "module", dtype=object)
        leaf = table.is_leaf
        kinds[leaf] = self.leaves_.canonical_array(table.type[leaf])
        return kinds

    def _data(self, table: TreeTable, X: np.ndarray) -> NodeData:
        return NodeData(table, X, self.feature_names_, self._kinds(table))

    def _leaf_estimates(self, table: TreeTable, X: np.ndarray, warn: bool) -> np.ndarray:
        assert self.leaves_ is not None  # set by fit_table / load before anything is predicted
        leaf = table.is_leaf
        out = np.zeros(len(table))
        out[leaf] = self.leaves_.predict(X[leaf], table.type[leaf], warn=warn)
        return out

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

    def raw_estimates(self, table: TreeTable) -> np.ndarray:
        """Every node's estimate from the leaf regressors and the aggregator, before the tree is
        made to add up."""
        if not self.is_fitted:
            raise IreneError("the predictor is not trained (call fit or load one)")
        assert self.aggregator_ is not None  # is_fitted
        X = self._matrix(table)
        self._check_features(table, X)
        leaf_estimates = self._leaf_estimates(table, X, warn=True)
        return self.aggregator_.predict(self._data(table, X), leaf_estimates)

    def predict_table(self, table: TreeTable) -> tuple[np.ndarray, np.ndarray]:
        """``(energies, own_ops)`` for every node of ``table``; energies add up."""
        return reconcile(table, self.raw_estimates(table), self.config.reconcile)

    def predict(self, records: Sequence[TreeRecord]) -> list[TreeRecord]:
        """Deep copies of ``records`` with ``predicted_energy`` on every node and an ``OwnOps``
        pseudo-child on every inner node (existing OwnOps children are replaced)."""
        records = list(records)
        table = TreeTable.from_records(records)
        energies, own = self.predict_table(table)
        out, row = [], 0
        meta = {"hardware": self.hardware, "features": self.feature_set, "aggregator": self.config.aggregator}
        for record in records:
            copy = record.model_copy(deep=True)
            taken = {n.id for n in copy.nodes()}
            for node, _, _ in list(preorder(copy.root)):
                node.children = [c for c in node.children if not c.synthetic]
                node.predicted_energy = float(energies[row])
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
                        )
                    )
                row += 1
            copy.meta = {**copy.meta, "prediction": meta}
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
        }
        return artifacts.save(directory, payload)

    @classmethod
    def load(cls, directory: str | Path) -> Predictor:
        payload = artifacts.load(directory)
        where = Path(directory) / artifacts.MANIFEST
        try:
            predictor = cls(payload["config"])
            predictor.feature_names_ = tuple(payload["feature_names"])
            predictor.hardware_ = payload["hardware"]
            predictor.training_ = payload["training"]
            predictor.leaves_ = LeafModels.from_state(predictor.feature_names_, payload["leaves"])
            predictor.aggregator_ = make_aggregator(predictor.config).set_state(payload["aggregator"]["state"])
        except IreneError as exc:
            raise IreneError(f"{where}: {exc}") from None
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise IreneError(f"{where}: incomplete or inconsistent predictor ({type(exc).__name__}: {exc})") from None
        return predictor


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
