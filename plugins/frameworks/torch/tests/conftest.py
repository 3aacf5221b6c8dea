"""Fixtures of the torch tracer's tests: one thread, a framework object, a small traced BERT."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test module of the tracer runs torch on one thread (the root conftest's fixture)."""


@pytest.fixture(scope="session")
def framework():
    from irene_framework_torch.framework import TorchFramework

    return TorchFramework()


@pytest.fixture(scope="module")
def tiny_bert(framework):
    """bert-L2-H128 (2 layers, hidden 128, 2 heads) traced at batch 2, seq 16 on the CPU."""
    return framework.trace("bert-L2-H128", 2, 16)


@pytest.fixture
def model_dir(tmp_path):
    """``model_dir(name, config)``: save a transformers config as a local model directory."""

    def save(name: str, config) -> str:
        directory = tmp_path / name
        directory.mkdir(parents=True, exist_ok=True)
        config.to_json_file(str(directory / "config.json"))
        return str(directory)

    return save
