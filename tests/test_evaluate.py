import json

import pytest
from click.testing import CliRunner

from irene_core.cli.data import evaluate_cmd
from irene_core.errors import IreneError
from irene_core.predictor.evaluation import evaluate
from irene_core.tree.jsonl import write_records
from irene_core.tree.schema import Node, TreeRecord


def _rec(model: str, pred: dict[str, float] | None = None, seq: int = 8) -> TreeRecord:
    pred = pred or {}
    mk = lambda i, lvl, gt, kids=(): Node(id=i, scope=i, type="T", level=lvl, ground_truth_energy=gt,  # noqa: E731
                                        predicted_energy=pred.get(i), children=list(kids))
    root = mk("r", "model", 10.0, [mk("m", "module", 4.0, [mk("a", "ml", 1.0), mk("b", "ml", 2.0)])])
    return TreeRecord(model_name=model, batch_size=1, seq_len=seq, root=root)


def test_percent_errors_per_level_and_model():
    truth = [_rec("x"), _rec("y")]
    pred = [_rec("x", {"r": 11, "m": 4, "a": 1.5, "b": 2}), _rec("y", {"r": 10, "m": 3, "a": 1, "b": 1})]
    report = evaluate(truth, pred)
    assert report["models"]["x"] == {"ml": 25.0, "module": 0.0, "model": 10.0, "trees": 1}
    assert report["models"]["y"] == {"ml": 25.0, "module": 25.0, "model": 0.0, "trees": 1}
    assert report["overall"] == {"ml": 25.0, "module": 12.5, "model": 5.0}


def test_missing_prediction_is_an_error():
    with pytest.raises(IreneError, match="node 'a' has no predicted energy"):
        evaluate([_rec("x")], [_rec("x", {"r": 1, "m": 1})])
    with pytest.raises(IreneError, match="no prediction for x batch 1 seq 8"):
        evaluate([_rec("x")], [_rec("x", seq=16)])


def _tree_v1(node: Node) -> dict:
    """A node as another tool writes the original layout: only the keys that layout has."""
    return {"id": node.id, "scope": node.scope, "parent_name": None, "level": 0, "instance_type": node.type,
            "type": node.level, "predicted_energy": node.predicted_energy,
            "child_nodes_obj": [_tree_v1(c) for c in node.children]}


def test_another_tools_negative_predictions_score_as_bad_ones(tmp_path):
    """A prediction file from another tool (the original layout, no device, values below zero) is read and
    scored 100·|pred − gt|/gt, not refused."""
    truth = _rec("x").model_copy(update={"device": "device_1"})
    write_records(tmp_path / "truth.jsonl", [truth])
    theirs = _rec("x", {"r": -10.0, "m": -4.0, "a": -1.0, "b": 2.0})
    line = {"model_name": "x", "batch_size": 1, "seq_len": 8, "frontend_tree": _tree_v1(theirs.root)}
    (tmp_path / "theirs.jsonl").write_text(json.dumps(line) + "\n")
    result = CliRunner().invoke(evaluate_cmd, [str(tmp_path / "truth.jsonl"), str(tmp_path / "theirs.jsonl"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["models"]["x"] == {"ml": 100.0, "module": 200.0, "model": 200.0, "trees": 1}
