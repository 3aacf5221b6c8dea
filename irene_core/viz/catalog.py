"""What the configured data directory holds: datasets (JSONL), local model dirs and predictor dirs.

Request parameters name entries of these listings and are looked up in them; a path is never built
from a request string, so nothing outside the data directory can be reached.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from irene_core.errors import IreneError
from irene_core.predictor.artifacts import MANIFEST
from irene_core.tree.jsonl import record_from_dict, record_key_of, root_of
from irene_core.tree.schema import RecordKey, TreeRecord

#: A directory holding this file is a predictor (see ``irene train``).
PREDICTOR_MARKER = MANIFEST
#: A directory holding this file (and no predictor marker) is a local model the tracer can build.
MODEL_MARKER = "config.json"
MAX_DEPTH = 4
#: A scan stops after this many files (a data dir is meant to be small; a huge one is not walked whole).
MAX_FILES = 20_000
RESCAN_SECONDS = 2.0


@dataclass(frozen=True)
class FileEntry:
    """One file or directory found in the data dir, with a fingerprint that changes when it does."""

    name: str  # path relative to the data dir, with '/' separators
    path: Path
    fingerprint: str


@dataclass
class DatasetIndex:
    """Byte offset of each record (by its key) in one dataset file."""

    offsets: dict[RecordKey, tuple[int, int]] = field(default_factory=dict)  # key → (offset, line)
    measured: set[str] = field(default_factory=set)
    error: str | None = None


@dataclass(frozen=True)
class Snapshot:
    datasets: dict[str, FileEntry]
    local_models: dict[str, FileEntry]
    predictors: dict[str, FileEntry]


def _fingerprint(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _dir_fingerprint(path: Path) -> str:
    return ";".join(f"{p.name}={_fingerprint(p)}" for p in sorted(path.iterdir()) if p.is_file())


class Catalog:
    """Lists the data dir (rescanned at most every :data:`RESCAN_SECONDS`) and reads records from it."""

    def __init__(self, data_dir: Path | None):
        self.root = data_dir.resolve() if data_dir is not None else None
        if self.root is not None and not self.root.is_dir():
            raise IreneError(f"--data-dir {data_dir}: not a directory")
        self._lock = threading.Lock()
        self._snapshot = Snapshot({}, {}, {})
        self._scanned_at = -1.0
        self._indexes: dict[str, tuple[str, DatasetIndex]] = {}

    def snapshot(self) -> Snapshot:
        now = time.monotonic()
        with self._lock:
            if self.root is not None and now - self._scanned_at > RESCAN_SECONDS:
                self._snapshot = self._scan(self.root)
                self._scanned_at = now
            return self._snapshot

    def _inside(self, path: Path) -> bool:
        assert self.root is not None
        try:
            return path.resolve().is_relative_to(self.root)
        except OSError:
            return False

    def _scan(self, root: Path) -> Snapshot:
        datasets: dict[str, FileEntry] = {}
        models: dict[str, FileEntry] = {}
        predictors: dict[str, FileEntry] = {}
        count = 0
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            here = Path(dirpath)
            depth = len(here.relative_to(root).parts)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and depth < MAX_DEPTH)
            rel = here.relative_to(root).as_posix()
            try:
                if rel != "." and PREDICTOR_MARKER in filenames and self._inside(here / PREDICTOR_MARKER):
                    predictors[rel] = FileEntry(rel, here, _dir_fingerprint(here))
                elif rel != "." and MODEL_MARKER in filenames and self._inside(here / MODEL_MARKER):
                    models[rel] = FileEntry(rel, here, _dir_fingerprint(here))
                for name in sorted(filenames):
                    path = here / name
                    if name.endswith(".jsonl") and not name.startswith(".") and self._inside(path):
                        key = path.relative_to(root).as_posix()
                        datasets[key] = FileEntry(key, path, _fingerprint(path))
            except OSError:
                continue  # vanished or unreadable while scanning: not listed
            count += len(filenames)
            if count > MAX_FILES:
                break
        return Snapshot(datasets, models, predictors)

    def dataset(self, name: str) -> FileEntry:
        entry = self.snapshot().datasets.get(name)
        if entry is None:
            known = ", ".join(sorted(self.snapshot().datasets)) or "none"
            raise IreneError(f"dataset '{name}' is not in the data directory (datasets: {known})")
        return entry

    def index(self, entry: FileEntry) -> DatasetIndex:
        """The record index of one dataset, rebuilt when the file changes."""
        with self._lock:
            cached = self._indexes.get(entry.name)
        if cached is not None and cached[0] == entry.fingerprint:
            return cached[1]
        index = _build_index(entry.path)
        with self._lock:
            self._indexes[entry.name] = (entry.fingerprint, index)
        return index

    def record(self, entry: FileEntry, model: str, batch_size: int, seq_len: int) -> TreeRecord:
        index = self.index(entry)
        # the API asks by (model, batch, seq): the forward pass first, then any other record of that size
        matches = sorted(
            (k.phase != "forward", n) for n, k in enumerate(index.offsets) if k[:3] == (model, batch_size, seq_len)
        )
        where = list(index.offsets.values())[matches[0][1]] if matches else None
        if where is None:
            sizes = sorted({(k.batch_size, k.seq_len) for k in index.offsets if k.model == model})
            if not sizes:
                raise IreneError(f"dataset '{entry.name}' has no model '{model}'")
            listed = ", ".join(f"{b}x{s}" for b, s in sizes[:40])
            raise IreneError(
                f"dataset '{entry.name}' has no record of '{model}' at batch_size={batch_size}, seq_len={seq_len}"
                f" (sizes: {listed})"
            )
        offset, lineno = where
        with open(entry.path, "rb") as handle:
            handle.seek(offset)
            line = handle.readline()
        try:
            return record_from_dict(json.loads(line))
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            raise IreneError(f"{entry.name}:{lineno}: {str(exc).splitlines()[0]}") from None


def _build_index(path: Path) -> DatasetIndex:
    index = DatasetIndex()
    offset = 0
    with open(path, "rb") as handle:
        for lineno, line in enumerate(handle, 1):
            start, offset = offset, offset + len(line)
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                key = record_key_of(data)
            except (ValueError, TypeError, KeyError) as exc:
                index.error = index.error or f"{path.name}:{lineno}: {type(exc).__name__}: {exc}"
                continue
            index.offsets.setdefault(key, (start, lineno))
            if _has_measurement(root_of(data)):
                index.measured.add(key.model)
    return index


def _has_measurement(tree: object) -> bool:
    return isinstance(tree, dict) and tree.get("ground_truth_energy") is not None
