"""Node signatures: identical work shares one, any difference in type, configuration, parameters or inputs
does not; names and positions never count; meta traces sign like real ones."""

from __future__ import annotations

from collections import defaultdict

import pytest
import torch
from torch import nn
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertLayer

from irene_core.tree.signature import node_classes
from irene_framework_torch.tree_builder import trace_module

BASE = {"hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 128, "attn_implementation": "eager"}


class Stack(nn.Module):
    """BertLayers called in turn, each with its own config."""

    def __init__(self, configs: list[dict]):
        super().__init__()
        self.layers = nn.ModuleList(BertLayer(BertConfig(**{**BASE, **c})).eval() for c in configs)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            out = layer(hidden)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden


def _layer_signatures(configs: list[dict], meta: bool = False) -> list[str]:
    device = torch.device("meta" if meta else "cpu")
    with device:
        model = Stack(configs)
    traced = trace_module(model, {"hidden": torch.randn(2, 8, 64, device=device)}, model_name="stack",
                          batch_size=2, seq_len=8, device=device, meta=meta)
    return [traced.record.root.find(f"layers.{i}", "BertLayer").signature for i in range(len(configs))]


def test_identical_bert_layers_share_a_signature_down_to_every_descendant(framework):
    record = framework.trace("bert-L2-H128", 2, 16, meta=True).record
    layer0, layer1 = (record.root.find(f"encoder.layer.{i}", "BertLayer") for i in (0, 1))
    assert layer0.signature and layer0.signature == layer1.signature
    pairs = list(zip(layer0.walk(), layer1.walk(), strict=True))
    assert all(a.signature == b.signature and a.id != b.id for a, b in pairs)
    assert len({n.signature for n in record.nodes()}) == 24  # 51 nodes, as in bert-base's 251 in 24 classes


@pytest.mark.parametrize("change", [{"layer_norm_eps": 1e-5}, {"hidden_act": "relu"}, {"num_attention_heads": 4},
                                    {"intermediate_size": 256}])
def test_a_different_configuration_gives_another_signature(change):
    first, changed, again = _layer_signatures([{}, change, {}])
    assert first == again  # same configuration, another position
    assert changed != first


def test_inputs_and_function_count_but_not_names():
    a, b = (torch.randn(2, 8, 64) for _ in range(2))

    class Pair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.left, self.right, self.wide = nn.Linear(64, 64), nn.Linear(64, 64), nn.Linear(64, 32)

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return (self.left(x) + self.right(y)).softmax(-1).sum() + self.wide(x[:, :4]).softmax(1).sum()

    record = trace_module(Pair(), {"x": a, "y": b}, model_name="pair", batch_size=2, seq_len=8,
                          device=torch.device("cpu")).record
    by_id = {n.id: n.signature for n in record.nodes()}
    assert by_id["left:Linear"] == by_id["right:Linear"]  # other weights' values and names do not count
    assert by_id["wide:Linear"] != by_id["left:Linear"]  # other parameter shapes and input shape do
    assert by_id[":Softmax"] != by_id[":Softmax#2"]  # the dim argument and the input shape do


def test_meta_traces_sign_like_real_ones_and_classes_follow_signatures(framework, tiny_bert):
    real, meta = tiny_bert.record, framework.trace("bert-L2-H128", 2, 16, meta=True).record
    assert {n.id: n.signature for n in real.nodes()} == {n.id: n.signature for n in meta.nodes()}
    assert _layer_signatures([{}, {}], meta=True) == _layer_signatures([{}, {}])
    other_size = framework.trace("bert-L2-H128", 2, 8, meta=True).record
    same = {n.id for n in real.nodes() if n.signature == other_size.root.find(n.scope, n.type).signature}
    assert same == {"pooler.activation:Tanh"}  # sees the first token only (pooler.dense too, but strided by seq)
    groups = defaultdict(list)
    for node in real.nodes():
        groups[node.signature].append(node.id)
    assert sorted(sorted(n.id for n in c) for c in node_classes(real)) == sorted(sorted(g) for g in groups.values())


def test_gpt2_layers_share_one_signature_despite_their_layer_idx(framework):
    record = framework.trace("distilgpt2", 1, 8, meta=True).record
    blocks = [n for n in record.nodes() if n.type == "GPT2Block"]
    assert len(blocks) == 6 and len({b.signature for b in blocks}) == 1
