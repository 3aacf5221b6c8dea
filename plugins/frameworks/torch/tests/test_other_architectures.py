"""Architectures beyond the paper, built from small configs saved as local model directories.

The tree is complete (every module the forward pass calls is a node, unless it runs inside a
primitive leaf) and the root's matmul flops equal ``torch.utils.flop_counter.FlopCounterMode``'s
total over the same forward pass (with its formula for fused attention applied to the CPU's
flash kernel, which it otherwise counts as zero).
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from irene_framework_torch.leaf_types import is_primitive_module
from irene_framework_torch.models import example_inputs

B, S = 2, 16


def _configs() -> dict[str, object]:
    import transformers as t

    small = {"hidden_size": 128, "num_attention_heads": 4, "intermediate_size": 256, "vocab_size": 1000}
    return {
        "albert": t.AlbertConfig(num_hidden_layers=3, embedding_size=64, **small),
        "electra": t.ElectraConfig(num_hidden_layers=2, embedding_size=64, **small),
        "t5": t.T5Config(num_layers=2, d_model=128, num_heads=4, d_kv=32, d_ff=256, vocab_size=1000),
        "bart": t.BartConfig(encoder_layers=2, decoder_layers=2, d_model=128, encoder_attention_heads=4,
                             decoder_attention_heads=4, encoder_ffn_dim=256, decoder_ffn_dim=256, vocab_size=1000),
        "llama": t.LlamaConfig(num_hidden_layers=2, num_key_value_heads=2, **small),
    }


ARCHITECTURES = ("albert", "electra", "t5", "bart", "llama")
CPU_FLASH = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: lambda q, k, v, *a, **kw: sdpa_flop_count(q, k, v)
}


def _called_module_scopes(model: torch.nn.Module, inputs: dict) -> set[str]:
    """Scopes of the modules a plain forward pass calls, except those called inside a primitive."""
    names = {module: name for name, module in model.named_modules()}
    depth_in_primitive = [0]
    seen: set[str] = set()

    def before(module, args):
        if depth_in_primitive[0] == 0:
            seen.add(names[module])
        if is_primitive_module(module) or depth_in_primitive[0]:
            depth_in_primitive[0] += 1

    def after(module, args, out):
        if depth_in_primitive[0]:
            depth_in_primitive[0] -= 1

    handles = [m.register_forward_pre_hook(before) for m in names] + [m.register_forward_hook(after) for m in names]
    try:
        with torch.inference_mode():
            model(**inputs)
    finally:
        for handle in handles:
            handle.remove()
    return seen


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_complete_tree_and_flops_equal_torch_counter(framework, model_dir, arch, attention):
    traced = framework.trace(model_dir(arch, _configs()[arch]), B, S, attention=attention)
    record = traced.record
    inputs = example_inputs(traced.model, B, S, torch.device("cpu"))
    assert {n.scope for n in record.nodes()} >= _called_module_scopes(traced.model, inputs)
    with torch.inference_mode(), FlopCounterMode(display=False, custom_mapping=CPU_FLASH) as counter:
        traced.model(**inputs)
    root = traced.op_totals[record.root.id]
    assert root.matmul_flops == counter.get_total_flops() > 0
    assert record.root.features["flops"] == pytest.approx(root.flops / 1e6)
    leaf_types = {n.type for n in record.root.leaves()}
    assert ({"MatMul", "Softmax"} <= leaf_types) == (attention == "eager")
    assert ("ScaledDotProductAttention" in leaf_types) == (attention == "sdpa")
    meta = framework.trace(model_dir(arch, _configs()[arch]), B, S, attention=attention, meta=True)
    assert [(n.id, n.features) for n in meta.record.nodes()] == [(n.id, n.features) for n in record.nodes()]


def test_shared_layers_are_one_node_per_call(framework, model_dir):
    record = framework.trace(model_dir("albert", _configs()["albert"]), B, S, meta=True).record
    layer = "encoder.albert_layer_groups.0.albert_layers.0"
    calls = [n for n in record.nodes() if n.scope == layer]
    assert [n.id for n in calls] == [f"{layer}:AlbertLayer", f"{layer}:AlbertLayer#2", f"{layer}:AlbertLayer#3"]
    assert len({n.features["flops"] for n in calls}) == 1
