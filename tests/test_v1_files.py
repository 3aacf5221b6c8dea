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
        raw["model_name"], raw["batch_size"], raw["seq_len"], raw["device"])
    assert (record.phase, record.context_len, record.dtype, record.attention) == ("forward", None, "float32", "eager")
    assert record.meta == raw["meta"]
    nodes = list(record.root.walk())
    raw_nodes, stack = [], [raw["frontend_tree"]]
    while stack:
        node = stack.pop()
        raw_nodes.append(node)
        stack.extend(reversed(node["child_nodes_obj"]))
    assert [(n.id, n.type, n.ground_truth_energy, n.predicted_energy) for n in nodes] == [
        (r["id"], r["instance_type"], r["ground_truth_energy"], r["predicted_energy"]) for r in raw_nodes]
    assert all(n.features["flops"] == r["flops"] for n, r in zip(nodes, raw_nodes, strict=True) if not n.synthetic)
    out = tmp_path / "v2.jsonl"
    write_records(out, [record])
    (again,) = load_records(out)
    assert again == record and again.schema_read == 2 and json.loads(out.read_text())["schema_version"] == 2


@pytest.mark.filterwarnings("ignore:no trained regressor for primitive")
def test_the_shipped_predictor_predicts_what_the_previous_release_did() -> None:
    (old,) = load_records(DATA / "v1-predicted.jsonl")
    (new,) = load_reference_predictor("model").predict([old])
    before = {n.id: n.predicted_energy for n in old.root.walk()}
    after = {n.id: n.predicted_energy for n in new.root.walk()}
    assert before.keys() == after.keys()
    assert all(after[i] == pytest.approx(before[i], rel=1e-9, abs=1e-15) for i in before)
