"""Shared test fixtures: where the paper's released measurements are (IRENE_DATA_DIR overrides)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "irene-original"


def data_root() -> Path:
    return Path(os.environ.get("IRENE_DATA_DIR", DEFAULT_DATA))


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


@pytest.fixture
def cli_run():
    """Run the installed ``irene`` console script; returns the CompletedProcess."""
    import subprocess
    import sys

    irene = Path(sys.executable).with_name("irene")

    def run(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(irene), *args], capture_output=True, text=True, env=env, timeout=600)
        if check and proc.returncode != 0:
            raise AssertionError(f"irene {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run
