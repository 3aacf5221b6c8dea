import math

import pytest
from pydantic import ValidationError

from irene_core.tree.schema import Node, TreeRecord, unique_id


def _tree() -> TreeRecord:
    leaves = [Node(id=f"a.{i}", scope=f"a.{i}", type="Linear", level="ml", ground_truth_energy=1.0) for i in range(2)]
    mod = Node(id="a", scope="a", type="Block", level="module", children=leaves, ground_truth_energy=3.0)
    op = Node(id="a:MatMul", scope="a", type="MatMul", level="ml")
    own = Node(id="own", scope="", type="OwnOps", level="ml", synthetic=True)
    root = Node(id="root", scope="", type="M", level="model", children=[mod, op, own])
    return TreeRecord(model_name="m", batch_size=1, seq_len=8, root=root)


def test_walk_order_levels_and_leaves():
    rec = _tree()
    assert [n.id for n in rec.root.walk()] == ["root", "a", "a.0", "a.1", "a:MatMul", "own"]
    assert [n.id for n in rec.nodes()] == ["root", "a", "a.0", "a.1", "a:MatMul"]
    assert [n.id for n in rec.root.leaves()] == ["a.0", "a.1", "a:MatMul"]
    assert {k: len(v) for k, v in rec.by_level().items()} == {"ml": 3, "module": 1, "model": 1}
    assert rec.root.own_ops().id == "own" and [c.id for c in rec.root.real_children()] == ["a", "a:MatMul"]


def test_find_prefers_module_then_type():
    rec = _tree()
    assert rec.root.find("a").id == "a"
    assert rec.root.find("a", "MatMul").id == "a:MatMul"
    assert rec.root.find("nope") is None


@pytest.mark.parametrize("energy", [-1.0, math.nan, math.inf])
def test_energy_must_be_finite_and_non_negative(energy):
    with pytest.raises(ValidationError):
        Node(id="x", scope="x", type="T", level="ml", ground_truth_energy=energy)


def test_check_rejects_duplicate_ids_and_non_model_root():
    rec = _tree()
    rec.root.children[0].children[1].id = "a.0"
    with pytest.raises(ValueError, match=r"duplicate node id 'a\.0'"):
        rec.check()
    bad = TreeRecord(model_name="m", batch_size=1, seq_len=1, root=Node(id="r", scope="", type="T", level="module"))
    with pytest.raises(ValueError, match="level 'model'"):
        bad.check()


def test_unique_id_numbers_repeats():
    taken: set[str] = set()
    assert [unique_id("s", "MatMul", taken) for _ in range(3)] == ["s:MatMul", "s:MatMul#2", "s:MatMul#3"]
