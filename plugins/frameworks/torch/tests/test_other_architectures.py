"""Architectures beyond the paper, built from small configs saved as local model directories.

The tree is complete (every module the forward pass calls is a node, unless it runs inside a
primitive leaf) and the root's matmul flops equal ``torch.utils.flop_counter.FlopCounterMode``'s
total over the same forward pass (with its formula for fused attention applied to the CPU's
flash kernel, and the experts' grouped product counted expert by expert, which it otherwise counts
as zero).
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
        # mixtures of experts: 4 experts, 2 per token; 8 experts, 2 per token
        "mixtral": t.MixtralConfig(num_hidden_layers=2, num_key_value_heads=2, num_local_experts=4,
                                   num_experts_per_tok=2, **small),
        "qwen3_moe": t.Qwen3MoeConfig(num_hidden_layers=2, num_key_value_heads=2, head_dim=32, num_experts=8,
                                      num_experts_per_tok=2, moe_intermediate_size=64, **small),
    }


ARCHITECTURES = ("albert", "electra", "t5", "bart", "llama", "mixtral", "qwen3_moe")


def _grouped_mm_flops(rows: torch.Tensor, weights: torch.Tensor, offsets: torch.Tensor, *args, out_val=None,
                      **kwargs) -> int:
    """A grouped product's flops, expert by expert: each expert's rows (from the offsets) × its matrix."""
    per_expert = torch.diff(offsets, prepend=offsets.new_zeros(1))
    return sum(2 * int(m) * weights.shape[1] * weights.shape[2] for m in per_expert)


_grouped_mm_flops._get_raw = True  # type: ignore[attr-defined]  # FlopCounterMode: tensors, not shapes
#: What FlopCounterMode leaves at zero: the CPU's flash-attention kernel and the experts' grouped product.
UNCOUNTED = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: lambda q, k, v, *a, **kw: sdpa_flop_count(q, k, v),
    torch.ops.aten._grouped_mm: _grouped_mm_flops,
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
    with torch.inference_mode(), FlopCounterMode(display=False, custom_mapping=UNCOUNTED) as counter:
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


def test_mixture_of_experts_reads_the_experts_its_tokens_reach(framework, model_dir):
    """One token of a decode reaches 2 of Mixtral's 4 experts, a prompt all of them: the experts'
    grouped products read that share of the weights, and each runs its tokens' rows alone."""
    config = _configs()["mixtral"]
    experts = "layers.0.mlp.experts"

    def grouped(batch: int, seq: int) -> list:
        record = framework.trace(model_dir("mixtral", config), batch, seq, meta=True).record
        return [n for n in record.nodes() if n.scope == experts and n.type == "GroupedMatMul"]

    one, prompt = grouped(1, 1)[0], grouped(2, 64)[0]
    hidden, inner, experts_n = config.hidden_size, config.intermediate_size, config.num_local_experts
    weights = experts_n * hidden * 2 * inner * 4  # gate and up projections of every expert, float32 bytes

    def moved(pairs: int, reached: float) -> float:  # MiB: rows in and out, the offsets, the weights reached
        return (pairs * (hidden + 2 * inner) * 4 + experts_n * 4 + weights * reached) / 2**20

    assert one.features["mem_bytes_moved"] == pytest.approx(moved(2, 1 - (3 / 4) ** 2), rel=1e-4)  # 1.75 of 4
    assert prompt.features["mem_bytes_moved"] == pytest.approx(moved(256, 1 - (3 / 4) ** 256), rel=1e-4)  # all
    assert one.features["flops"] == pytest.approx(2 * 2 * hidden * 2 * inner / 1e6)  # 2 pairs × its product
    # the paper's byte model: each expert's product, m·k + m·n + k·n elements, over the experts reached
    paper = 2 * (hidden + 2 * inner) + experts_n * (1 - (3 / 4) ** 2) * hidden * 2 * inner
    assert one.features["mem_bytes"] == pytest.approx(paper * 4 / 2**20, rel=1e-4)


def test_experts_looped_where_the_device_has_no_grouped_kernel_count_alike(framework, model_dir, monkeypatch):
    """On a GPU before compute capability 8.0 (or torch before 2.8 on the CPU) transformers runs the experts
    as its own op, one product per expert inside: the same leaves, flops and bytes as the grouped kernel."""
    import transformers.integrations.moe as moe

    directory = model_dir("mixtral", _configs()["mixtral"])
    grouped = framework.trace(directory, B, S).record
    monkeypatch.setattr(moe, "_can_use_grouped_mm", lambda *args: False)
    looped = framework.trace(directory, B, S)
    assert any(n.type == "GroupedMatMul" for n in looped.record.nodes())
    assert [(n.id, n.features) for n in looped.record.nodes()] == [(n.id, n.features) for n in grouped.nodes()]
    assert looped.op_totals[looped.record.root.id].matmul_flops > 0
