"""Predictor directories: ``predictor.json`` (manifest) + ``arrays.npz`` (numbers). Never pickles.

The manifest holds the format marker, schema version, config, feature names, hardware label,
training-data fingerprint, training report and every component's state, in which each numpy
array is replaced by ``{"$array": key, "shape": [...], "dtype": "float64"}``; the arrays live in
the npz under those keys, loaded with ``allow_pickle=False``.  On load every array must have the
shape and dtype its manifest entry records (older saves record neither), be numeric, and hold
finite numbers only.  The manifest also records the npz's SHA-256, and it is written last, so a
save interrupted half-way, a truncated or swapped npz, or a foreign file fails to load with an
error that names the file.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from irene_core.errors import IreneError
from irene_core.tree.atomic import atomic_write
from irene_core.tree.table import TreeTable

FORMAT = "irene-predictor"
SCHEMA_VERSION = 1
MANIFEST = "predictor.json"
ARRAYS = "arrays.npz"


def split_arrays(obj: Any, arrays: dict[str, np.ndarray], path: str = "") -> Any:
    """``obj`` with numpy arrays moved into ``arrays`` and numpy scalars made plain."""
    if isinstance(obj, np.ndarray):
        key = path.strip("/") or "array"
        arrays[key] = obj
        return {"$array": key, "shape": list(obj.shape), "dtype": obj.dtype.str}
    if isinstance(obj, dict):
        return {str(k): split_arrays(v, arrays, f"{path}/{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [split_arrays(v, arrays, f"{path}/{i}") for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def join_arrays(obj: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    """Inverse of :func:`split_arrays`."""
    if isinstance(obj, dict):
        if "$array" in obj:
            return _checked(obj, arrays, where)
        return {k: join_arrays(v, arrays, where) for k, v in obj.items()}
    if isinstance(obj, list):
        return [join_arrays(v, arrays, where) for v in obj]
    return obj


def _checked(entry: dict[str, Any], arrays: dict[str, np.ndarray], where: str) -> np.ndarray:
    """The array a manifest entry points to, checked against the entry (shape, dtype) and for
    non-numeric or non-finite values."""
    key = entry["$array"]
    if key not in arrays:
        raise IreneError(f"{where}: array '{key}' is missing")
    array = arrays[key]
    if "shape" in entry and list(array.shape) != entry["shape"]:
        raise IreneError(f"{where}: array '{key}' has shape {list(array.shape)}, the manifest says {entry['shape']}")
    if "dtype" in entry and array.dtype.str != entry["dtype"]:
        raise IreneError(f"{where}: array '{key}' has dtype {array.dtype.str}, the manifest says {entry['dtype']}")
    if array.dtype.kind not in "biuf":
        raise IreneError(f"{where}: array '{key}' is not numeric (dtype {array.dtype.str})")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise IreneError(f"{where}: array '{key}' holds NaN or infinite values")
    return array


def read_json(path: Path, problem: str) -> Any:
    """Parse a JSON file; a decoding error is an IreneError ``path: problem (details)``."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IreneError(f"{path}: {problem} ({exc})") from None


def fingerprint(table: TreeTable) -> str:
    """SHA-256 of the training data as the predictor saw it (keys, structure, features, truth)."""
    h = hashlib.sha256()
    keys = [[r.model_name, r.batch_size, r.seq_len, r.device] for r in table.records]
    h.update(json.dumps(keys).encode())
    h.update(json.dumps([list(table.type), list(table.level)]).encode())
    for array in (
        table.record_index,
        table.parent,
        np.nan_to_num(table.features, nan=-1.0),
        np.nan_to_num(table.truth, nan=-1.0),
    ):
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


@functools.cache
def code_fingerprint() -> str:
    """SHA-256 of the predictor's own source (``irene_core/predictor/**/*.py``): which code trained a
    predictor, so that a shipped predictor left behind by a code change is caught (its tests compare)."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def save(directory: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (JSON values and numpy arrays) as a predictor directory."""
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise IreneError(f"{target}: exists and is not a directory")
    arrays: dict[str, np.ndarray] = {}
    manifest = split_arrays(payload, arrays)
    buffer = io.BytesIO()
    # ignore: mypy matches **arrays against the keyword allow_pickle: bool too (the keys are array names)
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    data = buffer.getvalue()
    manifest = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "arrays_sha256": hashlib.sha256(data).hexdigest(),
        **manifest,
    }
    with atomic_write(target / ARRAYS, "wb") as handle:
        handle.write(data)
    with atomic_write(target / MANIFEST) as handle:
        json.dump(manifest, handle, indent=1, allow_nan=False)
        handle.write("\n")
    return target


def load(directory: str | Path) -> dict[str, Any]:
    """Read and check a predictor directory; every problem is an IreneError naming the file."""
    base = Path(directory)
    manifest_path, arrays_path = base / MANIFEST, base / ARRAYS
    if not base.is_dir():
        raise IreneError(f"{base}: not a predictor directory (no such directory)")
    if not manifest_path.is_file():
        raise IreneError(f"{manifest_path}: missing (not a predictor directory?)")
    manifest = read_json(manifest_path, "corrupt or truncated JSON")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IreneError(f"{manifest_path}: not an IrEne predictor (no '\"format\": \"{FORMAT}\"')")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise IreneError(
            f"{manifest_path}: predictor schema version {version} is not supported (this IrEne reads {SCHEMA_VERSION})"
        )
    if not arrays_path.is_file():
        raise IreneError(f"{arrays_path}: missing")
    data = arrays_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.get("arrays_sha256"):
        raise IreneError(f"{arrays_path}: does not match {MANIFEST} (truncated, corrupt or from another predictor)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise IreneError(f"{arrays_path}: unreadable ({exc})") from None
    loaded: dict[str, Any] = join_arrays(manifest, arrays, str(arrays_path))  # a dict, as the manifest is
    return loaded
