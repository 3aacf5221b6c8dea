"""Functional models, saved .keras files, presets and the framework's errors."""

from __future__ import annotations

import pytest

from irene_core.errors import IreneError


def functional_model(keras):
    """Token ids → Embedding → MultiHeadAttention (no dropout: Keras's fused path) → Dense; auto names."""
    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(100, 16)(ids)
    x = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(x, x)
    out = keras.layers.Dense(3, activation="tanh")(x)
    return keras.Model(ids, out, name="functional_tiny")


def test_functional_attention_model(keras_modules, tf_framework):
    _, keras = keras_modules
    traced = tf_framework.trace(functional_model(keras), 2, 8)
    record = traced.record
    assert record.model_name == "functional_tiny" and record.meta["model_class"] == "Functional"
    ids = [n.id for n in record.nodes()]
    assert ids == [
        ":Functional",
        "embedding:Embedding",
        "multi_head_attention:MultiHeadAttention",
        "multi_head_attention.query:Linear",
        "multi_head_attention.key:Linear",
        "multi_head_attention.value:Linear",
        "multi_head_attention:MatMul",
        "multi_head_attention:Softmax",
        "multi_head_attention:MatMul#2",
        "multi_head_attention.attention_output:Linear",
        "dense:Linear",
    ]
    mha = record.root.find("multi_head_attention", "MultiHeadAttention")
    scores = record.root.find("multi_head_attention", "MatMul")
    assert scores.features["flops"] == pytest.approx(2 * (2 * 2) * 8 * 8 * 8 / 1e6)  # 2·(batch·heads)·S·S·key_dim
    assert mha.features["flops"] >= sum(c.features["flops"] for c in mha.children)
    assert traced.replay("multi_head_attention:Softmax", calls=2).calls == 2


def test_scopes_do_not_depend_on_what_was_built_before(keras_modules, tf_framework):
    _, keras = keras_modules
    first, second = functional_model(keras), functional_model(keras)
    assert first.layers[1].name != second.layers[1].name  # Keras numbered the second one's layers
    ids = [[n.id for n in tf_framework.trace(m, 1, 4, meta=True).record.nodes()] for m in (first, second)]
    assert ids[0] == ids[1]


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # Keras's saving code, numpy 2
def test_saved_keras_file_traces_like_the_model(keras_modules, tf_framework, tmp_path):
    _, keras = keras_modules
    model = functional_model(keras)
    path = tmp_path / "tiny.keras"
    model.save(path)
    from_file = tf_framework.trace(str(path), 2, 8).record
    in_memory = tf_framework.trace(model, 2, 8).record
    assert from_file.model_name == "tiny" and from_file.meta["model_source"] == "file"
    assert from_file.root == in_memory.root


def test_bad_files_and_names_fail_in_one_line(tf_framework, tmp_path):
    with pytest.raises(IreneError, match="no such Keras model file"):
        tf_framework.trace(str(tmp_path / "missing.keras"), 1, 4)
    broken = tmp_path / "broken.keras"
    broken.write_text("not a zip archive")
    with pytest.raises(IreneError, match=r"broken\.keras: cannot load the Keras model"):
        tf_framework.trace(str(broken), 1, 4)
    with pytest.raises(IreneError, match=r"unknown model 'bert-huge'.*bert-base-uncased.*\.keras"):
        tf_framework.trace("bert-huge", 1, 4)
    with pytest.raises(IreneError, match="--attention sdpa"):
        tf_framework.trace("gpt2", 1, 4, attention="sdpa")
    with pytest.raises(IreneError, match="--device tpu9"):
        tf_framework.trace("gpt2", 1, 4, device="tpu9")


def test_open_input_dimensions_must_be_batch_and_sequence(keras_modules, tf_framework):
    _, keras = keras_modules
    fixed = keras.Input(shape=(12, 4), name="features")
    model = keras.Model(fixed, keras.layers.Dense(2)(fixed))
    with pytest.raises(IreneError, match="fixed sequence length 12, not --seq-len 8"):
        tf_framework.trace(model, 2, 8)
    assert tf_framework.trace(model, 2, 12, meta=True).record.root.features["flops"] > 0


def test_presets_match_the_torch_names(tf_framework):
    names = tf_framework.presets()
    assert names[:5] == ["bert-base-uncased", "distilbert-base-uncased", "roberta-base", "gpt2", "distilgpt2"]
    assert len(names) == 5 + 24 and "bert-L4-H256" in names


@pytest.mark.parametrize(
    ("preset", "params", "module_types"),
    [
        ("distilbert-base-uncased", 66_362_880,
         {"TransformerEncoder": 6, "MultiHeadAttention": 6, "TokenAndPositionEmbedding": 1}),
        # torch's 124,645,632 less its pooler (590,592), two extra positions and the one token type (768 each)
        ("roberta-base", 124_052_736,
         {"TransformerEncoder": 12, "MultiHeadAttention": 12, "TokenAndPositionEmbedding": 1}),
        ("google/bert_uncased_L-2_H-128_A-2", 4_385_920, {"TransformerEncoder": 2, "MultiHeadAttention": 2}),
    ],
)
def test_other_presets_build_without_download(meta_trace, preset, params, module_types):
    from collections import Counter

    record = meta_trace("tensorflow", preset, 1, 8)
    assert record.root.features["num_parameters"] == params
    assert Counter(n.type for n in record.root.at_level("module")) == module_types
