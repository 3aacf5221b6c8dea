"""The IrEne-viz web app: the page, and a read-only JSON API described at ``/openapi.json``."""

# No ``from __future__ import annotations`` here: FastAPI must see the parameter types that
# ``create_app`` builds from the configured limits when the routes are declared.
import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from fastapi import Body, FastAPI, Request
from fastapi import Query as Q
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from irene_core._version import __version__
from irene_core.errors import IreneError
from irene_core.viz.cache import GZIP_MIN_BYTES, Entry
from irene_core.viz.catalog import ProblemsView
from irene_core.viz.config import ServeConfig
from irene_core.viz.energy_service import EnergyService, Query, Unavailable
from irene_core.viz.schemas import (
    ApiError,
    EnergyView,
    FieldError,
    ModelsView,
    StatusView,
    SweepView,
    TreeView,
    Vary,
)
from irene_core.whatif import MAX_POINTS, WhatIfQuery, WhatIfResult

WEB_DIR = Path(__file__).resolve().parent / "web"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/@+\-]*$"
MAX_NAME = 200
#: Most points of one /api/sweep.
MAX_SWEEP = 16
#: The example body of /api/whatif (the API page's and the schema's).
WHATIF_EXAMPLE = {"models": ["bert-L2-H128", "bert-L4-H256", "bert-L4-H512"], "batch_size": 16, "seq_len": 128,
                  "accuracy": {"bert-L2-H128": 0.62, "bert-L4-H256": 0.7, "bert-L4-H512": 0.73}, "budget_j": 5}
#: The page loads only its own files and talks only to this server.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ApiError, "description": "Invalid or unknown parameter, or a bound exceeded"},
    503: {"model": ApiError, "description": "The tracer or predictor this needs is not installed or cannot be loaded"},
}


def _error(status: int, detail: str, errors: list[FieldError] | None = None) -> JSONResponse:
    return JSONResponse(ApiError(detail=detail, errors=errors or []).model_dump(), status_code=status)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header allows gzip (``gzip``, else ``*``, with a q-value above 0)."""
    weights: dict[str, float] = {}
    for item in accept_encoding.lower().split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        try:
            weights[coding] = float(next((p[2:] for p in params if p.startswith("q=")), "1"))
        except ValueError:
            weights[coding] = 0.0
    return weights.get("gzip", weights.get("*", 0.0)) > 0


def _json(entry: Entry, cached: bool, headers_in: Headers) -> Response:
    """An answer from the cache: its stored gzip body where the client accepts gzip, 304 on a matching tag."""
    packed = entry.gzipped is not None and accepts_gzip(headers_in.get("accept-encoding", ""))
    etag = entry.gzip_etag if packed else entry.etag
    headers = {"ETag": etag, "Cache-Control": "no-cache", "X-Irene-Cache": "hit" if cached else "miss"}
    vary = {"Vary": "Accept-Encoding"} if entry.gzipped is not None else {}
    if entry.status == 200 and etag in {t.strip() for t in headers_in.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers | vary)
    if packed:
        assert entry.gzipped is not None
        return Response(entry.gzipped, status_code=entry.status, media_type="application/json",
                        headers=headers | vary | {"Content-Encoding": "gzip"})
    # GZipMiddleware passes this answer on uncompressed and adds Vary itself
    return Response(entry.body, status_code=entry.status, media_type="application/json", headers=headers)


_PHASE_PARAMS = frozenset({"phase", "context_len", "dtype", "logits"})
_FAST_ROUTES: dict[str, tuple[Literal["energy", "tree"], frozenset[str]]] = {
    "/api/energy": ("energy", frozenset({"model", "batch_size", "seq_len", "predictor", "dataset"}) | _PHASE_PARAMS),
    "/api/tree": ("tree", frozenset({"model", "batch_size", "seq_len", "dataset"}) | _PHASE_PARAMS),
}
_PLAIN_INT = re.compile(r"[1-9][0-9]{0,8}")


def _plain_query(scope: Scope) -> Query | None:
    """The query of a GET of an answer route when it is plain (each parameter once, integers in decimal)."""
    kind, allowed = _FAST_ROUTES[scope["path"]]
    pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    params = dict(pairs)
    if (
        len(params) != len(pairs)
        or not params.keys() <= allowed
        or not {"model", "batch_size", "seq_len"} <= params.keys()
    ):
        return None
    if not all(_PLAIN_INT.fullmatch(params[k]) for k in ("batch_size", "seq_len", "context_len") if k in params):
        return None
    context = params.get("context_len")
    return Query(kind, params["model"], int(params["batch_size"]), int(params["seq_len"]),
                 params.get("predictor"), params.get("dataset"), params.get("phase"),
                 None if context is None else int(context), params.get("dtype"), params.get("logits"))


class CachedAnswers:
    """ASGI middleware: answer an already computed query straight from the cache, before FastAPI's
    parameter handling (about 1 ms a request). Anything else (a miss, an unknown name, an unusual
    query) goes on to the validated routes; only answers of queries that passed them are ever cached."""

    def __init__(self, app: ASGIApp, service: EnergyService):
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] in _FAST_ROUTES:
            query = _plain_query(scope)
            entry = None
            if query is not None:
                with contextlib.suppress(IreneError):
                    entry = self.service.cache.get(self.service.plan(query).key, count_miss=False)
            if entry is not None:
                await _json(entry, True, Headers(scope=scope))(scope, receive, send)
                return
        await self.app(scope, receive, send)


class HeadAsGet:
    """ASGI middleware: answer HEAD like GET (same status and headers, Content-Length included), without the body."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_head(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_head)


class Guard:
    """ASGI middleware: refuse foreign Host headers (DNS rebinding) and add security headers."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None):
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.hosts is not None and _host_name(Headers(scope=scope).get("host", "")) not in self.hosts:
            await _error(400, "invalid Host header (this server answers only to its own address)")(scope, receive, send)
            return
        page = not scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if page:
                    headers.setdefault("Content-Security-Policy", PAGE_CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _host_name(header: str) -> str:
    """``[::1]:8000`` → ``::1``; ``localhost:8000`` → ``localhost``."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def create_app(config: ServeConfig, service: EnergyService | None = None) -> FastAPI:
    """A FastAPI app serving ``config``'s data; ``service`` is created from ``config`` when not given."""
    svc = service if service is not None else EnergyService(config)
    limits = config.limits

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if config.warm_up:
            svc.warm_up()
        yield
        svc.close()

    app = FastAPI(
        title="IrEne-viz",
        version=__version__,
        description="Read-only API of IrEne: a transformer's energy tree, predicted (and measured) node by node.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(CachedAnswers, service=svc)  # innermost: cached answers carry their own gzip body
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES)
    app.add_middleware(HeadAsGet)
    app.add_middleware(Guard, hosts=None if "*" in config.allowed_hosts else frozenset(config.allowed_hosts))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [FieldError(loc=[p for p in e.get("loc", ()) if isinstance(p, (str, int))], msg=e.get("msg", ""))
                  for e in exc.errors()]
        detail = "; ".join(f"{e.loc[-1] if e.loc else 'request'}: {e.msg}" for e in errors) or "invalid request"
        return _error(422, detail, errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    Model = Annotated[str, Q(min_length=1, max_length=MAX_NAME, pattern=NAME_PATTERN, examples=["bert-base-uncased"],
                             description="a preset, a local model dir of the data dir, or a model of `dataset`")]
    Batch = Annotated[int, Q(ge=1, le=limits.max_batch_size, examples=[8], description="batch size")]
    Seq = Annotated[int, Q(ge=1, le=limits.max_seq_len, examples=[128], description="sequence length (tokens)")]
    Dataset = Annotated[str | None, Q(min_length=1, max_length=MAX_NAME, pattern=NAME_PATTERN,
                                      description="a JSONL file of the data dir to read the record from")]
    Predictor = Annotated[str | None, Q(min_length=1, max_length=MAX_NAME, pattern=NAME_PATTERN,
                                        description="'reference' (default) or a predictor dir of the data dir")]
    Phase = Annotated[Literal["forward", "prefill", "decode"] | None, Q(
        description="forward (the model's forward pass, default), prefill (the prompt, filling a KV cache) or decode "
        "(one token per sequence after context_len cached tokens; seq_len=1); with dataset=, picks that record")]
    Context = Annotated[int | None, Q(ge=1, le=limits.max_context_len, description="tokens in the KV cache (decode)")]
    Dtype = Annotated[Literal["float32", "bfloat16", "float16"] | None, Q(
        description="parameter dtype (default: bfloat16 for the modern decoder presets, else float32)")]
    Logits = Annotated[Literal["last", "all"] | None, Q(
        description="prefill: positions through the language-model head (default last)")]

    async def answer(query: Query, request: Request) -> Response:
        try:
            entry, cached = await svc.answer(query)
        except Unavailable as exc:
            return _error(503, str(exc))
        except IreneError as exc:
            return _error(422, str(exc))
        return _json(entry, cached, request.headers)

    @app.get("/api/models", response_model=ModelsView)
    async def models() -> ModelsView:
        """Presets, local model dirs, datasets with their models and sizes, predictors, and the bounds."""
        return await asyncio.wrap_future(svc.lister.submit(svc.models))

    @app.get("/api/problems", response_model=ProblemsView)
    async def problems() -> ProblemsView:
        """Files of the data dir that are skipped (or partly skipped), each with what is wrong."""
        return await asyncio.wrap_future(svc.lister.submit(svc.problems))

    @app.get("/api/energy", response_model=EnergyView, responses=ERRORS)
    async def energy(request: Request, model: Model, batch_size: Batch, seq_len: Seq,
                     predictor: Predictor = None, dataset: Dataset = None, phase: Phase = None,
                     context_len: Context = None, dtype: Dtype = None, logits: Logits = None) -> Response:
        """The tree with predicted energy (J per call for the whole batch) on every node, measured energy where
        the record has it, every node's features, and the per-token figures of the call."""
        return await answer(Query("energy", model, batch_size, seq_len, predictor, dataset, phase, context_len,
                                  dtype, logits), request)

    @app.get("/api/tree", response_model=TreeView, responses=ERRORS)
    async def tree(request: Request, model: Model, batch_size: Batch, seq_len: Seq,
                   dataset: Dataset = None, phase: Phase = None, context_len: Context = None,
                   dtype: Dtype = None, logits: Logits = None) -> Response:
        """The tree's structure with model features only (no energy)."""
        return await answer(Query("tree", model, batch_size, seq_len, None, dataset, phase, context_len, dtype,
                                  logits), request)

    @app.get("/api/sweep", response_model=SweepView, responses=ERRORS)
    async def sweep(model: Model, vary: Annotated[Vary, Q(description="the parameter that varies")],
                    values: Annotated[str, Q(max_length=200, pattern=r"^[0-9]+(,[0-9]+)*$", examples=["1,2,4,8"],
                                             description=f"up to {MAX_SWEEP} distinct values, comma-separated")],
                    batch_size: Batch = 1, seq_len: Seq = 128, predictor: Predictor = None, phase: Phase = None,
                    context_len: Context = None, dtype: Dtype = None, dataset: Dataset = None) -> Response:
        """Predicted energy (J per call for the whole batch, with its 90 % interval) of a preset or local model
        as batch size, sequence length or decode context varies; each point is an /api/energy answer. With
        ``dataset``, points whose size it holds a record of carry that record's measured energy."""
        points = [int(v) for v in values.split(",")]
        bound = {"batch": limits.max_batch_size, "seq": limits.max_seq_len, "context": limits.max_context_len}[vary]
        if len(points) > MAX_SWEEP or len(set(points)) != len(points) or not all(1 <= v <= bound for v in points):
            return _error(422, f"values: up to {MAX_SWEEP} distinct values from 1 to {bound} for vary={vary}")
        try:
            view = await svc.sweep(Query("energy", model, batch_size, seq_len, predictor, None, phase, context_len,
                                         dtype), vary, sorted(points), dataset)
        except Unavailable as exc:
            return _error(503, str(exc))
        except IreneError as exc:
            return _error(422, str(exc))
        return JSONResponse(view.model_dump(mode="json"))

    @app.post("/api/whatif", response_model=WhatIfResult, responses=ERRORS, description=(
        f"Predicted energy (J per call for the whole batch, with its 90 % interval) of up to {MAX_POINTS} presets, "
        "or of one preset with architecture settings varied (`vary`: layers, hidden, heads, intermediate or a "
        "config attribute; the points are their cartesian product), each split by module type; with `accuracy` "
        "(model name → score, higher is better) the energy-vs-accuracy Pareto front and the answers to `budget_j` "
        "(best accuracy within that many J) and `min_accuracy` (least energy for at least that accuracy). Every "
        "point is traced on the meta device; the traces are kept, so a repeat only predicts again."))
    async def whatif(query: Annotated[WhatIfQuery, Body(examples=[WHATIF_EXAMPLE])]) -> Response:
        try:
            result = await svc.whatif(query)
        except Unavailable as exc:
            return _error(503, str(exc))
        except IreneError as exc:
            return _error(422, str(exc))
        return JSONResponse(result.model_dump(mode="json"))

    @app.get("/api/status", response_model=StatusView)
    async def status() -> StatusView:
        """Version and cache counters."""
        return svc.status()

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    @app.get("/api", include_in_schema=False)
    async def api_page() -> FileResponse:
        """The API's reference, drawn from /openapi.json by the page's own script (works offline, no CDN)."""
        return FileResponse(WEB_DIR / "api.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    return app
