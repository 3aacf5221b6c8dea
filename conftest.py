"""Shared test fixtures: where the paper's released measurements are (IRENE_DATA_DIR overrides), and
the ``irene`` command line run as a process (``cli_run``) or in this process (``cli_main``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "irene-original"


def data_root() -> Path:
    return Path(os.environ.get("IRENE_DATA_DIR", DEFAULT_DATA))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Heavy tests share two cores with other suites: torch on one thread, then restored."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def device1_dir() -> Path:
    path = data_root() / "device_1"
    if not (path / "model_level_features.csv").is_file():
        pytest.fail(f"the paper's data is missing at {path} (set IRENE_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def device1_records(device1_dir):
    """All trees of device_1 (imported once per test session)."""
    from irene_core.tree.paper_csv import import_csv_dir

    return import_csv_dir(device1_dir)


@pytest.fixture(scope="module")
def h200_records():
    """The H200's measured trees (``benchmarks/data/h200-nvml.jsonl``, NVML), loaded once per test module."""
    from irene_core.tree.jsonl import load_records

    return load_records(ROOT / "benchmarks" / "data" / "h200-nvml.jsonl")


@pytest.fixture(scope="session")
def device1_paper_records(device1_dir):
    """The paper's six models of device_1 as the reference predictors are trained on them: with the
    tracer's ``mem_bytes_moved`` (a meta trace per tree, once per test session)."""
    from irene_core.tracing.bytes_moved import add_bytes_moved
    from irene_core.tree.paper_csv import PAPER_MODELS, import_csv_dir

    records = import_csv_dir(device1_dir, device="device_1", models=list(PAPER_MODELS))
    assert not add_bytes_moved(records).skipped
    return records


def _checked(proc: subprocess.CompletedProcess, check: bool) -> subprocess.CompletedProcess:
    if check and proc.returncode != 0:
        raise AssertionError(f"irene {' '.join(proc.args[1:])} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def cli_run():
    """Run the installed ``irene`` console script; returns the CompletedProcess."""
    irene = Path(sys.executable).with_name("irene")

    def run(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(irene), *args], capture_output=True, text=True, env=env, timeout=600)
        return _checked(proc, check)

    return run


@pytest.fixture
def cli_main(capsys):
    """Run ``irene`` in this process through the console script's own entry point (``irene_core.cli:main``,
    which turns every error into a line on stderr and an exit code): the CompletedProcess ``cli_run``
    gives, without starting Python and importing everything again.  Environment changes need ``cli_run``."""
    from irene_core.cli import main

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return _checked(subprocess.CompletedProcess(["irene", *args], code, out, err), check)

    return run
