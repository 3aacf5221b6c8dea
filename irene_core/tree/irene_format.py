"""The original IrEne release's record layout (schema v1): read, and written for the original code.

Each line is ``{"model_name", "batch_size", "seq_len", "frontend_tree"}``, whose nodes carry ``id``,
``scope``, ``parent_name``, ``level`` (depth), ``instance_type`` (class or op name), ``type`` (model |
module | ml), feature keys at the top level, ``ground_truth_energy``, ``predicted_energy``,
``child_nodes_obj`` and ``child_nodes``.  IrEne 0.1 wrote this layout with ``schema_version: 1``,
``device``, ``meta`` and ``synthetic`` added; files of the original project and of IrEne 0.1 read
here unchanged.  Reading v1 is lenient as v1 was: every other numeric node key is a feature.

:class:`OriginalExport` writes records so that the original code (StonyBrookNLP/irene: ``train.py``,
``predict.py``, ``evaluate.py``) reads and scores them; see docs/data-format.md for what it needs.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from irene_core.errors import IreneError
from irene_core.tree.atomic import dataset_write
from irene_core.tree.schema import Node, RecordKey, TreeRecord

#: Node keys of the layout that are not features.
NODE_KEYS = frozenset({
    "id", "irene_id", "scope", "parent_name", "level", "instance_type", "type", "ground_truth_energy",
    "predicted_energy", "child_nodes_obj", "child_nodes", "synthetic", "level_name",
})
#: Key fields of a record beyond the release's three that v1 lines may carry at the top level.
RECORD_EXTRAS = ("phase", "context_len", "dtype")

#: Features the original code indexes on every node with its default feature sets (``batch_size``,
#: ``seq_len`` and ``input_size`` it takes from the record).
ORIGINAL_FEATURES = (
    "num_parameters", "flops", "mem_bytes", "cpu", "mem", "gpu", "gpu_mem", "gpu_clk", "gpu_mem_clk",
    "times_mean", "gpu_energy_mean",
)
#: What the export writes for a feature a node lacks: a column that is 0 everywhere carries no
#: information after the original's standardisation, and a CPU-only run's GPU use is 0.
FILL_VALUE = 0.0
#: Leaf ``instance_type`` values (lower-cased, as it compares them) the original has a regressor for.
ORIGINAL_OPS = frozenset({"embedding", "layernorm", "linear", "tanh", "conv1d", "softmax", "matmul"})


def _scope(raw: str) -> str:
    """The original release writes scopes as ``root.x.y``; ours are ``x.y`` ('' for the model)."""
    if raw == "root":
        return ""
    return raw[5:] if raw.startswith("root.") else raw


def _energy(value: Any, what: str, non_negative: bool) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value) or (non_negative and value < 0):
        raise ValueError(f"{what} must be a finite number{' >= 0' if non_negative else ''}, got {value!r}")
    return float(value)


def node_from_v1(data: Any, path: str = "frontend_tree") -> Node:
    """A node (and its subtree) from the release layout; ``irene_id`` (written by the export) is the id."""
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a node must be a JSON object")
    for key in ("id", "scope", "instance_type", "type"):
        if key not in data:
            raise ValueError(f"{path}: missing field '{key}'")
    level = "ml" if data["type"] == "ml-np" else data["type"]
    features = {}
    for key, value in data.items():
        if key in NODE_KEYS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(value):
            raise ValueError(f"{path} ({data['id']}): feature '{key}' is {value}")
        features[key] = float(value)
    children = data.get("child_nodes_obj") or []
    if not isinstance(children, list):
        raise ValueError(f"{path}: 'child_nodes_obj' must be a list")
    node_id = str(data.get("irene_id", data["id"]))
    return Node(
        id=node_id,
        scope=_scope(str(data["scope"])),
        type=str(data["instance_type"]),
        level=level,
        features=features,
        ground_truth_energy=_energy(data.get("ground_truth_energy"), f"{path} ({node_id}): ground_truth_energy", True),
        predicted_energy=_energy(data.get("predicted_energy"), f"{path} ({node_id}): predicted_energy", False),
        synthetic=bool(data.get("synthetic", False)),
        children=[node_from_v1(c, f"{path}.{i}") for i, c in enumerate(children)],
    )


def record_from_v1(data: dict[str, Any]) -> TreeRecord:
    """A record from the release layout; v1 keeps the attention implementation in ``meta``."""
    for key in ("model_name", "batch_size", "seq_len", "frontend_tree"):
        if key not in data:
            raise ValueError(f"missing field '{key}'")
    meta = data.get("meta") or {}
    if not isinstance(meta, dict):
        raise ValueError("'meta' must be a JSON object")
    return TreeRecord(
        model_name=data["model_name"],
        batch_size=int(data["batch_size"]),
        seq_len=int(data["seq_len"]),
        **{key: data[key] for key in RECORD_EXTRAS if data.get(key) is not None},
        attention=str(meta.get("attention", "eager")),
        device=data.get("device"),
        meta=meta,
        root=node_from_v1(data["frontend_tree"]),
    )


def tagged_id(tag: str | None, node_id: str) -> str:
    """A node id made unique across a file: ``tag|id`` (just ``id`` without a tag)."""
    return node_id if tag is None else f"{tag}|{node_id}"


def node_to_v1(node: Node, parent_scope: str | None = None, depth: int = 0, tag: str | None = None) -> dict[str, Any]:
    """A node (and its subtree) in the release layout; with a ``tag``, ids are :func:`tagged_id` and
    ``irene_id`` keeps the record's own id."""
    out: dict[str, Any] = {
        "id": tagged_id(tag, node.id),
        **({} if tag is None else {"irene_id": node.id}),
        "scope": node.scope,
        "parent_name": parent_scope,
        "level": depth,
        "instance_type": node.type,
        "type": node.level,
        **node.features,
        "ground_truth_energy": node.ground_truth_energy,
        "predicted_energy": node.predicted_energy,
    }
    if node.synthetic:
        out["synthetic"] = True
    out["child_nodes_obj"] = [node_to_v1(c, node.scope, depth + 1, tag) for c in node.children]
    out["child_nodes"] = [c.scope for c in node.children]
    return out


def record_tag(key: RecordKey) -> str:
    """``model|b8|s32`` plus the key fields that differ from their defaults (``|decode|ctx128|device_1``)."""
    defaults = RecordKey._field_defaults
    extras = [
        f"ctx{value}" if name == "context_len" else str(value)
        for name, value in key._asdict().items()
        if name in defaults and value != defaults[name]
    ]
    return "|".join([key.model, f"b{key.batch_size}", f"s{key.seq_len}", *extras])


@dataclass
class OriginalExport:
    """Records → lines the original IrEne code reads and scores, counting what had to change.

    Per record: ``OwnOps`` pseudo-nodes are dropped (never measured: its evaluation and training need
    a ground truth on every node, and its model has no place for them); a childless node is written
    as ``ml`` (its reader asserts that leaves are); features of :data:`ORIGINAL_FEATURES` a node lacks
    are written as :data:`FILL_VALUE`; ids become ``record_tag|id`` (its evaluation and training key
    nodes by id across the whole file), with ``irene_id`` keeping ours for reading back.
    """

    records: int = 0
    dropped_synthetic: int = 0
    leaves_typed_ml: int = 0
    filled: Counter[str] = field(default_factory=Counter)
    untrained_ops: Counter[str] = field(default_factory=Counter)
    without_truth: int = 0
    _ids: set[str] = field(default_factory=set, init=False, repr=False)

    def _prepare(self, node: Node) -> None:
        """Drop pseudo-children, type leaves ``ml``, fill features, counting each; changes ``node`` (a copy)."""
        real = node.real_children()
        self.dropped_synthetic += len(node.children) - len(real)
        node.children = real
        if not real:
            if node.level != "ml":
                self.leaves_typed_ml += 1
                node.level = "ml"
            if node.type.lower() not in ORIGINAL_OPS:
                self.untrained_ops[node.type.lower()] += 1
        for name in ORIGINAL_FEATURES:
            if name not in node.features:
                node.features[name] = FILL_VALUE
                self.filled[name] += 1
        if not node.ground_truth_energy:
            self.without_truth += 1
        for child in real:
            self._prepare(child)

    def line(self, record: TreeRecord) -> dict[str, Any]:
        """One record in the original layout; IreneError if the original could not read it."""
        what = record.key.describe()
        root = record.root.model_copy(deep=True)
        self._prepare(root)
        if root.level != "model":
            raise IreneError(f"{what}: the model node has no children (the original code needs every leaf typed ml)")
        tag = record_tag(record.key)
        for node in root.walk():
            node_id = tagged_id(tag, node.id)
            if node_id in self._ids:
                raise IreneError(f"{what}: node id '{node_id}' is not unique in the file (two records with one key?)")
            self._ids.add(node_id)
        self.records += 1
        meta = record.meta
        if record.attention != meta.get("attention", "eager"):  # v1 keeps the attention implementation in meta
            meta = {**meta, "attention": record.attention}
        return {
            "schema_version": 1,
            "model_name": record.model_name,
            "batch_size": record.batch_size,
            "seq_len": record.seq_len,
            **{key: getattr(record, key) for key in RECORD_EXTRAS},
            "device": record.device,
            "meta": meta,
            "frontend_tree": node_to_v1(root, tag=tag),
        }

    def write(self, path: str | os.PathLike[str], records: Iterable[TreeRecord]) -> int:
        """Write all records atomically under the dataset lock; returns the count."""
        with dataset_write(path) as handle:
            for record in records:
                handle.write(json.dumps(self.line(record), separators=(",", ":"), allow_nan=False) + "\n")
        return self.records

    def notes(self) -> list[str]:
        """One line for each thing a user of the original code should know about this file."""
        out = []
        if self.filled:
            filled = ", ".join(f"{name} ×{n}" for name, n in sorted(self.filled.items()))
            out.append(f"features the data lacks were written as {FILL_VALUE:g} "
                       f"(the original code reads them on every node): {filled}")
        if self.untrained_ops:
            ops = ", ".join(f"{op} ×{n}" for op, n in sorted(self.untrained_ops.items()))
            out.append(f"the original code has no regressor for leaves of type {ops}: "
                       "its train.py and predict.py stop on them (evaluate.py scores them)")
        if self.without_truth:
            out.append(f"{self.without_truth} nodes have no positive ground truth: the original's train.py and "
                       "evaluate.py need one on every node (predict.py does not)")
        return out
