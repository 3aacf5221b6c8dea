"""The features kind in the trace path: every model-feature extractor annotates what a framework traces,
and `irene run` takes its resource sampler by name."""

from __future__ import annotations

import importlib.metadata as md

import pytest

from irene_core import ModelFeatureExtractor, TreeRecord, hookimpl
from irene_core.plugins import PluginRegistry
from irene_core.tracing import trace as trace_module


class Depth(ModelFeatureExtractor):
    """A third-party extractor: each node's depth in the tree."""

    name = "depth"
    feature_names = ("depth",)

    def annotate(self, record: TreeRecord) -> None:
        for parent, node in record.root.walk_with_parent():
            node.features["depth"] = 0.0 if parent is None else parent.features["depth"] + 1.0


class DepthPlugin:
    @hookimpl
    def irene_feature_extractors(self) -> list[ModelFeatureExtractor]:
        return [Depth()]


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> PluginRegistry:
    reg = PluginRegistry(entry_points=list(md.entry_points(group="irene")))
    reg.register(DepthPlugin(), "depth")
    monkeypatch.setattr(trace_module, "get_registry", lambda: reg)
    return reg


def test_every_model_feature_extractor_annotates_a_trace(registry: PluginRegistry) -> None:
    traced = trace_module.trace("bert-L2-H128", 2, 16, meta=True)
    depths = {node.id: node.features.get("depth") for node in traced.record.nodes()}
    assert depths[traced.record.root.id] == 0.0 and max(depths.values()) >= 3.0
    assert all(depth is not None for depth in depths.values())
    assert trace_module.annotate_model_features(traced.record) == ["depth", "model"]


def test_run_takes_its_sampler_by_name(cli_main, tmp_path) -> None:
    out = tmp_path / "run.jsonl"
    proc = cli_main(
        "run", "--model", "bert-L2-H128", "-b", "1", "-s", "8", "--sampler", "model", "-o", str(out), check=False
    )
    assert proc.returncode == 1 and not out.exists()
    assert proc.stderr.strip() == "error: --sampler model: the features plugin 'model' is not a resource sampler"
    proc = cli_main(
        "run", "--model", "bert-L2-H128", "-b", "1", "-s", "8", "--sampler", "nope", "-o", str(out), check=False
    )
    assert proc.returncode == 1 and "no features named 'nope' is installed" in proc.stderr
