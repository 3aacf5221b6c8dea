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

IRENE = Path(sys.executable).with_name("irene")


def _first_line(proc: subprocess.Popen, timeout: float) -> str:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        raise AssertionError(f"irene serve printed nothing in {timeout} s")
    return proc.stdout.readline()


def test_serve_on_a_free_loopback_port_answers_and_stops(tmp_path, device1_records):
    write_records(tmp_path / "data" / "d1.jsonl", [r for r in device1_records if r.key[:3] == ("distilgpt2", 8, 32)])
    cmd = [str(IRENE), "serve", "--port", "0", "--data-dir", str(tmp_path / "data"), "--cache", str(tmp_path / "c.sqlite")]
    env = {**os.environ, "IRENE_LOAD_PLUGINS": "none"}  # datasets only: no tracer to import at startup
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = _first_line(proc, 60)
        assert line.startswith("IrEne-viz at http://127.0.0.1:"), line
        url = line.split()[2]
        models = httpx.get(f"{url}api/models", timeout=30).json()
        assert {"name": "distilgpt2", "dataset": "d1.jsonl"}.items() <= next(
            m for m in models["models"] if m["source"] == "dataset").items()
        tree = httpx.get(f"{url}api/tree", params={"model": "distilgpt2", "batch_size": 8, "seq_len": 32,
                                                   "dataset": "d1.jsonl"}, timeout=30)
        assert tree.status_code == 200 and tree.json()["node_count"] == 76
        assert httpx.get(url, timeout=30).headers["content-type"].startswith("text/html")
    finally:
        proc.terminate()  # uvicorn shuts down gracefully, then re-raises SIGTERM as its exit status
        try:
            assert proc.wait(20) in (0, -signal.SIGTERM)
        finally:
            proc.kill()
    assert (tmp_path / "c.sqlite").is_file()


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
    assert code in (1, 2)
    assert "data" in capsys.readouterr().err
