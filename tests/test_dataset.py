import json
import re

import pytest

from irene_core.errors import IreneError
from irene_core.tree.irene_format import node_to_v1
from irene_core.tree.jsonl import append_record, load_records, record_to_dict, write_records
from irene_core.tree.schema import Node, RecordKey, TreeRecord

# A record exactly as the original IrEne release writes it (scopes under "root", "ml-np" type).
ORIGINAL = {
    "model_name": "bert-base-uncased",
    "batch_size": 8,
    "seq_len": 32,
    "frontend_tree": {
        "id": "u1", "scope": "root", "parent_name": None, "level": 0, "instance_type": "BertModel",
        "type": "model", "flops": 10, "cpu": 5.5, "ground_truth_energy": 2.0,
        "child_nodes": ["root.pooler"],
        "child_nodes_obj": [
            {"id": "u2", "scope": "root.pooler", "parent_name": "root", "level": 1, "instance_type": "BertPooler",
             "type": "module", "flops": 4, "ground_truth_energy": 1.0, "child_nodes": ["root.pooler.dense"],
             "child_nodes_obj": [
                 {"id": "u3", "scope": "root.pooler.dense", "parent_name": "root.pooler", "level": 2,
                  "instance_type": "Linear", "type": "ml-np", "flops": 3, "ground_truth_energy": 0.5,
                  "child_nodes": [], "child_nodes_obj": []}]}],
    },
}


def _write_lines(path, *lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_reads_original_release_format(tmp_path):
    (rec,) = load_records(_write_lines(tmp_path / "o.jsonl", json.dumps(ORIGINAL)))
    assert rec.key[:3] == ("bert-base-uncased", 8, 32)
    assert [(n.scope, n.type, n.level) for n in rec.nodes()] == [
        ("", "BertModel", "model"), ("pooler", "BertPooler", "module"), ("pooler.dense", "Linear", "ml")]
    assert rec.root.features == {"flops": 10.0, "cpu": 5.5}


def test_round_trip_keeps_everything(tmp_path):
    (rec,) = load_records(_write_lines(tmp_path / "o.jsonl", json.dumps(ORIGINAL)))
    assert rec.schema_read == 1
    rec.root.predicted_energy = 1.9
    rec.root.children.append(Node(id="own", scope="", type="OwnOps", level="ml", synthetic=True, predicted_energy=0.1))
    rec.meta["idle_power_w"] = 42.0
    out = tmp_path / "rt.jsonl"
    write_records(out, [rec, rec])
    again = load_records(out)
    assert len(again) == 2 and again[0] == rec and again[0].schema_read == 2
    line = json.loads(out.read_text().splitlines()[0])
    assert next(iter(line)) == "schema_version" and line["schema_version"] == 2
    assert line["phase"] == "forward" and line["attention"] == "eager" and line["dtype"] == "float32"
    node = line["root"]["children"][0]
    assert node["scope"] == "pooler" and node["features"] == {"flops": 4.0} and node["children"][0]["level"] == "ml"
    assert line["root"]["children"][1]["synthetic"] is True


def test_v2_refuses_unknown_fields_and_newer_versions(tmp_path):
    rec = TreeRecord(model_name="m", batch_size=1, seq_len=2, root=Node(id="r", scope="", type="M", level="model"))
    good = record_to_dict(rec)
    bad_node = {**good, "root": {**good["root"], "flag": True}}
    bad_record = {**good, "colour": "red"}
    newer = {**good, "schema_version": 3}
    path = _write_lines(tmp_path / "d.jsonl", *(json.dumps(x) for x in (good, bad_node, bad_record, newer)))
    with pytest.raises(IreneError) as err:
        load_records(path)
    assert str(err.value) == f"{path}:2: unknown field 'root.flag' (schema v2 declares every field)"
    for lineno, expected in (
        (3, "unknown field 'colour'"),
        (4, "schema_version 3 is not supported (written by a newer"),
    ):
        one = _write_lines(tmp_path / f"{lineno}.jsonl", path.read_text().splitlines()[lineno - 1])
        with pytest.raises(IreneError, match=f"^{one}:1: " + re.escape(expected)):
            load_records(one)


def test_v1_attention_and_key_defaults(tmp_path):
    traced_v1 = {**ORIGINAL, "schema_version": 1, "device": "host/x86_64/cpu", "meta": {"attention": "sdpa"}}
    (rec,) = load_records(_write_lines(tmp_path / "v1.jsonl", json.dumps(traced_v1)))
    assert rec.key == RecordKey("bert-base-uncased", 8, 32, "forward", None, "float32", "sdpa", "host/x86_64/cpu")
    assert rec.key != RecordKey("bert-base-uncased", 8, 32, device="host/x86_64/cpu")


def test_append_adds_whole_lines(tmp_path):
    (rec,) = load_records(_write_lines(tmp_path / "o.jsonl", json.dumps(ORIGINAL)))
    out = tmp_path / "a.jsonl"
    append_record(out, rec)
    append_record(out, rec)
    assert len(load_records(out)) == 2


def _bad(mutate):
    data = json.loads(json.dumps(ORIGINAL))
    mutate(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "invalid JSON"),
        (_bad(lambda d: d.pop("seq_len")), "missing field 'seq_len'"),
        (_bad(lambda d: d["frontend_tree"].pop("instance_type")), "missing field 'instance_type'"),
        (_bad(lambda d: d["frontend_tree"].__setitem__("ground_truth_energy", -1)), "ground_truth_energy must be"),
        (_bad(lambda d: d["frontend_tree"]["child_nodes_obj"][0].__setitem__("ground_truth_energy", float("nan"))),
         "NaN is not allowed"),
        (_bad(lambda d: d["frontend_tree"]["child_nodes_obj"][0].__setitem__("id", "u1")), "duplicate node id 'u1'"),
        (_bad(lambda d: d["frontend_tree"]["child_nodes_obj"][0].__setitem__("type", "model")), "level 'model'"),
        (_bad(lambda d: d.__setitem__("schema_version", 99)), "schema_version 99"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line, message):
    path = _write_lines(tmp_path / "bad.jsonl", json.dumps(ORIGINAL), line)
    with pytest.raises(IreneError) as err:
        load_records(path)
    assert str(err.value).startswith(f"{path}:2: ")
    assert message in str(err.value)


def test_interrupted_write_leaves_old_file_untouched(tmp_path):
    (rec,) = load_records(_write_lines(tmp_path / "o.jsonl", json.dumps(ORIGINAL)))
    out = tmp_path / "out.jsonl"
    write_records(out, [rec])
    before = out.read_bytes()

    def records():
        yield rec
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_records(out, records())
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.jsonl", "out.jsonl"]  # no temp file left


def test_v1_layout_is_the_release_layout():
    rec = TreeRecord(model_name="m", batch_size=1, seq_len=2, root=Node(id="r", scope="", type="M", level="model"))
    d = node_to_v1(rec.root)
    assert set(d) >= {"id", "scope", "parent_name", "level", "instance_type", "type",
                      "ground_truth_energy", "predicted_energy", "child_nodes_obj", "child_nodes"}
