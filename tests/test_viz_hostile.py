"""`irene serve` stays up on a hostile data dir: bad files are skipped and listed by /api/problems, special
files are never opened, a too-large model is refused before tracing (and the refusal cached), and SIGTERM
or Ctrl-C stop a real server promptly, even while a request is being computed."""

from __future__ import annotations

import hashlib
import io
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from irene_core.predictor.predictor import REFERENCE_DIR
from irene_core.tree.jsonl import write_records
from irene_core.viz.app import create_app
from irene_core.viz.config import ServeConfig
from irene_core.viz.energy_service import EnergyService

IRENE = Path(sys.executable).with_name("irene")
NO_PLUGINS = {**os.environ, "IRENE_LOAD_PLUGINS": "none"}  # datasets only: no tracer import at startup
FEATURES = {"batch_size": 1.0, "seq_len": 8.0, "flops": 1e6, "mem_bytes": 1e4, "num_parameters": 10.0}


def _deep_tree_line(depth: int) -> str:
    """A valid v2 record whose tree is a chain ``depth`` modules deep (built as text: no recursion)."""
    node = lambda i, level, kids: (  # noqa: E731
        f'{{"id":"n{i}","scope":"s{i}","type":"Mod","level":"{level}","features":{json.dumps(FEATURES)},'
        f'"children":[{kids}]}}'
    )
    tree = node(depth, "ml", "")
    for i in reversed(range(depth)):
        tree = node(i, "model" if i == 0 else "module", tree)
    return f'{{"schema_version":2,"model_name":"deep","batch_size":1,"seq_len":8,"device":"d","root":{tree}}}\n'


def _copy_predictor(target: Path, nan: bool) -> Path:
    """A copy of the shipped model-features predictor; with ``nan``, every float array is NaN (hash updated)."""
    shutil.copytree(REFERENCE_DIR / "model", target)
    if nan:
        with np.load(target / "arrays.npz") as npz:
            arrays = {k: np.full_like(npz[k], np.nan) if npz[k].dtype.kind == "f" else npz[k] for k in npz.files}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        (target / "arrays.npz").write_bytes(buffer.getvalue())
        manifest = json.loads((target / "predictor.json").read_text(encoding="utf-8"))
        manifest["arrays_sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
        (target / "predictor.json").write_text(json.dumps(manifest), encoding="utf-8")
    return target


@pytest.fixture()
def hostile_dir(tmp_path, device1_records) -> Path:
    root = tmp_path / "data"
    write_records(root / "good.jsonl", [r for r in device1_records if r.key[:3] == ("distilgpt2", 8, 32)])
    (root / "nested.jsonl").write_text("[" * 10_000 + "]" * 10_000 + "\n", encoding="utf-8")
    (root / "deep.jsonl").write_text(_deep_tree_line(200), encoding="utf-8")
    (root / "small.jsonl").write_text(_deep_tree_line(3), encoding="utf-8")
    (root / "bytes.jsonl").write_bytes(b'{"model_name": "\xff\xfe"}\n')
    (root / "badmodel").mkdir()
    (root / "badmodel" / "config.json").write_text('{"model_type": "bert", "hidden_size": ', encoding="utf-8")
    (root / "strange").mkdir()
    (root / "strange" / "config.json").write_text('{"hidden_size": "huge"}', encoding="utf-8")
    (root / "badpred").mkdir()
    (root / "badpred" / "predictor.json").write_text("[" * 10_000, encoding="utf-8")
    _copy_predictor(root / "nanpred", nan=True)
    _copy_predictor(root / "okpred", nan=False)
    os.mkfifo(root / "pipe.jsonl")
    return root


@pytest.fixture()
def client(hostile_dir, tmp_path):
    config = ServeConfig(data_dir=hostile_dir, cache_path=tmp_path / "c.sqlite")
    with TestClient(create_app(config), base_url="http://127.0.0.1") as c:
        yield c


def test_bad_files_are_skipped_and_reported_never_a_500(client):
    models = client.get("/api/models")
    assert models.status_code == 200
    body = models.json()
    assert {(m["name"], m["dataset"]) for m in body["models"] if m["source"] == "dataset"} == {
        ("distilgpt2", "good.jsonl"), ("deep", "deep.jsonl"), ("deep", "small.jsonl")}
    assert not {"badmodel", "strange"} & {m["name"] for m in body["models"] if m["source"] == "local"}
    assert {p["name"] for p in body["predictors"]} >= {"reference", "okpred"}
    assert "badpred" not in {p["name"] for p in body["predictors"]}
    problems = {(p["file"], p["line"]): p["message"] for p in client.get("/api/problems").json()["problems"]}
    assert problems.pop(("nested.jsonl", 1)) == "JSON nested deeper than 512 levels"
    assert problems.pop(("bytes.jsonl", 1)).startswith("not UTF-8")
    assert problems.pop(("badmodel/config.json", None)).startswith("invalid config.json: JSONDecodeError")
    assert problems.pop(("strange/config.json", None)) == (
        "invalid config.json: 'hidden_size' must be a non-negative integer, got 'huge'")
    assert problems.pop(("badpred/predictor.json", None)).startswith("predictor 'badpred' cannot be loaded")
    assert problems.pop(("pipe.jsonl", None)) == "a FIFO, not a regular file: ignored"
    assert set(problems) <= {("nanpred/predictor.json", None)}  # once its load validates the arrays
    refused = client.get("/api/tree", params={"model": "badmodel", "batch_size": 1, "seq_len": 8})
    assert refused.status_code == 422 and "skipped: invalid config.json" in refused.json()["detail"]


def test_a_200_deep_tree_is_refused_then_reported_and_unlisted(client):
    query = {"model": "deep", "batch_size": 1, "seq_len": 8}
    assert client.get("/api/tree", params={**query, "dataset": "small.jsonl"}).json()["node_count"] == 4
    tree = client.get("/api/tree", params={**query, "dataset": "deep.jsonl"})
    assert tree.status_code == 422 and tree.json()["detail"].startswith("deep.jsonl:1: the tree is more than")
    problems = client.get("/api/problems").json()["problems"]
    assert [p["message"] for p in problems if p["file"] == "deep.jsonl"] == [tree.json()["detail"][14:]]
    assert "deep.jsonl" not in {m["dataset"] for m in client.get("/api/models").json()["models"]}


def test_a_predictor_of_nan_arrays_is_a_problem_not_a_500(client):
    query = {"model": "deep", "batch_size": 1, "seq_len": 8, "dataset": "small.jsonl"}
    for _ in range(2):
        broken = client.get("/api/energy", params={**query, "predictor": "nanpred"})
        assert broken.status_code == 503 and "predictor 'nanpred'" in broken.json()["detail"]
    problems = client.get("/api/problems").json()["problems"]
    assert [p["message"].startswith("predictor 'nanpred'") for p in problems if p["file"] == "nanpred/predictor.json"
            ] == [True]


def test_problems_is_in_the_openapi_schema(client):
    schema = client.get("/openapi.json").json()
    ok = schema["paths"]["/api/problems"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/ProblemsView"}
    assert set(schema["components"]["schemas"]["Problem"]["properties"]) == {"file", "line", "message"}


def test_a_too_large_model_is_refused_before_tracing_and_the_refusal_cached(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "giant").mkdir(parents=True)
    (data / "giant" / "config.json").write_text(json.dumps(
        {"model_type": "bert", "hidden_size": 2**20, "num_hidden_layers": 96, "num_attention_heads": 16}))
    config = ServeConfig(data_dir=data, cache_path=tmp_path / "c.sqlite")
    service = EnergyService(config)
    if service.framework is None:
        pytest.skip("no tracer installed")
    monkeypatch.setattr(service.framework, "trace", lambda *a, **k: pytest.fail("traced a too-large model"))
    query = {"model": "giant", "batch_size": 1, "seq_len": 8}
    with TestClient(create_app(config, service), base_url="http://127.0.0.1") as c:
        first, second = c.get("/api/tree", params=query), c.get("/api/tree", params=query)
    assert (first.status_code, second.status_code) == (422, 422)
    assert first.json()["detail"].startswith("model 'giant' is too large to trace here: about 1.27e+15 parameters")
    assert (first.headers["x-irene-cache"], second.headers["x-irene-cache"]) == ("miss", "hit")
    assert second.content == first.content and service.computations == 1


# -- a real `irene serve` process ---------------------------------------------------------------------------

SLOW_SERVE = """
import sys, time
from irene_core.viz.energy_service import EnergyService
def stuck(self, plan):
    print("computing", file=sys.stderr, flush=True)
    time.sleep(3600)  # a trace that never ends, in the worker thread
EnergyService.compute = stuck
EnergyService.warm_up = lambda self: None  # "computing" is then the request's, not the first view's
from irene_core.cli.app import main
sys.exit(main(sys.argv[1:]))
"""


def _interruptible() -> None:
    """Ctrl-C as in a terminal: the test process may run with SIGINT ignored (a child inherits that, and then
    uvicorn's re-raised SIGINT after a graceful shutdown is ignored too: exit 0)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(cmd: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=NO_PLUGINS,
                            preexec_fn=_interruptible)
    line = _line(proc, proc.stdout, 60)
    assert line.startswith("IrEne-viz at http://127.0.0.1:"), line
    return proc, line.split()[2]


def _line(proc: subprocess.Popen[str], stream: object, timeout: float) -> str:
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)  # type: ignore[arg-type]
    if not sel.select(timeout):
        proc.kill()
        raise AssertionError(f"irene serve printed nothing in {timeout} s")
    return stream.readline()  # type: ignore[attr-defined,no-any-return]


def _stops(proc: subprocess.Popen[str], sig: int) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError(f"irene serve still running 10 s after {signal.Signals(sig).name}") from None


def test_a_fifo_and_a_socket_are_never_opened_and_sigterm_stops_an_idle_server(tmp_path, device1_records):
    data = Path(f"/tmp/irene-viz-{os.getpid()}")  # short: a socket path is at most 107 bytes
    data.mkdir()
    try:
        write_records(data / "good.jsonl", [r for r in device1_records if r.key[:3] == ("distilgpt2", 8, 32)])
        os.mkfifo(data / "pipe.jsonl")
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(str(data / "sock.jsonl"))
            proc, url = _start([str(IRENE), "serve", "--port", "0", "--data-dir", str(data),
                                "--cache", str(tmp_path / "c.sqlite")])
            try:
                assert [d["name"] for d in httpx.get(f"{url}api/models", timeout=20).json()["datasets"]] == [
                    "good.jsonl"]
                problems = httpx.get(f"{url}api/problems", timeout=20).json()["problems"]
                assert [(p["file"], p["message"]) for p in problems] == [
                    ("pipe.jsonl", "a FIFO, not a regular file: ignored"),
                    ("sock.jsonl", "a socket, not a regular file: ignored")]
            finally:
                code = _stops(proc, signal.SIGTERM)
            assert code == -signal.SIGTERM
    finally:
        shutil.rmtree(data)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_stops_the_server_while_a_request_is_computed(tmp_path, device1_records, sig, code):
    write_records(tmp_path / "d.jsonl", [r for r in device1_records if r.key[:3] == ("distilgpt2", 8, 32)])
    proc, url = _start([sys.executable, "-c", SLOW_SERVE, "serve", "--port", "0", "--data-dir", str(tmp_path),
                        "--cache", str(tmp_path / "c.sqlite")])
    answers: list[object] = []

    def ask() -> None:
        try:
            answers.append(httpx.get(f"{url}api/tree", timeout=30, params={
                "model": "distilgpt2", "batch_size": 8, "seq_len": 32, "dataset": "d.jsonl"}).status_code)
        except httpx.HTTPError as exc:
            answers.append(type(exc).__name__)

    client = threading.Thread(target=ask, daemon=True)
    client.start()
    try:
        assert _line(proc, proc.stderr, 20).strip() == "computing"
    finally:
        assert _stops(proc, sig) == code
    client.join(20)
    assert answers and answers[0] != 200  # the stuck request was cut off, not answered
