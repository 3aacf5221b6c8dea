"""Prefill and decode: the causal-LM tree with its lm_head, a pinned KV cache that replays without
growing, attention flops that follow the context (tiny 2-layer configs of each decoder family)."""

from __future__ import annotations

import pytest
import torch
import transformers as t
from torch.utils.flop_counter import FlopCounterMode

from irene_framework_torch.kv_cache import KVCacheUpdate

SMALL = {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2,
         "vocab_size": 256, "max_position_embeddings": 512, "num_hidden_layers": 2,
         "bos_token_id": None, "eos_token_id": None, "pad_token_id": None}
WINDOW = 24  # sliding window of the gemma2 and phi3 configs: shorter than the contexts below
FAMILIES = {
    "llama": lambda: t.LlamaConfig(**SMALL),
    "qwen2": lambda: t.Qwen2Config(**SMALL),
    "qwen3": lambda: t.Qwen3Config(head_dim=16, **SMALL),
    "mistral": lambda: t.MistralConfig(sliding_window=None, **SMALL),
    "gemma2": lambda: t.Gemma2Config(head_dim=16, sliding_window=WINDOW, **SMALL),
    "phi3": lambda: t.Phi3Config(sliding_window=WINDOW, **SMALL),
}
CONTEXT = 40


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> dict[str, str]:
    """Each family's tiny config saved as a local model directory."""
    out = {}
    for name, make in FAMILIES.items():
        directory = tmp_path_factory.mktemp(name)
        make().to_json_file(str(directory / "config.json"))
        out[name] = str(directory)
    return out


def _writers(traced) -> list[KVCacheUpdate]:
    return [m for m in traced.model.modules() if isinstance(m, KVCacheUpdate)]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_decode_tree_has_lm_head_and_a_cache_of_context_length_that_replays_unchanged(framework, configs, family):
    traced = framework.trace(configs[family], 2, 1, phase="decode", context_len=CONTEXT)
    record = traced.record
    assert (record.phase, record.context_len, record.dtype, record.seq_len) == ("decode", CONTEXT, "float32", 1)
    ids = [n.id for n in record.nodes()]
    assert "lm_head:Linear" in ids
    assert record.root.find("lm_head").features["flops"] == pytest.approx(2 * 2 * 64 * 256 / 1e6)  # last token only
    writers = _writers(traced)
    assert [n.type for n in record.nodes()].count("KVCacheUpdate") == len(writers) == 2
    sliding = family in ("gemma2", "phi3")
    kept = [WINDOW - 1 if sliding and (family == "phi3" or i == 0) else CONTEXT for i in range(2)]  # gemma2 alternates
    for writer, context in zip(writers, kept, strict=True):
        assert writer.layer.keys.shape == (2, 2, context + 1, 16)  # the context tokens plus this step's
        assert writer.layer.get_seq_length() == CONTEXT
    before = [(w.layer.keys.clone(), w.layer.values.clone()) for w in writers]
    logits = traced.output(record.root.id).logits
    for node_id in ids:
        traced.replay(node_id, calls=3)
    for writer, (keys, values), context in zip(writers, before, kept, strict=True):
        assert writer.layer.keys.shape[-2] == context + 1 and writer.layer.get_seq_length() == CONTEXT
        assert torch.equal(writer.layer.keys, keys) and torch.equal(writer.layer.values, values)
    assert torch.equal(traced.output(record.root.id).logits, logits)  # the same work, the same result


def _attention_matmul_flops(record) -> float:
    return sum(n.features["flops"] for n in record.nodes() if n.type == "MatMul")


@pytest.mark.parametrize("family", ["llama", "phi3"])
def test_decode_attention_flops_grow_with_context_and_match_flop_counter_mode(framework, configs, family):
    scores = {}
    for context in (16, 200):
        traced = framework.trace(configs[family], 2, 1, phase="decode", context_len=context)
        record = traced.record
        for node in record.nodes():
            if node.type.endswith("Attention"):
                with FlopCounterMode(display=False) as counter:
                    traced.output(node.id)
                ours = traced.op_totals[node.id].matmul_flops
                assert ours == pytest.approx(counter.get_total_flops(), rel=0.01)
        scores[context] = _attention_matmul_flops(record)
    keys = {16: 17, 200: 201 if family == "llama" else WINDOW}  # phi3 slides: at most its window of keys
    assert scores[200] / scores[16] == pytest.approx(keys[200] / keys[16], rel=1e-9)
    assert scores[16] == pytest.approx(2 * 2 * (2 * 2 * 4 * 17 * 16) / 1e6, rel=1e-9)  # 2 layers × QKᵀ, A·V


def test_prefill_fills_the_cache_and_logits_all_computes_every_position(framework, configs):
    last = framework.trace(configs["llama"], 2, 8, phase="prefill")
    every = framework.trace(configs["llama"], 2, 8, phase="prefill", logits="all", meta=True)
    head = 2 * 64 * 256 / 1e6
    assert last.record.root.find("lm_head").features["flops"] == pytest.approx(2 * head)
    assert every.record.root.find("lm_head").features["flops"] == pytest.approx(2 * 8 * head)
    assert last.record.meta["kv_cache_bytes"] == 2 * 2 * (2 * 2 * 8 * 16) * 4  # layers × K,V × [2, 2, 8, 16] fp32
    writer = _writers(last)[0]
    keys = writer.layer.keys.clone()
    for _ in range(3):
        last.replay("model.layers.0.self_attn:LlamaAttention", calls=2)
    assert writer.layer.keys.shape == (2, 2, 8, 16) and torch.equal(writer.layer.keys, keys)
    forward = framework.trace(configs["llama"], 2, 8, meta=True)
    assert forward.record.phase == "forward" and forward.record.root.find("lm_head") is None


def test_dtype_sets_parameters_cache_and_record(framework, configs):
    traced = framework.trace(configs["qwen3"], 1, 1, phase="decode", context_len=8, dtype="bfloat16")
    assert traced.record.dtype == "bfloat16" == traced.record.meta["kv_cache_dtype"]
    assert {p.dtype for p in traced.model.parameters()} == {torch.bfloat16}
    assert _writers(traced)[0].layer.keys.dtype == torch.bfloat16
