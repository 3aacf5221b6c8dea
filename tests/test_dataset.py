import json

import pytest

from irene_core.dataset import append_record, load_records, record_to_dict, write_records
from irene_core.errors import IreneError
from irene_core.tree import Node, TreeRecord

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
    assert rec.key == ("bert-base-uncased", 8, 32)
    assert [(n.scope, n.type, n.level) for n in rec.nodes()] == [
        ("", "BertModel", "model"), ("pooler", "BertPooler", "module"), ("pooler.dense", "Linear", "ml")]
    assert rec.root.features == {"flops": 10.0, "cpu": 5.5}


def test_round_trip_keeps_everything(tmp_path):
    (rec,) = load_records(_write_lines(tmp_path / "o.jsonl", json.dumps(ORIGINAL)))
    rec.root.predicted_energy = 1.9
    rec.root.children.append(Node(id="own", scope="", type="OwnOps", level="ml", synthetic=True, predicted_energy=0.1))
    rec.meta["idle_power_w"] = 42.0
    out = tmp_path / "rt.jsonl"
    write_records(out, [rec, rec])
    again = load_records(out)
    assert len(again) == 2 and again[0] == rec
    line = json.loads(out.read_text().splitlines()[0])
    node = line["frontend_tree"]["child_nodes_obj"][0]
    assert node["parent_name"] == "" and node["level"] == 1 and node["child_nodes"] == ["pooler.dense"]
    assert line["frontend_tree"]["child_nodes_obj"][1]["synthetic"] is True


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
         "ground_truth_energy must be"),
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


def test_record_dict_is_the_release_layout():
    rec = TreeRecord(model_name="m", batch_size=1, seq_len=2, root=Node(id="r", scope="", type="M", level="model"))
    d = record_to_dict(rec)
    assert set(d) >= {"model_name", "batch_size", "seq_len", "frontend_tree"}
    assert set(d["frontend_tree"]) >= {"id", "scope", "parent_name", "level", "instance_type", "type",
                                       "ground_truth_energy", "predicted_energy", "child_nodes_obj", "child_nodes"}
