"""Answers of the viz API: trace or read a tree, predict it, cache the JSON.

A request is first *planned* on the event loop (names checked against the known models, datasets and
predictors; a cache key made from them and their fingerprints). A cache miss runs the work on one
worker thread, off the event loop; identical requests that arrive meanwhile await the same
computation instead of starting their own. A refusal of the computation (a too-large model, a bad
record) is cached like an answer, with its status. Work runs on daemon threads, so a computation that
never returns cannot hold up the server's exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import hashlib
import json
import math
import queue
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from irene_core._version import __version__
from irene_core.errors import IreneError
from irene_core.plugins import get_registry
from irene_core.tracing.bytes_moved import BYTES_MOVED, add_bytes_moved, lacks_bytes_moved
from irene_core.tracing.trace import phase_options
from irene_core.tree.per_token import per_token
from irene_core.tree.schema import MODEL_FEATURES, SCHEMA_VERSION, Node, TreeRecord
from irene_core.viz.cache import CACHE_SCHEMA_VERSION, Entry, ResultCache
from irene_core.viz.catalog import PREDICTOR_MARKER, Catalog, FileEntry, Problem, ProblemsView
from irene_core.viz.config import ServeConfig
from irene_core.viz.schemas import (
    ApiError,
    DatasetEntry,
    EnergyView,
    ErrorBasis,
    FirstView,
    LimitsView,
    ModelEntry,
    ModelsView,
    PredictorEntry,
    Source,
    StatusView,
    SweepPoint,
    SweepView,
    TreeView,
    Vary,
)
from irene_core.whatif import WhatIfQuery, WhatIfResult, whatif
from irene_core.whatif import plan as whatif_plan

#: Name of the shipped model-features predictor in the API.
REFERENCE = "reference"
T = TypeVar("T")
#: Meta traces the what-if keeps across requests (the 24 BERT miniatures need 24).
WHATIF_TRACES = 256
#: Bounds of a varied setting's values: any setting, and a number of layers (a setting named *layer*).
WHATIF_MAX_VALUE = 65_536
WHATIF_MAX_LAYERS = 256
#: The command-line flags in the what-if's messages and the API's fields they stand for.
_WHATIF_FIELDS = {"--models": "models", "--vary": "vary", "MODEL": "base", "--budget-j": "budget_j",
                  "--min-accuracy": "min_accuracy", "--accuracy": "accuracy", "--predictor": "predictor"}
_WHATIF_FLAG = re.compile(r"^MODEL\b|(?<![\w-])(" + "|".join(re.escape(f) for f in _WHATIF_FIELDS if f[0] == "-")
                          + r")\b")


def _as_fields(exc: IreneError) -> IreneError:
    """A what-if message with its command-line flags written as the API's fields (``--vary`` → ``vary``)."""
    return type(exc)(_WHATIF_FLAG.sub(lambda m: _WHATIF_FIELDS[m.group(0)], str(exc)))


class TraceCache(OrderedDict[Any, Any]):
    """A mapping that keeps its ``size`` most recently used entries (the what-if's meta traces)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        self.move_to_end(key)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class Unavailable(IreneError):
    """The server cannot answer this kind of request at all (a plugin is missing): HTTP 503."""


class Worker:
    """Runs submitted calls in order on one daemon thread (a ThreadPoolExecutor's threads are joined at
    exit, so one stuck call would keep a stopped server alive)."""

    def __init__(self, name: str):
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((future, fn, args))
        return future

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, args = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:  # handed to the waiter
                    future.set_exception(exc)

    def shutdown(self) -> None:
        """Cancel what has not started and let the thread end after the current call."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        self._queue.put(None)


@dataclass(frozen=True)
class Query:
    kind: Literal["energy", "tree"]
    model: str
    batch_size: int
    seq_len: int
    predictor: str | None = None
    dataset: str | None = None
    #: LLM phase options (:meth:`Framework.trace`); None: the tracer's default (for a dataset: any record).
    phase: str | None = None
    context_len: int | None = None
    dtype: str | None = None
    logits: str | None = None

    def trace_options(self) -> dict[str, Any]:
        """The phase options given, for :func:`irene_core.tracing.trace.phase_options`."""
        options = {"phase": self.phase, "context_len": self.context_len, "dtype": self.dtype, "logits": self.logits}
        return {k: v for k, v in options.items() if v is not None}

    def check(self) -> None:
        """Refuse, in one line naming the parameter, phase options that do not go together."""
        if self.context_len is not None and self.phase != "decode":
            raise IreneError("context_len: a context is the KV cache of phase=decode (add phase=decode)")
        if self.phase == "decode" and self.seq_len != 1:
            raise IreneError(f"seq_len={self.seq_len}: phase=decode generates one token per sequence (use seq_len=1)")
        if self.logits is not None and self.phase != "prefill":
            raise IreneError("logits: only phase=prefill chooses which positions go through the language-model head")


#: The view the page offers first (its form's defaults), computed by :meth:`EnergyService.warm_up`.
FIRST_VIEW = Query("energy", "bert-base-uncased", 8, 128)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The garbage collector off meanwhile, then every object that exists frozen: importing torch,
    transformers and scikit-learn makes ~10⁶ objects that the collector would otherwise traverse again and
    again (a quarter of the imports' time), and later full collections (~0.2 s each) would again."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


@dataclass(frozen=True)
class Plan:
    query: Query
    source: Source
    entry: FileEntry | None  # dataset file or local model dir
    predictor: str | None
    key: str


class EnergyService:
    """Plans, computes and caches the answers of ``/api/energy`` and ``/api/tree``."""

    def __init__(self, config: ServeConfig, cache: ResultCache | None = None):
        self.config = config
        self.catalog = Catalog(config.data_dir)
        self.cache = cache if cache is not None else ResultCache(config.cache_path)
        self.computations = 0
        self._executor = Worker("irene-viz-compute")
        #: Listings parse dataset files: a worker of their own, so they never wait behind a trace.
        self.lister = Worker("irene-viz-list")
        self._inflight: dict[str, asyncio.Future[Entry]] = {}
        self._predictors: dict[tuple[str, str], Any] = {}
        self._predictor_lock = threading.Lock()
        self._reference_fingerprint: str | None = None
        #: data-dir predictors that load but fail to predict: file → (fingerprint then, message)
        self._failures: dict[str, tuple[str, str]] = {}
        #: the what-if's meta traces, kept across requests (used on the worker thread only)
        self._traces = TraceCache(WHATIF_TRACES)
        self._first_view_ready: Future[None] | None = None
        self.framework, self.framework_error = self._load_framework(config.framework)
        self.presets: frozenset[str] = frozenset(self.framework.presets()) if self.framework else frozenset()
        #: What every answer depends on besides its query and files: the cache's and the record schema's
        #: versions, IrEne's, and every plugin distribution's (a new tracer, predictor plugin or schema
        #: never gets an answer computed by the old one).
        self.versions = (CACHE_SCHEMA_VERSION, SCHEMA_VERSION, __version__, plugin_versions())
        self._key_base = json.dumps([self.versions, asdict(config.limits)])  # made once: cached answers are hot

    @staticmethod
    def _load_framework(name: str) -> tuple[Any, str | None]:
        try:
            return get_registry().get("framework", name), None
        except IreneError as exc:
            return None, str(exc)

    def warm_up(self) -> Future[None] | None:
        """Prepare the page's first view (:data:`FIRST_VIEW`, or the first preset) on the worker, once: compute
        and cache it unless an earlier run did, then import the tracer and the predictor for the next views.

        Returns a future done when the first view can be answered at once (its exception says why it cannot:
        a request for it then computes it and reports the error), None without presets; a request arriving
        meanwhile is answered when the warm-up ends."""
        query = self.first_view()
        if query is None or self._first_view_ready is not None:
            return self._first_view_ready
        ready: Future[None] = Future()

        def prepare() -> bool:
            plan = self.plan(query)
            if self.cache.get(plan.key, count_miss=False) is not None:
                return True
            self._compute_and_store(plan)
            return False

        def work() -> None:
            with collector_paused():
                try:
                    cached = prepare()
                except Exception as exc:  # the server runs on; the first request reports it
                    ready.set_exception(exc)
                    return
                ready.set_result(None)
                if cached:  # an earlier run's answer: import the predictor and the tracer all the same
                    with contextlib.suppress(IreneError):
                        self._predictor(REFERENCE)
                        self.framework.trace(query.model, 1, 8, meta=True)

        self._first_view_ready = ready
        self._executor.submit(work)
        return ready

    def first_view(self) -> Query | None:
        """:data:`FIRST_VIEW`, with the first preset when that model is not one (None without presets)."""
        if not self.presets:
            return None
        model = FIRST_VIEW.model if FIRST_VIEW.model in self.presets else sorted(self.presets)[0]
        return Query("energy", model, FIRST_VIEW.batch_size, FIRST_VIEW.seq_len)

    def close(self) -> None:
        self._executor.shutdown()
        self.lister.shutdown()
        self.cache.close()

    # -- planning (on the event loop: cheap, no parsing) -------------------------------------------

    def plan(self, query: Query) -> Plan:
        """Check the names in ``query`` and make its cache key; raise IreneError if one is unknown."""
        query.check()
        snapshot = self.catalog.snapshot()
        entry: FileEntry | None = None
        if query.dataset is not None:
            source: Source = "dataset"
            entry = self.catalog.dataset(query.dataset)
        elif query.model in self.presets:
            source = "preset"
        elif query.model in snapshot.local_models:
            source, entry = "local", snapshot.local_models[query.model]
        else:
            raise IreneError(self._unknown_model(query.model))
        if source != "dataset" and self.framework is None:
            raise Unavailable(f"cannot trace '{query.model}': {self.framework_error}")
        predictor = self._plan_predictor(query.predictor) if query.kind == "energy" else None
        parts = [
            self._key_base, query.kind, source, query.model, query.batch_size, query.seq_len,
            entry.name if entry else None, entry.fingerprint if entry else None,
            predictor, self._predictor_fingerprint(predictor) if predictor else None,
            query.phase, query.context_len, query.dtype, query.logits,
        ]
        key = hashlib.sha256(json.dumps(parts).encode()).hexdigest()
        return Plan(query, source, entry, predictor, key)

    def _unknown_model(self, model: str) -> str:
        skipped = next((p for p in self.catalog.snapshot().problems if p.file == f"{model}/config.json"), None)
        if skipped is not None:
            return f"model dir '{model}' of the data dir is skipped: {skipped.message} (see /api/problems)"
        presets = ", ".join(sorted(self.presets)[:8]) + (", …" if len(self.presets) > 8 else "")
        local = ", ".join(sorted(self.catalog.snapshot().local_models)) or "none"
        return (
            f"unknown model '{model}': use a preset ({presets or 'no tracer installed'}), a model directory of the "
            f"data dir ({local}), or pass dataset= to read a record (see /api/models)"
        )

    def _plan_predictor(self, name: str | None) -> str:
        if name is None or name == REFERENCE:
            return REFERENCE
        if name in self.catalog.snapshot().predictors:
            return name
        known = ", ".join([REFERENCE, *sorted(self.catalog.snapshot().predictors)])
        raise IreneError(f"unknown predictor '{name}' (predictors: {known})")

    def _predictor_fingerprint(self, name: str) -> str:
        if name != REFERENCE:
            return self.catalog.snapshot().predictors[name].fingerprint
        if self._reference_fingerprint is None:
            self._reference_fingerprint = _reference_fingerprint()
        return self._reference_fingerprint

    # -- answering ---------------------------------------------------------------------------------

    async def answer(self, query: Query) -> tuple[Entry, bool]:
        """The JSON answer and whether it came from the cache; identical misses share one computation."""
        plan = self.plan(query)
        cached = self.cache.get(plan.key)
        if cached is not None:
            return cached, True
        task = self._inflight.get(plan.key)
        if task is None:
            loop = asyncio.get_running_loop()
            task = asyncio.wrap_future(self._executor.submit(self._compute_and_store, plan), loop=loop)
            self._inflight[plan.key] = task
            task.add_done_callback(functools.partial(self._finished, plan.key))
        return await asyncio.shield(task), False

    async def sweep(self, base: Query, vary: Vary, values: list[int], dataset: str | None = None) -> SweepView:
        """Predicted energy (and interval) of ``base``'s model at each of ``values`` of batch size, sequence
        length or decode context: one energy answer per point, each cached like any other. A point the model
        refuses (beyond its positions) carries its one-line error instead of figures. With ``dataset``, a
        point whose size the dataset holds a measured record of gets its measured energy too."""
        records = None if dataset is None else self.catalog.dataset(dataset)
        queries = [
            replace(base, batch_size=v) if vary == "batch" else replace(base, seq_len=v) if vary == "seq"
            else replace(base, context_len=v)
            for v in values
        ]
        for q in queries:  # every name and combination checked before anything is computed
            self.plan(q)
        points, head = [], None
        for value, q in zip(values, queries, strict=True):
            entry, _ = await self.answer(q)
            body = json.loads(entry.body)
            point = SweepPoint(value=value, batch_size=q.batch_size, seq_len=q.seq_len, context_len=q.context_len,
                               predicted_energy=None)
            if entry.status != 200:
                points.append(point.model_copy(update={"error": body.get("detail")}))
                continue
            head = head or body
            root, tokens = body["root"], body.get("per_token") or {}
            measured = None if records is None else await asyncio.wrap_future(
                self.lister.submit(self._measured, records, q))
            points.append(point.model_copy(update={
                "predicted_energy": root.get("predicted_energy"), "predicted_low": root.get("predicted_low"),
                "predicted_high": root.get("predicted_high"), "extrapolated": bool(root.get("extrapolated")),
                "energy_j_per_token": tokens.get("energy_j_per_token"), "context_len": body.get("context_len"),
                "measured_energy": measured,
            }))
        return SweepView(model=base.model, vary=vary, points=points, phase=(head or {}).get("phase", base.phase),
                         dtype=(head or {}).get("dtype", base.dtype), predictor=(head or {}).get("predictor"),
                         hardware=(head or {}).get("hardware"))

    async def whatif(self, query: WhatIfQuery) -> WhatIfResult:
        """The what-if of ``query`` (``POST /api/whatif``): presets of the tracer only, predicted by ``reference``
        or a predictor of the data dir, on the worker with the loaded predictor; meta traces are kept across
        requests (:data:`WHATIF_TRACES`), so a repeat or a new accuracy file only predicts again."""
        name = self._check_whatif(query)
        future = self._executor.submit(self._whatif, query.model_copy(update={"predictor": name}))
        return await asyncio.wrap_future(future, loop=asyncio.get_running_loop())

    def _check_whatif(self, query: WhatIfQuery) -> str:
        """Refuse, in one line naming the field, what the server does not compute; the predictor's name."""
        if self.framework is None:
            raise Unavailable(f"cannot trace: {self.framework_error}")
        limits = self.config.limits
        if query.framework != self.config.framework:
            raise IreneError(f"framework: this server traces with '{self.config.framework}'")
        if query.batch_size > limits.max_batch_size or query.seq_len > limits.max_seq_len:
            raise IreneError(f"batch_size, seq_len: at most {limits.max_batch_size} and {limits.max_seq_len}")
        for key, values in query.vary.items():
            bound = WHATIF_MAX_LAYERS if "layer" in key.lower() else WHATIF_MAX_VALUE
            if any(not 1 <= v <= bound for v in values):
                raise IreneError(f"vary {key}: values from 1 to {bound}")
        try:
            specs = whatif_plan(query)
        except IreneError as exc:
            raise _as_fields(exc) from None
        unknown = next((s.model for s in specs if s.model not in self.presets), None)
        if unknown is not None:
            field = "base" if query.base is not None else "models"
            shown = ", ".join(sorted(self.presets)[:8]) + (", …" if len(self.presets) > 8 else "")
            raise IreneError(f"{field}: unknown model '{unknown}': the what-if takes presets of the tracer ({shown}; "
                             "see /api/models)")
        return REFERENCE if query.predictor in ("model", REFERENCE) else self._plan_predictor(query.predictor)

    def _whatif(self, query: WhatIfQuery) -> WhatIfResult:
        """Runs on the worker: the loaded predictor, the kept traces."""
        try:
            return whatif(query, predictor=self._predictor(query.predictor), trace_cache=self._traces)
        except Unavailable:
            raise
        except IreneError as exc:
            raise _as_fields(exc) from None
        except Exception as exc:  # a setting the model's code cannot take: the query, not the server, is at fault
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise IreneError(f"cannot compute this what-if ({type(exc).__name__}: {first})") from None

    def _measured(self, entry: FileEntry, q: Query) -> float | None:
        """The measured energy (J per call) of the dataset's record of ``q``'s size, if it has one."""
        try:
            record = self.catalog.record(entry, q.model, q.batch_size, q.seq_len, phase=q.phase,
                                         context_len=q.context_len, dtype=q.dtype)
        except IreneError:
            return None
        return record.root.ground_truth_energy

    def _finished(self, key: str, task: asyncio.Future[Entry]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here so that no waiter left means no "never retrieved" noise

    def _compute_and_store(self, plan: Plan) -> Entry:
        """The answer, or the refusal (status 422), stored in the cache; Unavailable is not stored. An answer
        stored while this waited its turn (the warm-up's) is not computed again."""
        stored = self.cache.get(plan.key, count_miss=False)
        if stored is not None:
            return stored
        self.computations += 1
        try:
            return self.cache.put(plan.key, self.compute(plan).model_dump_json().encode())
        except Unavailable:
            raise
        except IreneError as exc:
            return self.cache.put(plan.key, ApiError(detail=str(exc)).model_dump_json().encode(), status=422)
        except RecursionError:
            detail = f"the tree of '{plan.query.model}' is nested too deeply to be served"
            return self.cache.put(plan.key, ApiError(detail=detail).model_dump_json().encode(), status=422)

    def compute(self, plan: Plan) -> TreeView:
        """The answer of one planned request (runs in the worker thread)."""
        q = plan.query
        record = self._source_record(plan)
        count = sum(1 for _ in record.nodes(include_synthetic=True))
        limit = self.config.limits.max_tree_nodes
        if count > limit:
            raise IreneError(f"the tree of '{q.model}' has {count} nodes, more than the server's limit of {limit}")
        common = dict(source=plan.source, dataset=q.dataset, **record.model_dump(exclude={"root"}))
        if q.kind == "tree":
            root = _structure(record.root)
            return TreeView(root=root, node_count=sum(1 for _ in root.walk()), per_token=per_token(record), **common)
        name = plan.predictor or REFERENCE
        predictor = self._predictor(name)
        if BYTES_MOVED in getattr(predictor, "feature_names_", ()) and lacks_bytes_moved(record):
            add_bytes_moved([record])  # an imported record: the tracer's bytes, once (kept on the record)
        try:
            (predicted,) = predictor.predict([record])
        except IreneError:
            raise
        except Exception as exc:  # malformed predictor files: the predictor, not the request, is at fault
            raise self._broken(name, f"fails ({type(exc).__name__}: {exc})") from None
        if any(n.predicted_energy is not None and not math.isfinite(n.predicted_energy)
               for n in predicted.root.walk()):
            raise self._broken(name, "predicts non-finite energies (NaN or infinite numbers in its files?)")
        common.update(meta=predicted.meta, notices=predicted.notices)  # warnings travel with this answer
        return EnergyView(root=predicted.root, node_count=sum(1 for _ in predicted.root.walk()),
                          predictor=plan.predictor, hardware=getattr(predictor, "hardware", None),
                          error_basis=error_basis(record, predictor), per_token=per_token(predicted), **common)

    def _source_record(self, plan: Plan) -> TreeRecord:
        q = plan.query
        if plan.source == "dataset":
            assert plan.entry is not None
            return self.catalog.record(plan.entry, q.model, q.batch_size, q.seq_len,
                                       phase=q.phase, context_len=q.context_len, dtype=q.dtype)
        options = phase_options(self.framework, {"device": "cpu", "meta": True, **q.trace_options()})
        if plan.source == "preset":
            record: TreeRecord = self.framework.trace(q.model, q.batch_size, q.seq_len, **options).record
            return record
        assert plan.entry is not None and plan.entry.shape is not None
        needed, limit = plan.entry.shape.bytes_needed(q.batch_size, q.seq_len), self.config.limits.max_model_bytes
        if needed > limit:
            raise IreneError(
                f"model '{q.model}' is too large to trace here: about {plan.entry.shape.parameters:.3g} parameters "
                f"and activations at batch_size={q.batch_size}, seq_len={q.seq_len} need ~{needed / 2**30:.3g} GiB, "
                f"more than the server's limit of {limit / 2**30:.3g} GiB"
            )
        if plan.entry.shape.layers > self.config.limits.max_tree_nodes:
            raise IreneError(f"model '{q.model}' has {plan.entry.shape.layers} layers, more than the server's limit "
                             f"of {self.config.limits.max_tree_nodes} tree nodes")
        try:
            traced = self.framework.trace(str(plan.entry.path), q.batch_size, q.seq_len, **options)
        except IreneError:
            raise
        except Exception as exc:  # the data dir's config.json, not the server, is at fault
            raise IreneError(f"{plan.entry.name}/config.json: cannot build this model ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        local: TreeRecord = traced.record.model_copy(update={"model_name": q.model})
        return local

    def _broken(self, name: str, what: str) -> Unavailable:
        """Note a data-dir predictor that loads but cannot predict (listed by :meth:`problems`)."""
        message = f"predictor '{name}' {what}"
        if name != REFERENCE:
            self._failures[f"{name}/{PREDICTOR_MARKER}"] = (self._predictor_fingerprint(name), message)
        return Unavailable(message)

    def _predictor(self, name: str) -> Any:
        fingerprint = self._predictor_fingerprint(name)
        with self._predictor_lock:
            found = self._predictors.get((name, fingerprint))
            if found is None:
                found = _load_predictor(name, self.catalog.snapshot().predictors.get(name))
                self._predictors = {k: v for k, v in self._predictors.items() if k[0] != name}
                self._predictors[(name, fingerprint)] = found
            return found

    # -- listings ----------------------------------------------------------------------------------

    def models(self) -> ModelsView:
        """Everything that can be asked for (parses dataset files: call it off the event loop)."""
        snapshot = self.catalog.snapshot()
        models = [ModelEntry(name=m, source="preset") for m in sorted(self.presets)]
        models += [ModelEntry(name=m, source="local") for m in sorted(snapshot.local_models)]
        datasets = []
        for entry in snapshot.datasets.values():
            try:
                index = self.catalog.index(entry)
            except OSError as exc:
                datasets.append(DatasetEntry(name=entry.name, records=0, error=f"{entry.name}: {exc.strerror or exc}"))
                continue
            datasets.append(DatasetEntry(name=entry.name, records=len(index.offsets), error=index.error))
            sizes: dict[str, list[tuple[int, int]]] = {}
            for model, b, s in sorted({k[:3] for k in index.offsets}):
                sizes.setdefault(model, []).append((b, s))
            models += [
                ModelEntry(name=m, source="dataset", dataset=entry.name, sizes=sz, measured=m in index.measured)
                for m, sz in sizes.items()
            ]
        predictors, error = [], None
        for name in [REFERENCE, *sorted(snapshot.predictors)]:
            try:
                hardware = getattr(self._predictor(name), "hardware", None)
            except IreneError as exc:
                error = error or str(exc)
                continue
            predictors.append(PredictorEntry(name=name, hardware=hardware, default=name == REFERENCE))
        limits = self.config.limits
        first = self.first_view()
        return ModelsView(
            first_view=None if first is None else FirstView(model=first.model, batch_size=first.batch_size,
                                                             seq_len=first.seq_len),
            framework=self.config.framework if self.framework else None, framework_error=self.framework_error,
            models=models, datasets=datasets, predictors=predictors, predictor_error=error,
            limits=LimitsView(max_batch_size=limits.max_batch_size, max_seq_len=limits.max_seq_len,
                              max_context_len=limits.max_context_len,
                              max_tree_nodes=limits.max_tree_nodes),
        )

    def problems(self) -> ProblemsView:
        """Every file of the data dir that is skipped, and why (reads datasets and predictors: off the event loop)."""
        snapshot = self.catalog.snapshot()
        found = list(snapshot.problems)
        for entry in snapshot.datasets.values():
            try:
                index = self.catalog.index(entry)
            except OSError as exc:
                found.append(Problem(file=entry.name, message=f"cannot be read: {exc.strerror or exc}"))
                continue
            if index.problem is not None:
                more = f" (and {index.bad_lines - 1} more unreadable line(s))" if index.bad_lines > 1 else ""
                found.append(index.problem.model_copy(update={"message": index.problem.message + more}))
        for name, entry in snapshot.predictors.items():
            file = f"{name}/{PREDICTOR_MARKER}"
            try:
                self._predictor(name)
            except IreneError as exc:
                found.append(Problem(file=file, message=str(exc).replace(f"{self.catalog.root}/", "")))
                continue
            failure = self._failures.get(file)
            if failure is not None and failure[0] == entry.fingerprint:
                found.append(Problem(file=file, message=failure[1]))
        return ProblemsView(problems=sorted(found, key=lambda p: (p.file, p.line or 0)))

    def status(self) -> StatusView:
        return StatusView(version=__version__, cache_path=str(self.cache.path), cache_entries=len(self.cache),
                          cache_hits=self.cache.hits, cache_misses=self.cache.misses,
                          computations=self.computations, inflight=len(self._inflight))


def _structure(node: Node) -> Node:
    """A copy with model features only, no energies and no OwnOps pseudo-children."""
    return Node(
        id=node.id, scope=node.scope, type=node.type, level=node.level,
        features={k: v for k, v in node.features.items() if k in MODEL_FEATURES},
        children=[_structure(c) for c in node.children if not c.synthetic],
    )


def _load_predictor(name: str, entry: FileEntry | None) -> Any:
    try:
        from irene_core.predictor.predictor import Predictor, load_reference_predictor
    except ImportError as exc:
        raise Unavailable(f"no predictor is installed ({exc})") from None
    try:
        if name == REFERENCE:
            return load_reference_predictor(features="model")
        assert entry is not None
        return Predictor.load(entry.path)
    except Exception as exc:  # whatever a data dir's file makes the loader raise, the request is not at fault
        raise Unavailable(f"predictor '{name}' cannot be loaded: {exc}") from None


def plugin_versions() -> list[str]:
    """``distribution==version`` of every plugin the registry loaded (core's default plugins included)."""
    return sorted({f"{p.distribution}=={p.version}" for p in get_registry().plugins})


def error_basis(record: TreeRecord, predictor: Any) -> ErrorBasis | None:
    """What the errors of ``record`` against ``predictor``'s predictions are (None without measured energy):
    in-sample when its model is among the predictor's training models (or they are unknown), else held-out."""
    if not any(n.ground_truth_energy is not None for n in record.root.walk()):
        return None
    trained = getattr(predictor, "training_", {}).get("models")
    return "held-out" if trained and record.model_name not in trained else "in-sample"


def _reference_fingerprint() -> str:
    """Changes when the shipped predictor files do (their sizes and mtimes)."""
    data = Path(__file__).resolve().parent.parent / "predictor" / "reference"
    files = sorted(p for p in data.rglob("*") if p.is_file()) if data.is_dir() else []
    return ";".join(f"{p.relative_to(data)}={p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files) or "none"
