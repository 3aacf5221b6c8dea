"""Datasets: JSON Lines files of tree records, one record a line.

Writers write record schema v2 (:data:`~irene_core.tree.schema.SCHEMA_VERSION`): the
:class:`~irene_core.tree.schema.TreeRecord` model as JSON, with ``schema_version`` first.  Readers
accept v2 and v1 (the original IrEne release's layout, :mod:`irene_core.tree.irene_format`; a line
without ``schema_version`` is v1) and record which on each record (``record.schema_read``).  A v2
line with an unknown field, or a line of a newer schema, is an error naming the file and line.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from irene_core.errors import IreneError, os_error_message, validation_message
from irene_core.tree.atomic import DatasetLock, append_line, dataset_write, naming_os_errors
from irene_core.tree.irene_format import record_from_v1
from irene_core.tree.schema import READABLE_VERSIONS, SCHEMA_VERSION, RecordKey, TreeRecord

#: The longest line a reader parses (checked while reading, before parsing).
MAX_LINE_BYTES = 256 * 2**20
#: The deepest tree a record may hold (model, modules, leaves: real ones are under 10 levels deep).
MAX_TREE_DEPTH = 128
#: The deepest nesting of JSON objects and arrays a reader accepts (a tree of about MAX_DEPTH / 2 levels).
MAX_DEPTH = 512
TRUNCATED_HINT = (
    "the last line is truncated (an interrupted write?): `irene run --resume` repairs it, or remove the line"
)


_UNKNOWN_HINT = f" (schema v{SCHEMA_VERSION} declares every field)"


def record_to_dict(record: TreeRecord) -> dict[str, Any]:
    """The record as written (schema v2)."""
    return {"schema_version": SCHEMA_VERSION, **record.model_dump(mode="json")}


def record_to_line(record: TreeRecord) -> str:
    """The record as one JSON line; IreneError if a reader would refuse it (so none is ever written)."""
    try:
        data = record_to_dict(record)
        record_from_dict(data)
        line = json.dumps(data, separators=(",", ":"), allow_nan=False)
    except ValidationError as exc:
        problem = validation_message(exc, _UNKNOWN_HINT)
        raise IreneError(f"{record.key.describe()}: cannot be written: {problem}") from None
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise IreneError(f"{record.key.describe()}: cannot be written: {exc}") from None
    if len(line.encode("utf-8")) > MAX_LINE_BYTES:
        raise IreneError(f"{record.key.describe()}: cannot be written: longer than {MAX_LINE_BYTES} bytes")
    return line


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


def _too_tall(root: Any, children: str) -> bool:
    """Whether the tree under ``root`` has more than MAX_TREE_DEPTH levels (iterative; the schema checks the rest)."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > MAX_TREE_DEPTH:
                return True
            kids = node.get(children)
            if isinstance(kids, list):
                stack.extend((kid, depth + 1) for kid in kids)
    return False


def record_from_dict(data: Any) -> TreeRecord:
    """A record from one parsed line of either schema; raises ValueError (or ValidationError)."""
    version = schema_version_of(data)
    if _too_tall(root_of(data), "child_nodes_obj" if version == 1 else "children"):
        raise ValueError(f"the tree is more than {MAX_TREE_DEPTH} levels deep (the most IrEne handles)")
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


def _non_finite(name: str) -> float:
    raise ValueError(f"{name} is not allowed (JSON numbers are finite)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range (JSON numbers are finite)")
    return value


def _too_deep(data: Any) -> bool:
    """Whether objects and arrays nest deeper than MAX_DEPTH (iterative: no recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_line(raw: bytes) -> Any:
    """One JSON line, strictly: UTF-8, finite numbers, at most MAX_DEPTH deep; ValueError says what is wrong."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1})") from None
    too_deep = f"JSON nested deeper than {MAX_DEPTH} levels"
    try:
        data = json.loads(text, parse_constant=_non_finite, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise ValueError(too_deep) from None
    if isinstance(data, (dict, list)) and _too_deep(data):
        raise ValueError(too_deep)
    return data


def _open_dataset(path: Path) -> IO[bytes]:
    if path.is_dir():
        raise IreneError(f"{path}: is a directory (expected a JSON Lines dataset)")
    if not path.exists():
        raise IreneError(f"{path}: no such file")
    if not path.is_file():
        raise IreneError(f"{path}: not a regular file")
    try:
        return open(path, "rb")
    except OSError as exc:
        raise IreneError(os_error_message(exc, path)) from None


def parse_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) of each non-blank line; a bad line raises IreneError ``file:line: …``.

    A line is checked for length (MAX_LINE_BYTES) before it is parsed; a last line without its newline
    that does not parse is reported as truncated, with how to repair it.
    """
    p = Path(path)
    with _open_dataset(p) as handle:
        lineno = 0
        while True:
            try:
                raw = handle.readline(MAX_LINE_BYTES + 1)
            except OSError as exc:
                raise IreneError(os_error_message(exc, f"{p}:{lineno + 1}")) from None
            if not raw:
                return
            lineno += 1
            whole = raw.endswith(b"\n")
            if not whole and len(raw) > MAX_LINE_BYTES:
                raise IreneError(f"{p}:{lineno}: line longer than {MAX_LINE_BYTES} bytes (the most a record may take)")
            if not raw.strip():
                continue
            try:
                data = parse_line(raw)
            except ValueError as exc:
                raise IreneError(f"{p}:{lineno}: {exc if whole else TRUNCATED_HINT}") from None
            yield lineno, data


def read_records(path: str | os.PathLike[str]) -> Iterator[TreeRecord]:
    """Yield records; a bad line raises IreneError ``file:line: what is wrong``."""
    for lineno, data in parse_lines(path):
        try:
            record = record_from_dict(data)
        except ValidationError as exc:
            raise IreneError(f"{path}:{lineno}: {validation_message(exc, _UNKNOWN_HINT)}") from None
        except (ValueError, TypeError, KeyError) as exc:
            raise IreneError(f"{path}:{lineno}: {exc}") from None
        except RecursionError:
            raise IreneError(f"{path}:{lineno}: the tree is nested too deeply to read") from None
        yield record


def load_records(path: str | os.PathLike[str]) -> list[TreeRecord]:
    return list(read_records(path))


def write_records(path: str | os.PathLike[str], records: Iterable[TreeRecord]) -> int:
    """Write all records atomically (schema v2) under the dataset lock; returns the count."""
    n = 0
    with dataset_write(path) as handle:
        for record in records:
            handle.write(record_to_line(record) + "\n")
            n += 1
    return n


def _truncated_tail(handle: IO[bytes]) -> int:
    """The length of a truncated last line (no newline and not valid JSON), or 0 when the file is whole."""
    end = handle.seek(0, os.SEEK_END)
    start = end
    while start > 0:
        step = min(start, 1 << 16)
        handle.seek(start - step)
        chunk = handle.read(step)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            if start == end and newline == step - 1:
                return 0  # the file ends with a newline
            start = start - step + newline + 1
            break
        start -= step
    handle.seek(start)
    tail = handle.read()
    try:
        if tail.strip():
            json.loads(tail.decode("utf-8"))
    except (ValueError, RecursionError):
        return end - start
    return 0


def repair_tail(path: str | os.PathLike[str]) -> int:
    """Cut off a truncated last line (left by an interrupted write), fsynced; returns the bytes removed."""
    p = Path(path)
    if not p.is_file():
        return 0
    with DatasetLock(p), naming_os_errors(p), open(p, "r+b") as handle:
        cut = _truncated_tail(handle)
        if cut:
            handle.truncate(handle.seek(0, os.SEEK_END) - cut)
            handle.flush()
            os.fsync(handle.fileno())
    return cut


def append_record(path: str | os.PathLike[str], record: TreeRecord) -> None:
    """Append one finished tree whole or not at all (one write + fsync) under the dataset lock.

    A truncated last line is refused (IreneError with the repair hint) rather than buried mid-file.
    """
    p = Path(path)
    line = record_to_line(record)
    with DatasetLock(p):
        if p.is_file():
            with naming_os_errors(p), open(p, "rb") as handle:
                truncated = _truncated_tail(handle)
            if truncated:
                raise IreneError(f"{p}: {TRUNCATED_HINT}")
        append_line(p, line)
