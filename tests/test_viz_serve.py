"""`irene serve` as a user runs it: a process on a free loopback port that answers and stops cleanly."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from irene_core.cli.app import main
from irene_core.tree.jsonl import write_records
from irene_core.tree.schema import MODEL_FEATURES, Node
from irene_core.viz.schemas import TreeView

IRENE = Path(sys.executable).with_name("irene")
FIRST_VIEW = {"model": "bert-base-uncased", "batch_size": 8, "seq_len": 128}
PREPARING = "IrEne-viz: preparing the first view"
SERVE = """
import sys, time
{}
from irene_core.cli.app import main
sys.exit(main(sys.argv[1:]))
"""
#: `irene serve` without scikit-learn: the predictor cannot be imported (the tracer can).
NO_SKLEARN = SERVE.format('sys.modules["sklearn"] = None')
#: `irene serve` whose first view never gets ready (a trace that never ends, in the worker thread).
STUCK = SERVE.format("from irene_core.viz.energy_service import EnergyService\n"
                     "EnergyService.compute = lambda self, plan: time.sleep(3600)")


def _line(proc: subprocess.Popen, timeout: float, stream: str = "stdout") -> str:
    pipe = getattr(proc, stream)
    sel = selectors.DefaultSelector()
    sel.register(pipe, selectors.EVENT_READ)
    if not sel.select(timeout):
        raise AssertionError(f"irene serve printed nothing on {stream} in {timeout} s")
    return pipe.readline()


def _url(proc: subprocess.Popen, timeout: float = 60) -> str:
    line = _line(proc, timeout)
    assert line.startswith("IrEne-viz at http://127.0.0.1:"), line
    return line.split()[2]


def _serve(data: Path, cache: Path, *command: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`irene serve` (or ``command`` with its arguments) on a free port, and Ctrl-C at its default as in a
    terminal (a test process may run with SIGINT ignored, and a child inherits that)."""
    cmd = [*(command or [str(IRENE)]), "serve", "--port", "0", "--data-dir", str(data), "--cache", str(cache)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()  # uvicorn shuts down gracefully, then re-raises SIGTERM as its exit status
    try:
        assert proc.wait(20) in (0, -signal.SIGTERM)
    finally:
        proc.kill()


def _structure(node: Node) -> list:
    """Every node's id, type, level and model features, in pre-order (what ``/api/tree`` serves)."""
    features = {k: v for k, v in node.features.items() if k in MODEL_FEATURES}
    return [(node.id, node.type, node.level, features), *(s for c in node.children for s in _structure(c))]


def test_serve_answers_from_the_data_dir_only_and_stops(tmp_path, device1_records):
    data = tmp_path / "data"
    served = [r for r in device1_records if r.key[:3] in {("distilgpt2", 8, 32), ("distilgpt2", 16, 64)}]
    write_records(data / "d1.jsonl", served)
    write_records(tmp_path / "outside.jsonl", [r for r in device1_records if r.key[:3] == ("gpt2", 8, 32)])
    (data / "linked.jsonl").symlink_to(tmp_path / "outside.jsonl")
    (data / "up").symlink_to(tmp_path, target_is_directory=True)
    env = {**os.environ, "IRENE_LOAD_PLUGINS": "none"}  # datasets only: no tracer to import at startup
    proc = _serve(data, tmp_path / "c.sqlite", env=env)
    try:
        url = _url(proc)
        models = httpx.get(f"{url}api/models", timeout=30).json()
        assert models["models"] == [{"name": "distilgpt2", "source": "dataset", "dataset": "d1.jsonl",
                                     "sizes": [[8, 32], [16, 64]], "measured": True}]
        assert models["datasets"] == [{"name": "d1.jsonl", "records": 2, "error": None}]
        for record in served:
            query = {"model": "distilgpt2", "batch_size": record.batch_size, "seq_len": record.seq_len}
            tree = httpx.get(f"{url}api/tree", params={**query, "dataset": "d1.jsonl"}, timeout=30)
            assert tree.status_code == 200
            view = TreeView.model_validate(tree.json())
            assert (view.source, view.dataset, view.key) == ("dataset", "d1.jsonl", record.key)
            assert _structure(view.root) == _structure(record.root)
            assert view.node_count == len(_structure(record.root)) == 76
        refused = {name: f"dataset '{name}' is not in the data directory (datasets: d1.jsonl)"
                   for name in ("linked.jsonl", "up/outside.jsonl", "d1.jsonl/../../outside.jsonl")}
        refused[str(tmp_path / "outside.jsonl")] = "dataset: String should match pattern"
        for name, detail in refused.items():
            answer = httpx.get(f"{url}api/tree", params={"model": "gpt2", "batch_size": 8, "seq_len": 32,
                                                          "dataset": name}, timeout=30)
            assert answer.status_code == 422 and answer.json()["detail"].startswith(detail), (name, answer.text[:300])
        assert httpx.get(url, timeout=30).headers["content-type"].startswith("text/html")
    finally:
        _stop(proc)
    assert (tmp_path / "c.sqlite").is_file()


def test_the_url_comes_once_the_first_view_is_answered_at_once(tmp_path):
    """The URL means ready: the page's first view is then a cache hit, computed while starting from an empty
    cache; from an earlier run's cache it needs no computation (nor waiting for the imports)."""
    for computed in (1, 0):
        proc = _serve(tmp_path, tmp_path / "c.sqlite")
        try:
            url = _url(proc)
            answer = httpx.get(f"{url}api/energy", params=FIRST_VIEW, timeout=30)
            assert (answer.status_code, answer.headers["x-irene-cache"]) == (200, "hit")
            assert answer.json()["model_name"] == FIRST_VIEW["model"]
            assert httpx.get(f"{url}api/status", timeout=30).json()["computations"] == computed
        finally:
            _stop(proc)
        assert proc.stderr.read().startswith(PREPARING)


def test_a_failed_warm_up_is_a_warning_and_the_server_answers_with_the_error(tmp_path):
    proc = _serve(tmp_path, tmp_path / "c.sqlite", sys.executable, "-c", NO_SKLEARN)
    try:
        url = _url(proc)
        answer = httpx.get(f"{url}api/energy", params=FIRST_VIEW, timeout=30)
        assert answer.status_code == 503 and answer.json()["detail"].startswith("no predictor is installed")
    finally:
        _stop(proc)
    assert proc.stderr.read().splitlines()[:2] == [
        f"{PREPARING} (importing the tracer and the predictor); the URL follows when it is ready",
        "warning: the first view could not be prepared: no predictor is installed (No module named "
        "'sklearn.model_selection'; 'sklearn' is not a package)"]


@pytest.mark.parametrize("stuck", [False, True], ids=["importing", "stuck"])
def test_ctrl_c_stops_the_server_while_it_prepares_the_first_view(tmp_path, stuck):
    proc = _serve(tmp_path, tmp_path / "c.sqlite", *([sys.executable, "-c", STUCK] if stuck else []))
    try:
        assert _line(proc, 60, "stderr").startswith(PREPARING)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 130
    finally:
        proc.kill()
    if stuck:  # never ready: no URL
        assert proc.stdout.read() == ""


def test_a_busy_port_is_a_one_line_error(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port), "--cache", str(tmp_path / "c.sqlite")]) == 1
    err = capsys.readouterr().err
    assert f"--host 127.0.0.1 --port {port}: cannot listen (Address already in use)" in err.replace("\n", "")


@pytest.mark.parametrize("make", ["missing", "file"])
def test_a_data_dir_that_is_not_a_directory_is_refused(tmp_path, capsys, make):
    target = tmp_path / "data"
    if make == "file":
        target.write_text("x", encoding="utf-8")
    code = main(["serve", "--port", "0", "--data-dir", str(target), "--cache", str(tmp_path / "c.sqlite")])
    err = " ".join(capsys.readouterr().err.split())
    if make == "file":
        assert code == 2 and f"Invalid value for '--data-dir': Directory '{target}' is a file." in err
    else:
        assert code == 1 and f"--data-dir {target}: not a directory" in err
