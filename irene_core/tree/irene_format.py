"""The original IrEne release's record layout (schema v1): read, and written for the original code.

Each line is ``{"model_name", "batch_size", "seq_len", "frontend_tree"}``, whose nodes carry ``id``,
``scope``, ``parent_name``, ``level`` (depth), ``instance_type`` (class or op name), ``type`` (model |
module | ml), feature keys at the top level, ``ground_truth_energy``, ``predicted_energy``,
``child_nodes_obj`` and ``child_nodes``.  IrEne 0.1 wrote this layout with ``schema_version: 1``,
``device``, ``meta`` and ``synthetic`` added; files of the original project and of IrEne 0.1 read
here unchanged.  Reading v1 is lenient as v1 was: every other numeric node key is a feature.
"""

from __future__ import annotations

import math
from typing import Any

from irene_core.tree.schema import Node, TreeRecord

#: Node keys of the layout that are not features.
NODE_KEYS = frozenset({
    "id", "scope", "parent_name", "level", "instance_type", "type", "ground_truth_energy", "predicted_energy",
    "child_nodes_obj", "child_nodes", "synthetic", "level_name",
})


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
    """A node (and its subtree) from the release layout."""
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
    node_id = str(data["id"])
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
    """A record from the release layout; v1 kept the attention implementation in ``meta``."""
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
        attention=str(meta.get("attention", "eager")),
        device=data.get("device"),
        meta=meta,
        root=node_from_v1(data["frontend_tree"]),
    )


def node_to_v1(node: Node, parent_scope: str | None = None, depth: int = 0) -> dict[str, Any]:
    """A node (and its subtree) in the release layout."""
    out: dict[str, Any] = {
        "id": node.id,
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
    out["child_nodes_obj"] = [node_to_v1(c, node.scope, depth + 1) for c in node.children]
    out["child_nodes"] = [c.scope for c in node.children]
    return out
