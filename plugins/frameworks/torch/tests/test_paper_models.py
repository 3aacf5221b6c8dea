"""Our trees of the paper's six models against the paper's released CSV trees (device_1).

Root flops within 1 % of the CSV's, Linear / Conv1D / MatMul leaves within 1 % of the CSV row with
the same id, and every scope of the CSV tree present in ours: on the CPU at one grid point, and
on the meta device (no kernels: cheap) at every grid point of the release.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from irene_core.csv_import import PAPER_MODELS
from irene_core.tree import TreeRecord

CHECKED_LEAVES = ("Linear", "Conv1D", "MatMul")


@pytest.fixture(scope="module")
def csv_trees(device1_records) -> dict[tuple[str, int, int], TreeRecord]:
    return {r.key: r for r in device1_records if r.model_name in PAPER_MODELS}


def _relative(ours: float, theirs: float) -> float:
    return abs(ours - theirs) / theirs


def mismatches(ours: TreeRecord, theirs: TreeRecord, tolerance: float = 0.01) -> list[str]:
    """What differs beyond the checks' tolerance (empty when our tree passes)."""
    problems = []
    if _relative(ours.root.features["flops"], theirs.root.features["flops"]) > tolerance:
        problems.append(f"root flops {ours.root.features['flops']:.1f} vs {theirs.root.features['flops']:.1f}")
    by_id = {n.id: n for n in ours.nodes()}
    for node in theirs.nodes():
        if node.level == "ml" and node.type in CHECKED_LEAVES:
            mine = by_id.get(node.id)
            if mine is None:
                problems.append(f"no leaf {node.id}")
            elif _relative(mine.features["flops"], node.features["flops"]) > tolerance:
                problems.append(f"{node.id}: {mine.features['flops']:.3f} vs {node.features['flops']:.3f} MFLOPs")
    missing = {n.scope for n in theirs.nodes()} - {n.scope for n in ours.nodes()}
    problems.extend(f"no scope {scope}" for scope in sorted(missing))
    return problems


@pytest.mark.parametrize("model", PAPER_MODELS)
def test_cpu_trace_matches_the_csv(framework, csv_trees, model):
    traced = framework.trace(model, 8, 32)
    assert mismatches(traced.record, csv_trees[(model, 8, 32)]) == []
    meta = framework.trace(model, 8, 32, meta=True)
    assert [(n.id, n.features) for n in meta.record.nodes()] == [(n.id, n.features) for n in traced.record.nodes()]


@pytest.mark.slow
@pytest.mark.parametrize("model", PAPER_MODELS)
def test_every_grid_point_matches_the_csv_on_meta(framework, csv_trees, model):
    grid = sorted((b, s) for (m, b, s) in csv_trees if m == model)
    assert len(grid) >= 27
    problems: dict[tuple[int, int], list[str]] = defaultdict(list)
    for batch, seq in grid:
        ours = framework.trace(model, batch, seq, meta=True).record
        problems[(batch, seq)] = mismatches(ours, csv_trees[(model, batch, seq)])
    assert {point: p for point, p in problems.items() if p} == {}


def test_mismatches_catches_a_wrong_leaf(framework, csv_trees):
    ours = framework.trace("distilgpt2", 8, 32, meta=True).record
    leaf = ours.root.find("h.0.attn.c_attn", "Conv1D")
    leaf.features["flops"] *= 1.02
    ours.root.children = [c for c in ours.root.children if c.scope != "ln_f"]
    assert mismatches(ours, csv_trees[("distilgpt2", 8, 32)]) == [
        f"h.0.attn.c_attn:Conv1D: {leaf.features['flops']:.3f} vs 905.970 MFLOPs",
        "no scope ln_f",
    ]
