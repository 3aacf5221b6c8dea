from irene_core.plugins import get_registry
from irene_core.tree.schema import Node, TreeRecord
from irene_features_model.extractor import TreeModelFeatures


def _record() -> TreeRecord:
    def leaf(s: str, f: float, p: float) -> Node:
        features = {"flops": f, "mem_bytes": 1.0, "num_parameters": p}
        return Node(id=s, scope=s, type="Linear", level="ml", features=features)

    block = Node(id="b", scope="b", type="Block", level="module", children=[leaf("b.x", 2.0, 10), leaf("b.y", 3.0, 5)])
    partial = Node(id="c", scope="c", type="Block", level="module", features={"flops": 7.0},
                   children=[Node(id="c.z", scope="c.z", type="Softmax", level="ml")])
    root = Node(id="m", scope="", type="M", level="model", children=[block, partial])
    return TreeRecord(model_name="m", batch_size=4, seq_len=16, root=root)


def test_sums_missing_additive_features_and_sets_input_size():
    record = _record()
    TreeModelFeatures().annotate(record)
    block = record.root.find("b")
    assert block.features["flops"] == 5.0 and block.features["num_parameters"] == 15.0
    partial = record.root.find("c")
    assert partial.features["flops"] == 7.0  # kept, not overwritten
    assert "num_parameters" not in partial.features  # a child's value is unknown: not invented
    assert "flops" in record.root.features and record.root.features["flops"] == 12.0
    assert all(n.features["batch_size"] == 4 and n.features["seq_len"] == 16 for n in record.nodes())


def test_registered_through_entry_point():
    assert isinstance(get_registry().get("features", "model"), TreeModelFeatures)
