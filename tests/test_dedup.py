"""Deduplication in `irene run`: classes of identical nodes from a record alone, one measured node per class,
its figures on every member with ``measured_as``, and ``dedup=False`` measuring all (real tracer, profiler
and RAPL meter on a simulated powercap tree)."""

from __future__ import annotations

from collections import defaultdict

import pytest

from irene_core.metering.meter import open_meter
from irene_core.profiling.profiler import Profiler, RunSettings
from irene_core.tracing.replay import WarmupPolicy
from irene_core.tracing.trace import trace
from irene_core.tree.jsonl import read_records, write_records
from irene_core.tree.schema import MODEL_FEATURES
from irene_core.tree.signature import node_classes
from irene_meter_rapl.testing import PowercapTree

MODEL = "bert-L2-H128"
#: Short windows and warm-up batches: the figures are not the point here, who carries them is.
FAST = RunSettings(window_seconds=0.005, rounds=2, idle_seconds=0.05,
                   warmup=WarmupPolicy(batch_seconds=0.005, max_seconds=0.05, chunk_seconds=0.001))
FIGURES = ("ground_truth_energy", "spread_pct", "energy_above_idle", "latency_spread_pct", "flags")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def traced():
    return trace(MODEL, 1, 8)


def _ids(classes):
    return sorted(sorted(node.id for node in members) for members in classes)


def test_classes_are_the_signature_groups_and_need_only_the_record(traced, tmp_path):
    record = traced.record
    groups = defaultdict(list)
    for node in record.nodes():
        groups[node.signature].append(node.id)
    classes = node_classes(record)
    assert _ids(classes) == sorted(sorted(g) for g in groups.values())
    assert len(classes) == 24 and sum(map(len, classes)) == 51
    layers = next(c for c in classes if c[0].type == "BertLayer")
    assert [n.id for n in layers] == ["encoder.layer.0:BertLayer", "encoder.layer.1:BertLayer"]
    write_records(tmp_path / "t.jsonl", [record])
    (again,) = read_records(tmp_path / "t.jsonl")
    assert _ids(node_classes(again)) == _ids(classes)


def test_nodes_without_signature_are_alone_and_so_are_their_ancestors(traced):
    record = traced.record.model_copy(deep=True)
    record.root.find("encoder.layer.1.output.dense", "Linear").signature = None
    alone = {c[0].id for c in node_classes(record) if len(c) == 1}
    assert {"encoder.layer.1.output.dense:Linear", "encoder.layer.1.output:BertOutput",
            "encoder.layer.1:BertLayer"} <= alone
    assert "encoder.layer.0:BertLayer" in alone  # its twin lost its class
    mixed = traced.record.model_copy(deep=True)
    mixed.root.find("encoder.layer.1", "BertLayer").features["flops"] += 1  # same signature, other work
    assert "encoder.layer.1:BertLayer" in {c[0].id for c in node_classes(mixed) if len(c) == 1}


@pytest.fixture
def meter(tmp_path):
    with PowercapTree(tmp_path / "powercap", {"package-0": 40.0}, tick_s=0.0005) as tree:
        meter = open_meter("rapl", {"root": str(tree.root)})
        yield meter
        meter.close()


def test_members_carry_the_representatives_figures_and_measured_as(traced, meter):
    profiler = Profiler(FAST, meter=meter)
    profiler.idle_power()
    record = profiler.profile(traced)
    classes = node_classes(record)
    assert record.meta["profiling"]["classes"] == 24 and record.meta["profiling"]["nodes"] == 51
    for representative, *members in classes:
        assert representative.measured_as is None and len(representative.windows) == FAST.rounds
        assert representative.ground_truth_energy is not None and representative.features["times_mean"] > 0
        assert representative.latency_spread_pct is not None
        measured = {k: v for k, v in representative.features.items() if k not in MODEL_FEATURES}
        for node in members:
            assert node.measured_as == representative.id and node.windows == []
            assert all(getattr(node, f) == getattr(representative, f) for f in FIGURES), node.id
            assert {k: node.features[k] for k in measured} == measured
            assert node.features["flops"] == representative.features["flops"]


def test_without_dedup_every_node_is_measured(traced):
    record = Profiler(RunSettings(**{**FAST.__dict__, "dedup": False})).profile(traced)
    nodes = list(record.nodes())
    assert all(n.measured_as is None and len(n.windows) == FAST.rounds for n in nodes)
    assert record.meta["profiling"]["classes"] == record.meta["profiling"]["nodes"] == len(nodes) == 51
    assert record.meta["profiling"]["floor_s"] <= record.meta["profiling"]["loop_s"]
