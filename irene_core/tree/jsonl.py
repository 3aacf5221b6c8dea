"""Datasets: JSON Lines files of tree records, one record a line.

Writers write record schema v2 (:data:`~irene_core.tree.schema.SCHEMA_VERSION`): the
:class:`~irene_core.tree.schema.TreeRecord` model as JSON, with ``schema_version`` first.  Readers
accept v2 and v1 (the original IrEne release's layout, :mod:`irene_core.tree.irene_format`; a line
without ``schema_version`` is v1) and record which on each record (``record.schema_read``).  A v2
line with an unknown field, or a line of a newer schema, is an error naming the file and line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from irene_core.errors import IreneError
from irene_core.tree.atomic import append_line, atomic_write
from irene_core.tree.irene_format import record_from_v1
from irene_core.tree.schema import READABLE_VERSIONS, SCHEMA_VERSION, RecordKey, TreeRecord


def record_to_dict(record: TreeRecord) -> dict[str, Any]:
    """The record as written (schema v2)."""
    return {"schema_version": SCHEMA_VERSION, **record.model_dump(mode="json")}


def record_to_line(record: TreeRecord) -> str:
    return json.dumps(record_to_dict(record), separators=(",", ":"), allow_nan=False)


def schema_version_of(data: Any) -> int:
    """The schema version of one parsed line (1 when absent, as in the original release)."""
    if not isinstance(data, dict):
        raise ValueError("a record must be a JSON object")
    version = data.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"schema_version must be an integer, got {version!r}")
    if version not in READABLE_VERSIONS:
        newer = " (written by a newer IrEne: upgrade irene)" if version > SCHEMA_VERSION else ""
        raise ValueError(
            f"schema_version {version} is not supported{newer}; this IrEne reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    return version


def record_from_dict(data: Any) -> TreeRecord:
    """A record from one parsed line of either schema; raises ValueError (or ValidationError)."""
    version = schema_version_of(data)
    if version == 1:
        record = record_from_v1(data)
    else:
        record = TreeRecord.model_validate({k: v for k, v in data.items() if k != "schema_version"})
    record._schema_read = version
    record.check()
    return record


def record_key_of(data: Any) -> RecordKey:
    """The key of one parsed line without building its tree (the viewer's index)."""
    version = schema_version_of(data)
    meta = data.get("meta") or {}
    attention = (
        meta.get("attention", "eager") if version == 1 and isinstance(meta, dict) else data.get("attention", "eager")
    )
    return RecordKey(
        str(data["model_name"]), int(data["batch_size"]), int(data["seq_len"]), str(data.get("phase", "forward")),
        None if data.get("context_len") is None else int(data["context_len"]), str(data.get("dtype", "float32")),
        str(attention), None if data.get("device") is None else str(data["device"]),
    )


def root_of(data: dict[str, Any]) -> Any:
    """The root node of one parsed line, in the layout of its schema (a dict, or None)."""
    return data.get("frontend_tree") if schema_version_of(data) == 1 else data.get("root")


def _brief(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"unknown field '{where}' (schema v{SCHEMA_VERSION} declares every field)"
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
            except (ValueError, TypeError, KeyError) as exc:
                raise IreneError(f"{p}:{lineno}: {exc}") from None


def load_records(path: str | os.PathLike[str]) -> list[TreeRecord]:
    return list(read_records(path))


def write_records(path: str | os.PathLike[str], records: Iterable[TreeRecord]) -> int:
    """Write all records atomically (schema v2); returns the count."""
    n = 0
    with atomic_write(path) as handle:
        for record in records:
            handle.write(record_to_line(record) + "\n")
            n += 1
    return n


def append_record(path: str | os.PathLike[str], record: TreeRecord) -> None:
    """Append one finished tree durably (flushed and fsynced)."""
    append_line(path, record_to_line(record))
