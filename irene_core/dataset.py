"""JSON Lines datasets in the IrEne data format (one tree record a line).

Each line is the public IrEne release's record, ``{"model_name", "batch_size", "seq_len",
"frontend_tree"}``, whose nodes carry ``id``, ``scope``, ``parent_name``, ``level`` (depth),
``instance_type`` (class or op name), ``type`` (model | module | ml), feature keys at the top level,
``ground_truth_energy``, ``predicted_energy``, ``child_nodes_obj`` and ``child_nodes``.  We add
``schema_version``, ``device``, ``meta`` on the record and ``synthetic`` on OwnOps nodes; readers of
the original format ignore them, and files from the original project read here unchanged.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from irene_core.atomic import append_line, atomic_write
from irene_core.errors import IreneError
from irene_core.tree import Node, TreeRecord

SCHEMA_VERSION = 1

_NODE_KEYS = {
    "id",
    "scope",
    "parent_name",
    "level",
    "instance_type",
    "type",
    "ground_truth_energy",
    "predicted_energy",
    "child_nodes_obj",
    "child_nodes",
    "synthetic",
    "level_name",
}
_RECORD_KEYS = {"model_name", "batch_size", "seq_len", "frontend_tree", "schema_version", "device", "meta"}


def node_to_dict(node: Node, parent_scope: str | None = None, depth: int = 0) -> dict[str, Any]:
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
    out["child_nodes_obj"] = [node_to_dict(c, node.scope, depth + 1) for c in node.children]
    out["child_nodes"] = [c.scope for c in node.children]
    return out


def record_to_dict(record: TreeRecord) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "model_name": record.model_name,
        "batch_size": record.batch_size,
        "seq_len": record.seq_len,
        "device": record.device,
        "meta": record.meta,
        "frontend_tree": node_to_dict(record.root),
    }


def record_to_line(record: TreeRecord) -> str:
    return json.dumps(record_to_dict(record), separators=(",", ":"), allow_nan=False)


def _scope(raw: str) -> str:
    """The original release writes scopes as ``root.x.y``; ours are ``x.y`` ('' for the model)."""
    if raw == "root":
        return ""
    return raw[5:] if raw.startswith("root.") else raw


def _energy(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return float(value)


def node_from_dict(data: dict[str, Any], path: str = "frontend_tree") -> Node:
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a node must be a JSON object")
    for key in ("id", "scope", "instance_type", "type"):
        if key not in data:
            raise ValueError(f"{path}: missing field '{key}'")
    level = "ml" if data["type"] == "ml-np" else data["type"]
    features = {}
    for key, value in data.items():
        if key in _NODE_KEYS or isinstance(value, bool) or not isinstance(value, (int, float)):
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
        ground_truth_energy=_energy(data.get("ground_truth_energy"), f"{path} ({node_id}): ground_truth_energy"),
        predicted_energy=_energy(data.get("predicted_energy"), f"{path} ({node_id}): predicted_energy"),
        synthetic=bool(data.get("synthetic", False)),
        children=[node_from_dict(c, f"{path}.{i}") for i, c in enumerate(children)],
    )


def record_from_dict(data: dict[str, Any]) -> TreeRecord:
    if not isinstance(data, dict):
        raise ValueError("a record must be a JSON object")
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ValueError(f"schema_version {version} is not supported (this IrEne reads {SCHEMA_VERSION})")
    for key in ("model_name", "batch_size", "seq_len", "frontend_tree"):
        if key not in data:
            raise ValueError(f"missing field '{key}'")
    record = TreeRecord(
        model_name=data["model_name"],
        batch_size=int(data["batch_size"]),
        seq_len=int(data["seq_len"]),
        device=data.get("device"),
        meta=data.get("meta") or {},
        root=node_from_dict(data["frontend_tree"]),
    )
    record.check()
    return record


def _brief(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def read_records(path: str | os.PathLike[str]) -> Iterator[TreeRecord]:
    """Yield records; a bad line raises IreneError ``file:line: what is wrong``."""
    p = Path(path)
    if not p.is_file():
        raise IreneError(f"{p}: no such file")
    with open(p, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield record_from_dict(json.loads(line))
            except json.JSONDecodeError as exc:
                raise IreneError(f"{p}:{lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None
            except ValidationError as exc:
                raise IreneError(f"{p}:{lineno}: {_brief(exc)}") from None
            except (ValueError, TypeError) as exc:
                raise IreneError(f"{p}:{lineno}: {exc}") from None


def load_records(path: str | os.PathLike[str]) -> list[TreeRecord]:
    return list(read_records(path))


def write_records(path: str | os.PathLike[str], records: Iterable[TreeRecord]) -> int:
    """Write all records atomically; returns the count."""
    n = 0
    with atomic_write(path) as handle:
        for record in records:
            handle.write(record_to_line(record) + "\n")
            n += 1
    return n


def append_record(path: str | os.PathLike[str], record: TreeRecord) -> None:
    """Append one finished tree durably (flushed and fsynced)."""
    append_line(path, record_to_line(record))
