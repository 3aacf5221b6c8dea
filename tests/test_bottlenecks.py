import pytest

from irene_core.tree.bottlenecks import own_ops_share, type_shares
from irene_core.tree.schema import Node, TreeRecord


def _n(i, level, e, kids=(), t=None, synthetic=False):
    return Node(id=i, scope=i, type=t or i, level=level, predicted_energy=e, children=list(kids), synthetic=synthetic)


def _record() -> TreeRecord:
    def layer(k: int) -> Node:
        attn = _n(f"A{k}", "module", 3.0, t="Attn", kids=[
            _n(f"q{k}", "ml", 1.0, t="Linear"), _n(f"m{k}", "ml", 1.5, t="MatMul"),
            _n(f"o{k}", "ml", 0.5, t="OwnOps", synthetic=True),
        ])
        return _n(f"L{k}", "module", 4.0, t="Layer", kids=[attn, _n(f"f{k}", "ml", 1.0, t="Linear")])

    root = _n("root", "model", 10.0, t="M", kids=[layer(0), layer(1), _n("own", "ml", 2.0, t="OwnOps", synthetic=True)])
    return TreeRecord(model_name="m", batch_size=1, seq_len=1, root=root)


def test_module_type_shares():
    shares = {s.type: (s.count, s.energy_j, s.share_pct) for s in type_shares(_record(), "module")}
    assert shares == {"Layer": (2, 8.0, 80.0), "Attn": (2, 6.0, 60.0)}


def test_leaf_shares_include_own_ops_and_sum_to_100():
    shares = type_shares(_record(), "ml")
    assert [s.type for s in shares] == ["Linear", "MatMul", "OwnOps"]
    assert sum(s.share_pct for s in shares) == pytest.approx(100.0)
    assert own_ops_share(_record()) == pytest.approx(30.0)


def test_nested_same_type_counted_once():
    inner = _n("in", "module", 2.0, t="Block")
    rec = TreeRecord(model_name="m", batch_size=1, seq_len=1,
                     root=_n("r", "model", 4.0, t="M", kids=[_n("out", "module", 3.0, t="Block", kids=[inner])]))
    assert [(s.type, s.energy_j) for s in type_shares(rec, "module")] == [("Block", 3.0)]
