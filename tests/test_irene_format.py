"""``irene export --format irene``: files the original IrEne code (StonyBrookNLP/irene, master) reads and
scores.  Its reading and scoring rules are restated below from its ``lib/tree_node.py``, ``lib/utils.py``,
``lib/ml_level.py``, ``lib/non_ml_level.py`` and ``lib/end2end.py`` (not copied, and without its
packages), so that each failure seen when our files were fed to it fails a test here.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from irene_core.cli.data import export_cmd
from irene_core.errors import IreneError
from irene_core.predictor.evaluation import evaluate
from irene_core.tree.jsonl import load_records, write_records
from irene_core.tree.paper_csv import import_csv_dir
from irene_core.tree.schema import Node, TreeRecord

# -- the original code's rules, restated ----------------------------------------------------------------

#: Its default feature list (``model_specs`` + ``resource_utilization``, with ``num_parameters`` and
#: ``input_size`` added); ``batch_size``, ``seq_len`` and ``input_size`` come from the record.
ORIGINAL_FEATURE_LIST = ("num_parameters", "input_size", "batch_size", "seq_len", "flops", "mem_bytes", "cpu", "mem",
                         "gpu", "gpu_mem", "gpu_clk", "gpu_mem_clk", "times_mean", "gpu_energy_mean")
#: Leaf types (lower-cased) its ML level has a regressor for; other leaves get no prediction.
ORIGINAL_OPS = {"embedding", "layernorm", "linear", "tanh", "conv1d", "softmax", "matmul"}


@dataclass
class OriginalNode:
    id: str
    node_type: str
    instance_type: str
    features: list[Any]
    gold: Any
    predicted: Any
    children: list[OriginalNode] = field(default_factory=list)

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


def original_read(line: dict, feature_list=ORIGINAL_FEATURE_LIST) -> OriginalNode:
    """Its ``TreeNode.read_from_json`` on one line: raises where it raises (KeyError, AssertionError)."""
    line = copy.deepcopy(line)
    line.pop("model_name")
    batch_size, seq_len = line.pop("batch_size"), line.pop("seq_len")
    return _original_node(line.pop("frontend_tree"), feature_list, batch_size, seq_len)


def _original_node(d: dict, feature_list, batch_size, seq_len) -> OriginalNode:
    # a node with a model_name key is taken for a record root, and the reader then asserts
    assert "model_name" not in d, "Don't pass model_name at root level"
    children = d["child_nodes_obj"]
    from_record = {"batch_size": batch_size, "seq_len": seq_len, "input_size": batch_size * seq_len}
    features = [from_record[name] if name in from_record else d[name] for name in feature_list]
    node_type = "ml" if d["type"] == "ml-np" else d["type"]
    if not children:
        assert node_type == "ml", f"Leaf nodes must be ml typed. Found {node_type}"
    # every query asserts its types are these; a node of another type is never fed to the models
    assert node_type in ("model", "module", "ml"), node_type
    for key in ("id", "scope", "level", "parent_name"):  # indexed into its TreeNode
        d[key]
    kids = [_original_node(c, feature_list, batch_size, seq_len) for c in children]
    return OriginalNode(d["id"], node_type, d["instance_type"].lower(), features, d.get("ground_truth_energy"),
                        d.get("predicted_energy"), kids)


def original_train_checks(trees: list[OriginalNode]) -> None:
    """What its train.py asserts or fails on before fitting anything."""
    nodes = [n for tree in trees for n in tree.walk()]
    ids = [n.id for n in nodes]
    assert len(set(ids)) == len(ids), "Node-ids need to be unique, but they aren't."
    np.asarray([n.features for n in nodes], dtype=float)  # the scaler's input: numbers everywhere
    assert all(n.gold is not None for n in nodes), "torch.tensor(None): a node without ground truth"
    for n in nodes:
        if not n.children:  # a leaf the ML level cannot predict stops the tree model
            assert n.instance_type in ORIGINAL_OPS, "Found leaf node w/o energy prediction."


def original_evaluate(truth_lines: list[dict], pred_lines: list[dict]) -> dict[str, tuple[float, int]]:
    """Its evaluate.py: per node type, gold and predicted energies keyed by id over the whole file (a
    later node with the same id replaces an earlier one), a missing or zero prediction counted as 0,
    the mean of 100·|gt − pred|/gt over the ids.  Returns (mean, number of ids scored) per type."""
    truth = [original_read(line, ()) for line in truth_lines]
    preds = [original_read(line, ()) for line in pred_lines]
    out = {}
    for node_type in ("ml", "module", "model"):
        gold = {n.id: n.gold for tree in truth for n in tree.walk() if n.node_type == node_type}
        predicted = {n.id: n.predicted for tree in preds for n in tree.walk() if n.node_type == node_type}
        errors = [100 * abs(float(g) - float(predicted.get(i) or 0)) / float(g) for i, g in gold.items()]
        out[node_type] = (sum(errors) / len(errors), len(errors))
    return out


# -- data: two models of the paper's release and a traced-like record -----------------------------------

def _cpu_features(flops: float) -> dict[str, float]:
    """What a CPU-only run has: no GPU features."""
    return {"batch_size": 2.0, "seq_len": 16.0, "flops": flops, "mem_bytes": 1.0, "mem_bytes_moved": 2.0,
            "num_parameters": 10.0, "cpu": 50.0, "mem": 20.0, "times_mean": 1e-3}


def _node(scope: str, type_: str, level: str, gt: float | None, children=(), synthetic: bool = False) -> Node:
    features = {} if synthetic else _cpu_features(1.0)
    return Node(id=f"{scope}:{type_}", scope=scope, type=type_, level=level, features=features, ground_truth_energy=gt,
                synthetic=synthetic, children=list(children))


def _traced_like() -> TreeRecord:
    """A CPU run with OwnOps pseudo-nodes (no ground truth), a childless module and a GELU leaf."""
    block = _node("block", "Block", "module", 3.0, [
        _node("block.dense", "Linear", "ml", 1.0), _node("block", "MatMul", "ml", 0.5),
        _node("block.act", "GELU", "ml", 0.25), _node("block", "OwnOps", "ml", None, synthetic=True)])
    root = _node("", "Tiny", "model", 5.0, [block, _node("drop", "Identity", "module", 0.1),
                                            _node("", "OwnOps", "ml", None, synthetic=True)])
    return TreeRecord(model_name="tiny-traced", batch_size=2, seq_len=16, device="host/x86_64/cpu", root=root)


@pytest.fixture(scope="module")
def records(device1_dir) -> list[TreeRecord]:
    return [*import_csv_dir(device1_dir, models=["distilgpt2", "sshleifer/tiny-ctrl"]), _traced_like()]


def _export(source, out, fmt: str = "irene"):
    return CliRunner().invoke(export_cmd, [str(source), "-o", str(out), "--format", fmt])


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _walk_dicts(node: dict):
    yield node
    for child in node["child_nodes_obj"]:
        yield from _walk_dicts(child)


@pytest.fixture(scope="module")
def exported(records, tmp_path_factory):
    """DATA (schema v2) → OUT (the original layout); returns (data path, out path, CLI result)."""
    base = tmp_path_factory.mktemp("export")
    write_records(base / "data.jsonl", records)
    result = _export(base / "data.jsonl", base / "out.jsonl")
    assert result.exit_code == 0, result.output
    return base / "data.jsonl", base / "out.jsonl", result


# -- tests ----------------------------------------------------------------------------------------------

def test_original_reader_and_training_checks_accept_the_export(exported):
    _, out, _ = exported
    lines = _lines(out)
    trees = [original_read(line) for line in lines]  # every key it indexes, every leaf typed ml
    original_train_checks([t for t, line in zip(trees, lines, strict=True) if line["model_name"] == "distilgpt2"])
    ids = [n.id for t in trees for n in t.walk()]
    assert len(ids) == len(set(ids))  # unique across the file, not only within a record
    np.asarray([n.features for t in trees for n in t.walk()], dtype=float)


def test_leaves_it_cannot_train_on_are_named(exported):
    _, out, result = exported
    trees = [original_read(line) for line in _lines(out)]
    with pytest.raises(AssertionError, match="w/o energy prediction"):
        original_train_checks(trees)
    leaves = Counter(n.instance_type for t in trees for n in t.walk() if not n.children)
    assert {op: n for op, n in leaves.items() if op not in ORIGINAL_OPS} == {"relu": 54, "gelu": 1, "identity": 1}
    assert "no regressor for leaves of type gelu ×1, identity ×1, relu ×54" in result.stderr


def test_original_evaluate_scores_every_node_as_we_do(exported, records, tmp_path):
    _, truth, _ = exported
    predicted = [r.model_copy(deep=True) for r in records]
    for i, node in enumerate(n for r in predicted for n in r.root.walk()):
        node.predicted_energy = (node.ground_truth_energy or 0.1) * (0.9 if i % 3 else 1.2)
    write_records(tmp_path / "pred.jsonl", predicted)
    assert _export(tmp_path / "pred.jsonl", tmp_path / "pred-irene.jsonl").exit_code == 0
    theirs = original_evaluate(_lines(truth), _lines(tmp_path / "pred-irene.jsonl"))
    exported_truth = load_records(truth)  # levels as exported: the childless module is an ml leaf there
    ours = evaluate(exported_truth, predicted)["pooled"]
    counts = Counter(n.level for r in exported_truth for n in r.nodes())
    for level in ("ml", "module", "model"):
        assert theirs[level] == (pytest.approx(ours[level]), counts[level])


def test_pseudo_nodes_dropped_features_filled_and_noted(exported, records):
    _, out, result = exported
    lines = _lines(out)
    assert not any(n["instance_type"] == "OwnOps" for line in lines for n in _walk_dicts(line["frontend_tree"]))
    assert all(n["gpu"] == 0.0 and n["num_parameters"] == 10.0 for n in _walk_dicts(lines[-1]["frontend_tree"]))
    csv_nodes = sum(1 for r in records[:-1] for _ in r.nodes())
    traced = sum(1 for _ in records[-1].nodes())
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes[0] == ("note: features the data lacks were written as 0 (the original code reads them on every node): "
                        f"gpu ×{traced}, gpu_clk ×{traced}, gpu_energy_mean ×{traced}, gpu_mem ×{traced}, "
                        f"gpu_mem_clk ×{traced}, num_parameters ×{csv_nodes}")
    assert result.stdout.startswith(f"{len(records)} trees → {out}")
    assert "2 OwnOps pseudo-nodes dropped, 1 childless nodes typed ml" in result.stdout


def test_reads_back_as_the_same_trees(exported, records):
    _, out, _ = exported
    back = load_records(out)
    assert [r.key for r in back] == [r.key for r in records]
    for mine, again in zip(records, back, strict=True):
        assert [(n.id, n.scope, n.type, n.ground_truth_energy) for n in again.nodes(include_synthetic=True)] == [
            (n.id, n.scope, n.type, n.ground_truth_energy) for n in mine.nodes()]
        assert all(a.features.items() >= m.features.items() for a, m in zip(again.nodes(), mine.nodes(), strict=True))
    assert back[-1].root.find("drop").level == "ml"


def test_the_original_codes_predictions_score_in_irene_evaluate(exported, records, tmp_path):
    """predict.py writes only model_name, seq_len, batch_size and the tree, lower-cases instance types and
    may predict below zero: irene evaluate matches them to the truth and scores them."""
    data, out, _ = exported
    lines = []
    for line in _lines(out):
        tree = line["frontend_tree"]
        for i, node in enumerate(_walk_dicts(tree)):
            node["instance_type"] = node["instance_type"].lower()
            node["predicted_energy"] = -node["ground_truth_energy"] if i % 2 else node["ground_truth_energy"]
        lines.append({key: line[key] for key in ("model_name", "seq_len", "batch_size", "frontend_tree")})
    theirs = tmp_path / "theirs.jsonl"
    theirs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    trees = dict(Counter(r.model_name for r in records))
    assert {m: r["trees"] for m, r in evaluate(load_records(data), load_records(theirs))["models"].items()} == trees
    report = evaluate(load_records(out), load_records(theirs))
    expected = original_evaluate(_lines(out), lines)
    for level in ("ml", "module", "model"):
        assert report["pooled"][level] == pytest.approx(expected[level][0])


def test_v2_is_a_plain_copy(exported, records, tmp_path):
    _, out, _ = exported
    result = _export(out, tmp_path / "v2.jsonl", "v2")  # the original layout in, schema v2 out
    assert result.exit_code == 0 and result.stdout == f"{len(records)} trees → {tmp_path / 'v2.jsonl'} (schema v2)\n"
    assert load_records(tmp_path / "v2.jsonl") == load_records(out)
    assert all(json.loads(line)["schema_version"] == 2 for line in (tmp_path / "v2.jsonl").read_text().splitlines())


def test_one_line_errors_and_the_old_file_kept(records, tmp_path):
    source, target = tmp_path / "d.jsonl", tmp_path / "out.jsonl"
    target.write_text("old\n")
    write_records(source, records[:1])
    result = _export(source, target, "csv")
    assert result.exit_code == 2 and "'csv' is not one of 'irene', 'v2'" in result.output
    first = records[0]
    write_records(source, [first, first])
    result = _export(source, target)
    assert isinstance(result.exception, IreneError)
    tag = f"{first.model_name}|b{first.batch_size}|s{first.seq_len}|device_1"
    assert str(result.exception) == (f"{first.key.describe()}: node id '{tag}|:GPT2Model' is not unique in the file "
                                     "(two records with one key?)")
    bare = TreeRecord(model_name="m", batch_size=1, seq_len=1, root=_node("", "M", "model", 1.0))
    write_records(source, [bare])
    result = _export(source, target)
    assert str(result.exception) == ("m b1 s1: the model node has no children "
                                     "(the original code needs every leaf typed ml)")
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl", "out.jsonl"]


def test_nodes_without_ground_truth_are_noted(tmp_path):
    """A file to predict on (no measurements) suits the original's predict.py only: say so."""
    root = _node("", "M", "model", None, [_node("a", "Linear", "ml", 0.0)])
    write_records(tmp_path / "d.jsonl", [TreeRecord(model_name="m", batch_size=1, seq_len=1, root=root)])
    result = _export(tmp_path / "d.jsonl", tmp_path / "o.jsonl")
    assert result.exit_code == 0
    assert ("note: 2 nodes have no positive ground truth: the original's train.py and evaluate.py need one on every "
            "node (predict.py does not)") in result.stderr.splitlines()


def test_record_keys_survive_and_tag_the_ids(tmp_path):
    """Key fields the release lacks are extra top-level keys (attention in ``meta``, as v1 keeps it)."""
    record = TreeRecord(model_name="m", batch_size=1, seq_len=4, phase="decode", context_len=128, dtype="float16",
                        attention="sdpa", device="gpu0", meta={"idle_power_w": 50.0},
                        root=_node("", "M", "model", 2.0, [_node("a", "Linear", "ml", 1.0)]))
    write_records(tmp_path / "d.jsonl", [record])
    assert _export(tmp_path / "d.jsonl", tmp_path / "o.jsonl").exit_code == 0
    (line,) = _lines(tmp_path / "o.jsonl")
    assert line["frontend_tree"]["child_nodes_obj"][0]["id"] == "m|b1|s4|decode|ctx128|float16|sdpa|gpu0|a:Linear"
    assert line["meta"] == {"idle_power_w": 50.0, "attention": "sdpa"}
    (back,) = load_records(tmp_path / "o.jsonl")
    assert back.key == record.key and back.schema_read == 1
