"""A keras.Model written here (two dense layers around an attention block) traces into the expected tree,
and every node of it replays."""

from __future__ import annotations

import math

import pytest

from irene_core.errors import IreneError

B, S, IN, DIM = 2, 8, 16, 32


@pytest.fixture(scope="module")
def tiny(keras_modules):
    """(model, inputs, traced) for a subclassed model: embed (Dense) → block (attention) → head (Dense)."""
    tf, keras = keras_modules
    ops = keras.ops

    class AttentionBlock(keras.layers.Layer):
        def __init__(self, dim: int, **kwargs):
            super().__init__(**kwargs)
            self.dim = dim
            self.qkv = keras.layers.Dense(3 * dim, name="qkv")
            self.out = keras.layers.Dense(dim, name="out")
            self.norm = keras.layers.LayerNormalization(name="norm")

        def call(self, x):
            q, k, v = ops.split(self.qkv(x), 3, axis=-1)
            scores = ops.matmul(q, ops.transpose(k, (0, 2, 1))) / math.sqrt(self.dim)
            weights = ops.softmax(scores, axis=-1)
            return self.norm(x + self.out(ops.matmul(weights, v)))

    class TinyModel(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.embed = keras.layers.Dense(DIM, name="embed")
            self.block = AttentionBlock(DIM, name="block")
            self.head = keras.layers.Dense(4, name="head")

        def call(self, x):
            return self.head(self.block(self.embed(x)))

    from irene_framework_tensorflow.tracer import trace_keras_model

    model = TinyModel(name="tiny")
    x = tf.random.normal((B, S, IN), seed=1)
    return model, x, trace_keras_model(model, B, S, inputs=x)


def linear_flops(n_in: int, n_out: int) -> float:
    """Matmul 2·(B·S)·in·out plus the bias add, in MFLOPs."""
    return (2 * B * S * n_in * n_out + B * S * n_out) / 1e6


def test_tree_has_the_expected_shape(tiny):
    _, _, traced = tiny
    root = traced.record.root
    assert (root.id, root.level) == (":TinyModel", "model")
    assert [(c.id, c.level) for c in root.children] == [
        ("embed:Linear", "ml"), ("block:AttentionBlock", "module"), ("head:Linear", "ml"),
    ]
    block = root.children[1]
    assert [(c.id, c.level) for c in block.children] == [
        ("block.qkv:Linear", "ml"),
        ("block:MatMul", "ml"),
        ("block:Softmax", "ml"),
        ("block:MatMul#2", "ml"),
        ("block.out:Linear", "ml"),
        ("block.norm:LayerNorm", "ml"),
    ]
    assert traced.record.meta["keras_classes"]["block.norm:LayerNorm"] == "LayerNormalization"
    assert traced.record.meta["model_source"] == "object"


def test_features_follow_the_op_costs(tiny):
    _, _, traced = tiny
    root = traced.record.root
    node = {n.id: n.features for n in root.walk()}
    for f in node.values():
        assert (f["batch_size"], f["seq_len"]) == (B, S)
    assert node["embed:Linear"]["flops"] == pytest.approx(linear_flops(IN, DIM))
    assert node["block.qkv:Linear"]["flops"] == pytest.approx(linear_flops(DIM, 3 * DIM))
    assert node["block:MatMul"]["flops"] == pytest.approx(2 * B * S * S * DIM / 1e6)
    assert node["block:MatMul#2"]["flops"] == pytest.approx(2 * B * S * S * DIM / 1e6)
    assert node["block:Softmax"]["flops"] == pytest.approx(5 * B * S * S / 1e6)
    assert node["head:Linear"]["flops"] == pytest.approx(linear_flops(DIM, 4))
    # the block's own ops: the score scaling (one per score) and the residual add (one per element)
    block = root.children[1]
    children = sum(c.features["flops"] for c in block.children)
    assert block.features["flops"] == pytest.approx(children + (B * S * S + B * S * DIM) / 1e6)
    assert root.features["flops"] == pytest.approx(sum(c.features["flops"] for c in root.children))
    # mem_bytes, the paper's model (float32): a product [bs, m, n] x [n, p] moves bs·(m·n + m·p + n·p);
    # a Dense on a 3-D input is torch's Linear: the weight once per sequence, plus 2 per output for the bias
    mib = 2**20
    assert node["block:MatMul"]["mem_bytes"] == pytest.approx(4 * B * (S * DIM + S * S + DIM * S) / mib)
    linear = B * (S * IN + S * DIM + IN * DIM) + 2 * B * S * DIM
    assert node["embed:Linear"]["mem_bytes"] == pytest.approx(4 * linear / mib)
    assert node["block.norm:LayerNorm"]["mem_bytes"] == pytest.approx(4 * 4 * B * S * DIM / mib)
    assert node["block:Softmax"]["mem_bytes"] == pytest.approx(3 * 4 * B * S * S / mib)
    own = block.features["mem_bytes"] - sum(c.features["mem_bytes"] for c in block.children)
    assert own == pytest.approx(4 * (2 * B * S * S + 2 * B * S * DIM) / mib)  # the scaling division, the residual add
    # mem_bytes_moved: what the graph's ops read and write (reshapes free, the weights once)
    moved = 4 * (B * S * IN + IN * DIM + B * S * DIM) + 4 * (2 * B * S * DIM + DIM)  # MatMul, then BiasAdd
    assert node["embed:Linear"]["mem_bytes_moved"] == pytest.approx(moved / mib)
    assert node["embed:Linear"]["num_parameters"] == IN * DIM + DIM
    assert node["block:AttentionBlock"]["num_parameters"] == DIM * 3 * DIM + 3 * DIM + DIM * DIM + DIM + 2 * DIM
    assert node["block:MatMul"]["num_parameters"] == 0
    assert root.features["num_parameters"] == sum(c.features["num_parameters"] for c in root.children)


def test_replay_runs_each_kind_of_node(tiny):
    _, _, traced = tiny
    by_calls = traced.replay("block:AttentionBlock", calls=3)
    assert by_calls.calls == 3 and by_calls.seconds > 0
    by_time = traced.replay("block:MatMul", seconds=0.05)
    assert by_time.seconds >= 0.05 and by_time.calls >= 1
    assert traced.replay(":TinyModel", calls=1).calls == 1
    assert traced.replay("block:Softmax", calls=2).calls == 2


def test_replay_uses_the_captured_inputs(tiny, keras_modules):
    tf, _ = keras_modules
    model, x, traced = tiny
    expected = model.block(model.embed(x), training=False)
    assert tf.reduce_max(tf.abs(traced.output("block:AttentionBlock") - expected)).numpy() < 1e-5
    assert tf.reduce_max(tf.abs(traced.output(":TinyModel") - model(x, training=False))).numpy() < 1e-5
    assert traced.output("block:MatMul").shape == (B, S, S)  # a functional op: random inputs, traced shapes


def test_replay_rejects_bad_requests(tiny):
    _, _, traced = tiny
    with pytest.raises(IreneError, match="no node 'nope'"):
        traced.replay("nope", calls=1)
    with pytest.raises(IreneError, match="exactly one of calls or seconds"):
        traced.replay("head:Linear", calls=1, seconds=1.0)
    with pytest.raises(IreneError, match="must be positive"):
        traced.replay("head:Linear", calls=0)


def test_meta_mode_gives_the_same_tree_without_replay(tiny):
    from irene_framework_tensorflow.tracer import trace_keras_model

    model, x, traced = tiny
    meta = trace_keras_model(model, B, S, inputs=x, meta=True)
    assert meta.record.root == traced.record.root
    assert meta.record.meta["traced_on"] == "meta"
    with pytest.raises(IreneError, match="meta=True"):
        meta.replay("head:Linear", calls=1)


def test_a_subclassed_model_needs_inputs(tiny):
    from irene_framework_tensorflow.tracer import trace_keras_model

    model, _, _ = tiny
    with pytest.raises(IreneError, match=r"no symbolic inputs.*pass inputs="):
        trace_keras_model(model, B, S)
    with pytest.raises(IreneError, match="--batch-size"):
        trace_keras_model(model, 0, S, inputs=lambda b, s: None)
    with pytest.raises(IreneError, match=r"expected a keras\.Model"):
        trace_keras_model(object(), B, S)
