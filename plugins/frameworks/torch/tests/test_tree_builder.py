"""Tree extraction and per-node model features on a small BERT and on hand-made modules."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from irene_core.errors import IreneError
from irene_core.tree.schema import MODEL_FEATURES
from irene_framework_torch.tree_builder import trace_module

B, S, H, HEADS = 2, 16, 128, 2  # tiny_bert: bert-L2-H128 at batch 2, seq 16
MIB = 2**20


def _parent_of(record):
    return {node.id: parent for parent, node in record.root.walk_with_parent()}


def test_levels_scopes_and_functional_leaves(tiny_bert):
    record = tiny_bert.record
    record.check()
    parent = _parent_of(record)
    assert record.root.id == ":BertModel" and record.root.level == "model"
    assert record.model_name == "bert-L2-H128" and record.device == "cpu" and record.attention == "eager"
    assert not any(n.type == "ModuleList" for n in record.nodes())
    assert parent["encoder.layer.1:BertLayer"].id == "encoder:BertEncoder"  # the list's children hang under its parent
    attention = "encoder.layer.0.attention.self"
    kids = [c.id for c in record.root.find(attention).children]
    assert kids == [f"{attention}.query:Linear", f"{attention}.key:Linear", f"{attention}.value:Linear",
                    f"{attention}:MatMul", f"{attention}:Softmax", f"{attention}:MatMul#2"]
    for node in record.nodes():
        assert set(MODEL_FEATURES) <= set(node.features), node.id
        assert (node.level == "ml") == (not node.children), node.id
    leaf_types = {n.type for n in record.root.leaves()}
    assert leaf_types == {"Embedding", "LayerNorm", "Dropout", "Linear", "MatMul", "Softmax", "GELUActivation", "Tanh"}


def test_features_follow_the_formulas(tiny_bert):
    record = tiny_bert.record
    tokens, scores = B * S, B * HEADS * S * S
    query = record.root.find("encoder.layer.0.attention.self.query", "Linear").features
    assert query["flops"] == pytest.approx((2 * tokens * H * H + tokens * H) / 1e6)  # matmul + bias add
    # the paper's model: a 3-D matmul counts the weight per batch element, the bias add 2 per output
    assert query["mem_bytes"] == pytest.approx(4 * (B * (2 * S * H + H * H) + 2 * tokens * H) / MIB)
    assert query["mem_bytes_moved"] == pytest.approx(4 * (2 * tokens * H + H * H + H) / MIB)  # in, out, weight, bias
    assert query["num_parameters"] == H * H + H
    assert query["batch_size"] == B and query["seq_len"] == S
    matmul = record.root.find("encoder.layer.0.attention.self", "MatMul").features
    assert matmul["flops"] == pytest.approx(2 * scores * 64 / 1e6) and matmul["num_parameters"] == 0
    assert matmul["mem_bytes"] == pytest.approx(4 * B * HEADS * (S * 64 + S * S + 64 * S) / MIB)
    softmax = record.root.find("encoder.layer.0.attention.self", "Softmax").features
    assert softmax["flops"] == pytest.approx(5 * scores / 1e6)
    assert softmax["mem_bytes"] == pytest.approx(3 * 4 * scores / MIB)
    norm = record.root.find("embeddings.LayerNorm").features
    assert norm["flops"] == pytest.approx(8 * tokens * H / 1e6)
    assert norm["mem_bytes"] == pytest.approx(4 * 4 * tokens * H / MIB)
    word = record.root.find("embeddings.word_embeddings").features
    assert word["flops"] == 0 and word["mem_bytes"] == pytest.approx((8 * tokens + 4 * tokens * H) / MIB)  # ids, out
    assert word["mem_bytes_moved"] == pytest.approx((8 * tokens + 2 * 4 * tokens * H) / MIB)  # ids, rows read, out
    pooler = record.root.find("pooler.dense").features  # a 2-D input: addmm, the weight once
    assert pooler["mem_bytes"] == pytest.approx(4 * (2 * B * H + H * H) / MIB)
    assert record.root.find("pooler.activation").features["mem_bytes"] == pytest.approx(4 * B * H / MIB)
    dropout = record.root.find("embeddings.dropout").features  # eval dropout returns its input
    assert dropout["mem_bytes"] == dropout["mem_bytes_moved"] == 0
    assert record.root.features["num_parameters"] == sum(p.numel() for p in tiny_bert.model.parameters())


def test_a_node_is_its_subtree_plus_its_own_ops(tiny_bert):
    for node in tiny_bert.record.nodes():
        if not node.children:
            continue
        for key in ("flops", "mem_bytes", "mem_bytes_moved"):
            below = sum(c.features[key] for c in node.children)
            assert node.features[key] >= below - 1e-9, (node.id, key)
        if node.level == "module":
            assert node.features["num_parameters"] == sum(c.features["num_parameters"] for c in node.children)
    attention = tiny_bert.record.root.find("encoder.layer.0.attention.self")
    own = {key: attention.features[key] - sum(c.features[key] for c in attention.children)
           for key in ("flops", "mem_bytes")}
    # the score scaling, charged to the module itself: 1 flop, 3 elements moved per score (a mul)
    assert own == pytest.approx({"flops": B * HEADS * S * S / 1e6, "mem_bytes": 3 * 4 * B * HEADS * S * S / MIB})


def test_every_node_replays_the_work_it_was_charged(tiny_bert):
    """Flop counts per node, from an independent counter around each node's replay."""
    for node in tiny_bert.record.nodes():
        with FlopCounterMode(display=False) as counter:
            tiny_bert.output(node.id)
        assert counter.get_total_flops() == tiny_bert.op_totals[node.id].matmul_flops, node.id


def test_replay_runs_the_traced_values(tiny_bert):
    from irene_framework_torch.models import example_inputs

    seen = {}
    query = tiny_bert.model.encoder.layer[0].attention.self.query
    handle = query.register_forward_hook(lambda module, args, out: seen.setdefault("out", out))
    try:
        with torch.inference_mode():
            tiny_bert.model(**example_inputs(tiny_bert.model, B, S, torch.device("cpu")))
    finally:
        handle.remove()
    replayed = tiny_bert.output("encoder.layer.0.attention.self.query:Linear")
    assert torch.equal(replayed, seen["out"])


def test_replay_by_calls_and_by_seconds(tiny_bert):
    result = tiny_bert.replay("encoder.layer.0.attention.self:MatMul", calls=5)
    assert result.calls == 5 and result.seconds > 0 and result.mean_latency == result.seconds / 5
    timed = tiny_bert.replay("encoder.layer.0:BertLayer", seconds=0.05)
    assert timed.calls >= 1 and timed.seconds >= 0.05
    assert tiny_bert.replay(tiny_bert.record.root.id, calls=1).calls == 1


@pytest.mark.parametrize("kwargs, match", [
    ({}, "exactly one"),
    ({"calls": 2, "seconds": 1.0}, "exactly one"),
    ({"calls": 0}, "calls must be an integer >= 1"),
    ({"seconds": -1.0}, "seconds must be a finite number > 0"),
])
def test_replay_arguments_are_checked(tiny_bert, kwargs, match):
    with pytest.raises(IreneError, match=match):
        tiny_bert.replay(tiny_bert.record.root.id, **kwargs)


def test_unknown_node_and_meta_replay_fail_clearly(tiny_bert, framework):
    with pytest.raises(IreneError, match="no node 'nope:Linear'"):
        tiny_bert.replay("nope:Linear", calls=1)
    meta = framework.trace("bert-L2-H128", B, S, meta=True)
    with pytest.raises(IreneError, match="meta=True"):
        meta.replay(meta.record.root.id, calls=1)


def test_meta_device_gives_the_same_tree_and_features(tiny_bert, framework):
    meta = framework.trace("bert-L2-H128", B, S, meta=True)
    assert [(n.id, n.level, n.features) for n in meta.record.nodes()] == [
        (n.id, n.level, n.features) for n in tiny_bert.record.nodes()
    ]


def test_sdpa_gives_one_attention_leaf_per_layer(framework, tiny_bert):
    traced = framework.trace("bert-L2-H128", B, S, attention="sdpa")
    attention = traced.record.root.find("encoder.layer.0.attention.self")
    assert [c.type for c in attention.children] == ["Linear", "Linear", "Linear", "ScaledDotProductAttention"]
    scores = B * HEADS * S * S
    leaf = attention.children[-1]
    assert leaf.features["flops"] == pytest.approx((2 * 2 * scores * 64 + 6 * scores) / 1e6)  # QK, AV; scale+softmax
    with FlopCounterMode(display=False) as counter:  # torch's counter gives 0 for CPU flash attention...
        traced.output(leaf.id)
    assert counter.get_total_flops() == 0 and traced.op_totals[leaf.id].matmul_flops == 2 * 2 * scores * 64
    # mem_bytes charges the fused kernel as the eager ops it replaces (QKᵀ, scaling, softmax, A·V)
    eager = tiny_bert.record.root.find("encoder.layer.0.attention.self")
    assert attention.features["mem_bytes"] == pytest.approx(eager.features["mem_bytes"])


class _Double(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2


class _WritesItsInput(nn.Module):
    """Writes its input in place after a child has seen it."""

    def __init__(self) -> None:
        super().__init__()
        self.twice = _Double()
        self.proj = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.twice(x)
        x.add_(100.0)
        return self.proj(y) + torch.matmul(x, x.T).sum()


def test_inplace_writes_do_not_change_captured_inputs():
    model = _WritesItsInput().eval()
    x = torch.ones(3, 4)
    traced = trace_module(model, {"x": x}, model_name="writer", batch_size=3, seq_len=4, device=torch.device("cpu"))
    assert torch.equal(x, torch.full((3, 4), 101.0))  # the traced pass really wrote it
    assert traced.record.root.find("twice").level == "ml"  # a childless custom module is a leaf
    assert torch.equal(traced.output("twice:_Double"), torch.full((3, 4), 2.0))
    expected = model(torch.ones(3, 4))
    for _ in range(3):  # the root writes its input again at each replay: it gets fresh copies
        assert torch.equal(traced.output(traced.record.root.id), expected)


class _Boom(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("bad shape\nmore detail")


class _CallsBoom(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = _Boom()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def test_forward_failure_names_the_node():
    with pytest.raises(IreneError) as info:
        trace_module(_CallsBoom(), {"x": torch.ones(1)}, model_name="m", batch_size=1, seq_len=1,
                     device=torch.device("cpu"))
    assert str(info.value) == "forward pass failed in inner:_Boom: ValueError: bad shape"


class _Branches(nn.Module):
    """Reads tensor values: a boolean check, then (optionally) an integer."""

    def __init__(self, read_int: bool) -> None:
        super().__init__()
        self.read_int = read_int
        self.when_true = nn.Linear(4, 4)
        self.when_false = nn.Linear(4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.read_int and int(x.sum()) > 0:
            return x
        return self.when_true(x) if bool((x > -1).all()) else self.when_false(x)


class _Chosen(nn.Module):
    """Runs only the rows its mask chose, as a mixture of experts' eager loop runs each expert's tokens."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[(x > 0).any(dim=-1).nonzero()[:, 0]]


def test_meta_mode_refuses_a_shape_that_depends_on_values_in_one_line():
    meta = torch.device("meta")
    with pytest.raises(IreneError, match=r"^meta mode: the model's nonzero returns a shape that depends on tensor "
                                         r"values .* trace it without --meta in \(model\):_Chosen$"):
        trace_module(_Chosen(), {"x": torch.ones(2, 4, device=meta)}, model_name="chosen", batch_size=2, seq_len=4,
                     device=torch.device("cpu"), meta=True)


def test_meta_mode_answers_boolean_checks_like_real_inputs_and_refuses_other_reads():
    meta = torch.device("meta")
    traced = trace_module(_Branches(read_int=False).to(meta), {"x": torch.ones(2, 4, device=meta)},
                          model_name="branches", batch_size=2, seq_len=4, device=torch.device("cpu"), meta=True)
    assert [c.id for c in traced.record.root.children] == ["when_true:Linear"]
    with pytest.raises(IreneError, match=r"^meta mode: the model reads the value of a torch.float32 tensor .* "
                                         r"trace it without --meta in \(model\):_Branches$"):
        trace_module(_Branches(read_int=True).to(meta), {"x": torch.ones(2, 4, device=meta)},
                     model_name="branches", batch_size=2, seq_len=4, device=torch.device("cpu"), meta=True)
