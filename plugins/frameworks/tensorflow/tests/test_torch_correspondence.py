"""BERT-base and GPT-2 traced by the TensorFlow and the torch tracer: same root flops (within 2 %), a 1:1
map between their layers, leaves and functional ops where the architectures agree, and the same
``mem_bytes`` (the paper's byte model) where the primitives agree (docs/tensorflow-tracer.md,
"KerasHub vs transformers")."""

from __future__ import annotations

import pytest

BATCH, SEQ = 2, 16
#: Node types whose flops are matmul work, compared within 2 %.  LayerNorm, Softmax and Embedding
#: nodes are compared by type only: their few flops depend on how each framework decomposes them.
MATMUL_WORK = {"Linear", "Conv1D", "MatMul"}
#: torch leaf type → the type of the TensorFlow leaf doing the same math.
SAME_MATH = {"Conv1D": "Linear"}

BERT_TOP = [
    ("embeddings.word_embeddings:Embedding", "token_embedding:Embedding"),
    ("embeddings.position_embeddings:Embedding", "position_embedding:Embedding"),
    ("embeddings.token_type_embeddings:Embedding", "segment_embedding:Embedding"),
    ("embeddings.LayerNorm:LayerNorm", "embeddings_layer_norm:LayerNorm"),
    ("pooler.dense:Linear", "pooled_dense:Linear"),
]
BERT_LAYER = [
    ("encoder.layer.{i}:BertLayer", "transformer_layer_{i}:TransformerEncoder"),
    ("encoder.layer.{i}.attention.self.query:Linear", "transformer_layer_{i}.self_attention_layer.query:Linear"),
    ("encoder.layer.{i}.attention.self.key:Linear", "transformer_layer_{i}.self_attention_layer.key:Linear"),
    ("encoder.layer.{i}.attention.self.value:Linear", "transformer_layer_{i}.self_attention_layer.value:Linear"),
    ("encoder.layer.{i}.attention.self:MatMul", "transformer_layer_{i}.self_attention_layer:MatMul"),
    ("encoder.layer.{i}.attention.self:Softmax", "transformer_layer_{i}.self_attention_layer.softmax:Softmax"),
    ("encoder.layer.{i}.attention.self:MatMul#2", "transformer_layer_{i}.self_attention_layer:MatMul#2"),
    ("encoder.layer.{i}.attention.output.dense:Linear",
     "transformer_layer_{i}.self_attention_layer.attention_output:Linear"),
    ("encoder.layer.{i}.attention.output.LayerNorm:LayerNorm",
     "transformer_layer_{i}.self_attention_layer_norm:LayerNorm"),
    ("encoder.layer.{i}.intermediate.dense:Linear", "transformer_layer_{i}.feedforward_intermediate_dense:Linear"),
    ("encoder.layer.{i}.output.dense:Linear", "transformer_layer_{i}.feedforward_output_dense:Linear"),
    ("encoder.layer.{i}.output.LayerNorm:LayerNorm", "transformer_layer_{i}.feedforward_layer_norm:LayerNorm"),
]
GPT2_TOP = [
    ("wte:Embedding", "token_embedding:Embedding"),
    ("wpe:Embedding", "position_embedding:Embedding"),
    ("ln_f:LayerNorm", "layer_norm:LayerNorm"),
]
GPT2_LAYER = [
    ("h.{i}:GPT2Block", "transformer_layer_{i}:TransformerDecoder"),
    ("h.{i}.ln_1:LayerNorm", "transformer_layer_{i}.self_attention_layer_norm:LayerNorm"),
    ("h.{i}.attn:GPT2Attention", "transformer_layer_{i}.self_attention:CachedMultiHeadAttention"),
    ("h.{i}.attn:MatMul", "transformer_layer_{i}.self_attention:MatMul"),
    ("h.{i}.attn:Softmax", "transformer_layer_{i}.self_attention.softmax:Softmax"),
    ("h.{i}.attn:MatMul#2", "transformer_layer_{i}.self_attention:MatMul#2"),
    ("h.{i}.attn.c_proj:Conv1D", "transformer_layer_{i}.self_attention.attention_output:Linear"),
    ("h.{i}.ln_2:LayerNorm", "transformer_layer_{i}.feedforward_layer_norm:LayerNorm"),
    ("h.{i}.mlp.c_fc:Conv1D", "transformer_layer_{i}.feedforward_intermediate_dense:Linear"),
    ("h.{i}.mlp.c_proj:Conv1D", "transformer_layer_{i}.feedforward_output_dense:Linear"),
]
#: GPT-2 projects q, k and v with one fused Conv1D; KerasHub with three EinsumDense layers.
GPT2_FUSED_QKV = ("h.{i}.attn.c_attn:Conv1D",
                  [f"transformer_layer_{{i}}.self_attention.{p}:Linear" for p in ("query", "key", "value")])

#: torch Linear leaf → the activation leaf after it, which the Keras Dense fuses (compared as one).
FUSED_ACTIVATION = {
    "pooler.dense:Linear": "pooler.activation:Tanh",
    **{f"encoder.layer.{i}.intermediate.dense:Linear":
       f"encoder.layer.{i}.intermediate.intermediate_act_fn:GELUActivation" for i in range(12)},
}
#: GPT-2's Conv1D (addmm on the flattened input: the weight once) ↔ a Keras Linear without activation
#: (torch's Linear on a 3-D input: the weight once per sequence, plus the bias add).
GPT2_PROJECTIONS = [("h.{i}.attn.c_proj:Conv1D", "transformer_layer_{i}.self_attention.attention_output:Linear"),
                    ("h.{i}.mlp.c_proj:Conv1D", "transformer_layer_{i}.feedforward_output_dense:Linear")]
MIB = 2**20

CASES = {
    "bert-base-uncased": (BERT_TOP, BERT_LAYER, {"BertLayer"}, {"TransformerEncoder"}),
    "gpt2": (GPT2_TOP, GPT2_LAYER, {"GPT2Block", "GPT2Attention"}, {"TransformerDecoder", "CachedMultiHeadAttention"}),
}
LEAF_TYPES = {"Linear", "Conv1D", "MatMul", "Softmax", "LayerNorm", "Embedding"}


def pairs(model: str) -> list[tuple[str, str]]:
    top, layer, _, _ = CASES[model]
    return top + [(t.format(i=i), k.format(i=i)) for i in range(12) for t, k in layer]


@pytest.fixture(params=list(CASES))
def both(request, meta_trace):
    model = request.param
    return model, meta_trace("torch", model, BATCH, SEQ), meta_trace("tensorflow", model, BATCH, SEQ)


def test_root_flops_within_two_percent(both):
    _, torch_tree, tf_tree = both
    ratio = tf_tree.root.features["flops"] / torch_tree.root.features["flops"]
    assert abs(ratio - 1) < 0.02, ratio
    assert tf_tree.root.features["num_parameters"] == torch_tree.root.features["num_parameters"]


def test_layers_leaves_and_ops_map_one_to_one(both):
    model, torch_tree, tf_tree = both
    torch_nodes = {n.id: n for n in torch_tree.nodes()}
    tf_nodes = {n.id: n for n in tf_tree.nodes()}
    for torch_id, tf_id in pairs(model):
        t, k = torch_nodes[torch_id], tf_nodes[tf_id]
        assert k.level == t.level, (torch_id, tf_id)
        if t.level == "ml":
            assert k.type == SAME_MATH.get(t.type, t.type), (torch_id, tf_id)
        if t.type in MATMUL_WORK or t.level == "module":
            assert k.features["flops"] == pytest.approx(t.features["flops"], rel=0.02), (torch_id, tf_id)
    # nothing of these kinds is left out on either side
    _, _, torch_modules, tf_modules = CASES[model]
    fused = [] if model != "gpt2" else [(GPT2_FUSED_QKV[0].format(i=i), [k.format(i=i) for k in GPT2_FUSED_QKV[1]])
                                        for i in range(12)]
    mapped_torch = {t for t, _ in pairs(model)} | {t for t, _ in fused}
    mapped_tf = {k for _, k in pairs(model)} | {k for _, ks in fused for k in ks}
    assert {i for i, n in torch_nodes.items() if n.type in LEAF_TYPES | torch_modules} == mapped_torch
    assert {i for i, n in tf_nodes.items() if n.type in LEAF_TYPES | tf_modules} == mapped_tf
    for torch_id, tf_ids in fused:
        total = sum(tf_nodes[k].features["flops"] for k in tf_ids)
        assert total == pytest.approx(torch_nodes[torch_id].features["flops"], rel=0.01)


def test_mem_bytes_agree_where_the_primitives_agree(both):
    model, torch_tree, tf_tree = both
    torch_nodes = {n.id: n for n in torch_tree.nodes()}
    tf_nodes = {n.id: n for n in tf_tree.nodes()}
    compared = 0
    for torch_id, tf_id in pairs(model):
        t, k = torch_nodes[torch_id], tf_nodes[tf_id]
        if t.level != "ml" or t.type != k.type:
            continue
        expected = t.features["mem_bytes"]
        if torch_id in FUSED_ACTIVATION:
            expected += torch_nodes[FUSED_ACTIVATION[torch_id]].features["mem_bytes"]
        assert k.features["mem_bytes"] == pytest.approx(expected, rel=0.01), (torch_id, tf_id)
        compared += 1
    assert compared == {"bert-base-uncased": 5 + 11 * 12, "gpt2": 3 + 5 * 12}[model]


def test_bert_layers_and_root_move_the_same_bytes(meta_trace):
    torch_tree = meta_trace("torch", "bert-base-uncased", BATCH, SEQ)
    tf_tree = meta_trace("tensorflow", "bert-base-uncased", BATCH, SEQ)
    assert tf_tree.root.features["mem_bytes"] == pytest.approx(torch_tree.root.features["mem_bytes"], rel=0.01)
    for i in range(12):
        t = torch_tree.root.find(f"encoder.layer.{i}", "BertLayer").features["mem_bytes"]
        k = tf_tree.root.find(f"transformer_layer_{i}", "TransformerEncoder").features["mem_bytes"]
        assert k == pytest.approx(t, rel=0.01), i


def test_gpt2_projections_differ_by_the_weight_per_sequence_and_the_bias_add(meta_trace):
    torch_nodes = {n.id: n for n in meta_trace("torch", "gpt2", BATCH, SEQ).nodes()}
    tf_nodes = {n.id: n for n in meta_trace("tensorflow", "gpt2", BATCH, SEQ).nodes()}
    for i in range(12):
        for torch_pattern, tf_pattern in GPT2_PROJECTIONS:
            conv1d = torch_nodes[torch_pattern.format(i=i)].features["mem_bytes"]
            n_in, n_out = (768, 768) if "attn" in torch_pattern else (3072, 768)
            extra = 4 * ((BATCH - 1) * n_in * n_out + 2 * BATCH * SEQ * n_out)
            assert tf_nodes[tf_pattern.format(i=i)].features["mem_bytes"] == pytest.approx(conv1d + extra / MIB)
