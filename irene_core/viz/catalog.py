"""What the configured data directory holds: datasets (JSONL), local model dirs and predictor dirs.

Request parameters name entries of these listings and are looked up in them; a path is never built
from a request string, so nothing outside the data directory can be reached.
"""

from __future__ import annotations

import itertools
import json
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, Field, ValidationError

from irene_core.errors import IreneError, validation_message
from irene_core.predictor.artifacts import MANIFEST
from irene_core.tree.jsonl import MAX_LINE_BYTES, parse_line, record_from_dict, record_key_of, root_of
from irene_core.tree.schema import RecordKey, TreeRecord

#: A directory holding this file is a predictor (see ``irene train``).
PREDICTOR_MARKER = MANIFEST
#: A directory holding this file (and no predictor marker) is a local model the tracer can build.
MODEL_MARKER = "config.json"
MAX_DEPTH = 4
#: A scan stops after this many files (a data dir is meant to be small; a huge one is not walked whole).
MAX_FILES = 20_000
RESCAN_SECONDS = 2.0
#: A local model's config.json larger than this is not read.
MAX_CONFIG_BYTES = 2**20
#: Bytes per parameter for the ``torch_dtype`` / ``dtype`` a config names (float32 when absent).
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1}
#: Config keys naming the same dimension in different model families (Hugging Face conventions).
_HIDDEN = ("hidden_size", "n_embd", "d_model", "dim")
_LAYERS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
_DECODER_LAYERS = ("num_decoder_layers", "decoder_layers")
_INNER = ("intermediate_size", "n_inner", "d_ff", "ffn_dim", "hidden_dim")
_HEADS = ("num_attention_heads", "n_head", "num_heads")
_POSITIONS = ("max_position_embeddings", "n_positions", "n_ctx")


class Problem(BaseModel):
    """A file of the data dir that is skipped (or partly skipped), and why."""

    file: str = Field(description="path relative to the data dir, with '/' separators")
    line: int | None = Field(default=None, description="1-based line of a dataset, when the problem is on one line")
    message: str = Field(description="what is wrong, one line")


class ProblemsView(BaseModel):
    """Every file of the data dir the server skips, sorted by file and line."""

    problems: list[Problem]


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a local model, from the numbers of its config.json (what tracing it would build)."""

    hidden: int
    layers: int
    inner: int
    heads: int
    vocab: int
    positions: int
    dtype_bytes: int

    @classmethod
    def of(cls, config: dict[str, Any]) -> ModelShape:
        """Read the sizes; raises ValueError naming a key that is not a plausible size."""
        hidden = _size(config, _HIDDEN, None)
        dtype = config.get("torch_dtype") or config.get("dtype") or "float32"
        if not isinstance(dtype, str) or dtype.removeprefix("torch.") not in DTYPE_BYTES:
            raise ValueError(f"dtype {dtype!r} is not one of {', '.join(DTYPE_BYTES)}")
        return cls(
            hidden=hidden,
            layers=_size(config, _LAYERS, 1) + _size(config, _DECODER_LAYERS, 0),
            inner=_size(config, _INNER, 4 * hidden),
            heads=_size(config, _HEADS, 1),
            vocab=_size(config, ("vocab_size",), 0),
            positions=_size(config, _POSITIONS, 0),
            dtype_bytes=DTYPE_BYTES[dtype.removeprefix("torch.")],
        )

    @property
    def parameters(self) -> int:
        """Embeddings plus, per layer, attention (4 h²) and feed-forward (2 h·inner) weights."""
        return (self.vocab + self.positions) * self.hidden + self.layers * (
            4 * self.hidden**2 + 2 * self.hidden * self.inner
        )

    def bytes_needed(self, batch_size: int, seq_len: int) -> int:
        """Weights plus one layer's live activations (hidden states, feed-forward, attention scores)."""
        activations = batch_size * seq_len * (2 * self.hidden + self.inner + self.heads * seq_len)
        return (self.parameters + activations) * self.dtype_bytes


def _size(config: dict[str, Any], keys: tuple[str, ...], default: int | None) -> int:
    for key in keys:
        if key in config and config[key] is not None:
            value = config[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"'{key}' must be a non-negative integer, got {str(value)[:40]!r}")
            return value
    if default is None:
        raise ValueError(f"no hidden size ({', '.join(repr(k) for k in keys)})")
    return default


def open_regular(path: Path) -> IO[bytes]:
    """Open a regular file for reading without ever blocking on a FIFO or device; OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"not a regular file ({_kind(os.fstat(fd).st_mode)})")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "a special file"


@dataclass(frozen=True)
class FileEntry:
    """One file or directory found in the data dir, with a fingerprint that changes when it does."""

    name: str  # path relative to the data dir, with '/' separators
    path: Path
    fingerprint: str
    shape: ModelShape | None = None  # of a local model


@dataclass
class DatasetIndex:
    """Byte offset of each record (by its key) in one dataset file."""

    offsets: dict[RecordKey, tuple[int, int]] = field(default_factory=dict)  # key → (offset, line)
    measured: set[str] = field(default_factory=set)
    problem: Problem | None = None  # the first unreadable line
    bad_lines: int = 0

    @property
    def error(self) -> str | None:
        """``file:line: what is wrong`` of the first unreadable line."""
        return None if self.problem is None else f"{self.problem.file}:{self.problem.line}: {self.problem.message}"


@dataclass(frozen=True)
class Snapshot:
    datasets: dict[str, FileEntry]
    local_models: dict[str, FileEntry]
    predictors: dict[str, FileEntry]
    problems: list[Problem] = field(default_factory=list)  # files skipped while scanning


def _fingerprint(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _dir_fingerprint(path: Path) -> str:
    return ";".join(f"{p.name}={_fingerprint(p)}" for p in sorted(path.iterdir()) if p.is_file())


def _describe(exc: BaseException) -> str:
    """One line for an error raised while reading a file."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, ValidationError):
        return validation_message(exc)
    if isinstance(exc, OSError):
        return str(exc.strerror or exc)
    if type(exc) is ValueError:  # the readers' own messages say what is wrong
        return str(exc)
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


class Catalog:
    """Lists the data dir (rescanned at most every :data:`RESCAN_SECONDS`) and reads records from it.

    Only regular files inside the data dir are ever opened (a FIFO, socket, device or a link leading
    outside is skipped without opening it); a file that cannot be read is skipped and reported in
    :meth:`Snapshot.problems` or its dataset index.
    """

    def __init__(self, data_dir: Path | None):
        self.root = data_dir.resolve() if data_dir is not None else None
        if self.root is not None and not self.root.is_dir():
            raise IreneError(f"--data-dir {data_dir}: not a directory")
        self._lock = threading.Lock()
        self._snapshot = Snapshot({}, {}, {})
        self._scanned_at = -1.0
        self._indexes: dict[str, tuple[str, DatasetIndex]] = {}
        self._shapes: dict[str, tuple[str, ModelShape | str]] = {}  # model dir → (fingerprint, shape or error)

    def snapshot(self) -> Snapshot:
        now = time.monotonic()
        with self._lock:
            if self.root is not None and now - self._scanned_at > RESCAN_SECONDS:
                self._snapshot = self._scan(self.root)
                self._scanned_at = now
            return self._snapshot

    def _regular(self, path: Path, rel: str, problems: list[Problem]) -> bool:
        """Whether ``path`` is a regular file inside the data dir (checked with stat, never opened)."""
        assert self.root is not None
        try:
            if not path.resolve().is_relative_to(self.root):
                problems.append(Problem(file=rel, message="a link leading outside the data dir: ignored"))
                return False
            mode = os.stat(path).st_mode
        except OSError as exc:
            problems.append(Problem(file=rel, message=f"cannot be read: {_describe(exc)}"))
            return False
        if not stat.S_ISREG(mode):
            problems.append(Problem(file=rel, message=f"{_kind(mode)}, not a regular file: ignored"))
        return stat.S_ISREG(mode)

    def _scan(self, root: Path) -> Snapshot:
        datasets: dict[str, FileEntry] = {}
        models: dict[str, FileEntry] = {}
        predictors: dict[str, FileEntry] = {}
        problems: list[Problem] = []
        count = 0
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            here = Path(dirpath)
            depth = len(here.relative_to(root).parts)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and depth < MAX_DEPTH)
            rel = here.relative_to(root).as_posix()
            prefix = "" if rel == "." else f"{rel}/"
            try:
                if rel != "." and PREDICTOR_MARKER in filenames:
                    if self._regular(here / PREDICTOR_MARKER, prefix + PREDICTOR_MARKER, problems):
                        predictors[rel] = FileEntry(rel, here, _dir_fingerprint(here))
                elif (rel != "." and MODEL_MARKER in filenames
                      and self._regular(here / MODEL_MARKER, prefix + MODEL_MARKER, problems)):
                    entry = FileEntry(rel, here, _dir_fingerprint(here))
                    shape = self._shape(entry)
                    if isinstance(shape, str):
                        problems.append(Problem(file=prefix + MODEL_MARKER, message=shape))
                    else:
                        models[rel] = FileEntry(rel, here, entry.fingerprint, shape)
                for name in sorted(filenames):
                    if name.endswith(".jsonl") and not name.startswith("."):
                        path = here / name
                        if self._regular(path, prefix + name, problems):
                            datasets[prefix + name] = FileEntry(prefix + name, path, _fingerprint(path))
            except OSError:
                continue  # vanished while scanning: not listed
            count += len(filenames)
            if count > MAX_FILES:
                problems.append(Problem(file=rel, message=f"more than {MAX_FILES} files: the scan stopped here"))
                break
        return Snapshot(datasets, models, predictors, problems)

    def _shape(self, entry: FileEntry) -> ModelShape | str:
        """The sizes in a local model's config.json, or why they cannot be read (cached per fingerprint)."""
        cached = self._shapes.get(entry.name)
        if cached is not None and cached[0] == entry.fingerprint:
            return cached[1]
        shape: ModelShape | str
        try:
            with open_regular(entry.path / MODEL_MARKER) as handle:
                raw = handle.read(MAX_CONFIG_BYTES + 1)
            if len(raw) > MAX_CONFIG_BYTES:
                raise ValueError(f"larger than {MAX_CONFIG_BYTES} bytes")
            config = json.loads(raw)
            if not isinstance(config, dict):
                raise ValueError("not a JSON object")
            shape = ModelShape.of(config)
        except (OSError, ValueError, RecursionError) as exc:  # JSON and UTF-8 errors are ValueErrors
            shape = f"invalid config.json: {_describe(exc)}"
        self._shapes[entry.name] = (entry.fingerprint, shape)
        return shape

    def dataset(self, name: str) -> FileEntry:
        entry = self.snapshot().datasets.get(name)
        if entry is None:
            known = ", ".join(sorted(self.snapshot().datasets)) or "none"
            raise IreneError(f"dataset '{name}' is not in the data directory (datasets: {known})")
        return entry

    def index(self, entry: FileEntry) -> DatasetIndex:
        """The record index of one dataset, rebuilt when the file changes; OSError if it cannot be opened."""
        with self._lock:
            cached = self._indexes.get(entry.name)
        if cached is not None and cached[0] == entry.fingerprint:
            return cached[1]
        index = _build_index(entry)
        with self._lock:
            self._indexes[entry.name] = (entry.fingerprint, index)
        return index

    def record(self, entry: FileEntry, model: str, batch_size: int, seq_len: int, *, phase: str | None = None,
               context_len: int | None = None, dtype: str | None = None) -> TreeRecord:
        """The record of ``model`` at this size; ``phase``, ``context_len``, ``dtype`` narrow the choice when given."""
        try:
            index = self.index(entry)
        except OSError as exc:
            raise IreneError(f"dataset '{entry.name}' cannot be read: {_describe(exc)}") from None
        # the API asks by (model, batch, seq): the forward pass first, then any other record of that size
        wanted = {"phase": phase, "context_len": context_len, "dtype": dtype}
        matches = sorted(
            (k.phase != "forward", n) for n, k in enumerate(index.offsets) if k[:3] == (model, batch_size, seq_len)
            and all(v is None or getattr(k, f) == v for f, v in wanted.items())
        )
        where = list(index.offsets.values())[matches[0][1]] if matches else None
        if where is None:
            sizes = sorted({(k.batch_size, k.seq_len) for k in index.offsets if k.model == model})
            if not sizes:
                raise IreneError(f"dataset '{entry.name}' has no model '{model}'")
            listed = ", ".join(f"{b}x{s}" for b, s in sizes[:40])
            given = "".join(f", {f}={v}" for f, v in wanted.items() if v is not None)
            raise IreneError(
                f"dataset '{entry.name}' has no record of '{model}' at batch_size={batch_size}, seq_len={seq_len}"
                f"{given} (sizes: {listed})"
            )
        offset, lineno = where
        try:
            with open_regular(entry.path) as handle:
                handle.seek(offset)
                return record_from_dict(parse_line(handle.readline(MAX_LINE_BYTES)))
        except (OSError, ValueError, TypeError, RecursionError) as exc:  # ValidationError is a ValueError
            problem = Problem(file=entry.name, line=lineno, message=_describe(exc))
            with self._lock:  # the record is not listed any more; /api/problems says why
                index.offsets = {k: v for k, v in index.offsets.items() if v != where}
                _skip(index, problem)
            raise IreneError(f"{entry.name}:{lineno}: {problem.message}") from None


def _build_index(entry: FileEntry) -> DatasetIndex:
    index = DatasetIndex()
    offset = 0
    with open_regular(entry.path) as handle:
        for lineno in itertools.count(1):
            line = handle.readline(MAX_LINE_BYTES + 1)
            if not line:
                break
            if len(line) > MAX_LINE_BYTES:
                _skip(index, Problem(file=entry.name, line=lineno,
                                     message=f"a line longer than {MAX_LINE_BYTES} bytes: the rest is not read"))
                break
            start, offset = offset, offset + len(line)
            if not line.strip():
                continue
            try:
                data = parse_line(line)
                key = record_key_of(data)
                measured = _has_measurement(root_of(data))
            except (ValueError, TypeError, KeyError, RecursionError) as exc:  # UTF-8 and JSON errors too
                _skip(index, Problem(file=entry.name, line=lineno, message=_describe(exc)))
                continue
            index.offsets.setdefault(key, (start, lineno))
            if measured:
                index.measured.add(key.model)
    return index


def _skip(index: DatasetIndex, problem: Problem) -> None:
    index.problem = index.problem or problem
    index.bad_lines += 1


def _has_measurement(tree: object) -> bool:
    return isinstance(tree, dict) and tree.get("ground_truth_energy") is not None
