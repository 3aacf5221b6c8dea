"""Files written by the previous release (record schema v1) read back unchanged, and predict the same.

``tests/data/v1-*.jsonl`` were written by IrEne 0.1 (commit 5f9ff2c): ``irene trace bert-L2-H128
--batch-size 1 --seq-len 8`` then ``irene predict`` with the shipped predictor, and ``irene run`` of the
same model without a meter.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from irene_core import load_records, load_reference_predictor, write_records

DATA = Path(__file__).parent / "data"
FILES = ("v1-predicted.jsonl", "v1-run.jsonl")


@pytest.mark.parametrize("name", FILES)
def test_v1_reads_as_v1_and_round_trips_through_v2(name: str, tmp_path: Path) -> None:
    raw = json.loads((DATA / name).read_text())
    (record,) = load_records(DATA / name)
    assert record.schema_read == 1 and raw["schema_version"] == 1
    assert (record.model_name, record.batch_size, record.seq_len, record.device) == (
        raw["model_name"],
        raw["batch_size"],
        raw["seq_len"],
        raw["device"],
    )
    assert (record.phase, record.context_len, record.dtype, record.attention) == ("forward", None, "float32", "eager")
    assert record.meta == raw["meta"]
    nodes = list(record.root.walk())
    raw_nodes, stack = [], [raw["frontend_tree"]]
    while stack:
        node = stack.pop()
        raw_nodes.append(node)
        stack.extend(reversed(node["child_nodes_obj"]))
    assert [(n.id, n.type, n.ground_truth_energy, n.predicted_energy) for n in nodes] == [
        (r["id"], r["instance_type"], r["ground_truth_energy"], r["predicted_energy"]) for r in raw_nodes
    ]
    assert all(n.features["flops"] == r["flops"] for n, r in zip(nodes, raw_nodes, strict=True) if not n.synthetic)
    out = tmp_path / "v2.jsonl"
    write_records(out, [record])
    (again,) = load_records(out)
    assert again == record and again.schema_read == 2 and json.loads(out.read_text())["schema_version"] == 2


@pytest.mark.filterwarnings("ignore:no trained regressor for primitive")
def test_a_v1_file_predicts_what_the_same_trees_written_as_v2_do(tmp_path: Path) -> None:
    (old,) = load_records(DATA / "v1-predicted.jsonl")
    write_records(tmp_path / "v2.jsonl", [old])
    (again,) = load_records(tmp_path / "v2.jsonl")
    predictor = load_reference_predictor("model")
    (from_v1,), (from_v2,) = predictor.predict([old]), predictor.predict([again])
    assert again.schema_read == 2 and old.schema_read == 1
    v1 = {n.id: n.predicted_energy for n in from_v1.root.walk()}
    v2 = {n.id: n.predicted_energy for n in from_v2.root.walk()}
    assert v1.keys() == {n.id for n in old.root.walk()} | {n.id for n in from_v1.root.walk()} and v1 == v2
    assert all(e is not None for e in v1.values())
    assert all(n.predicted_energy >= 0 for n in from_v1.root.walk() if not n.synthetic)  # a root's OwnOps may be < 0
