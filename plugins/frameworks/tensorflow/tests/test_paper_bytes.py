"""The paper's byte model (``mem_bytes``) on TensorFlow graph ops and Keras primitive layers."""

from __future__ import annotations

import pytest

from irene_framework_tensorflow.paper_bytes import einsum_dims

B, S, N, H, E, F = 2, 5, 3, 4, 12, 7  # batch, sequence, heads, head size, width, Dense units
MIB = 2**20


@pytest.mark.parametrize("equation, a, b, expected", [
    ("aecd,abcd->acbe", [B, S, N, H], [B, S + 1, N, H], (B * N, S, H, S + 1)),  # attention scores: key, query
    ("acbe,aecd->abcd", [B, N, S + 1, S], [B, S, N, H], (B * N, S + 1, S, H)),  # scores, value
    ("abc,cde->abde", [B, S, E], [E, N, H], (B, S, E, N * H)),  # q/k/v projection (EinsumDense)
    ("abcd,cde->abe", [B, S, N, H], [N, H, E], (B, S, N * H, E)),  # output projection
    ("...b,bc->...c", [B, S, E], [E, F], (B, S, E, F)),
    ("ij,jk->ik", [S, E], [E, F], (1, S, E, F)),
])
def test_einsums_read_as_the_papers_matrix_product(equation, a, b, expected):
    assert einsum_dims(equation, a, b) == expected


@pytest.fixture(scope="module")
def graph_op(keras_modules):
    """``graph_op(fn, specs, op_type)`` → the one op of that type in ``tf.function(fn)``'s graph."""
    tf, _ = keras_modules

    def find(fn, specs, op_type):
        graph = tf.function(fn).get_concrete_function(*[tf.TensorSpec(s, tf.float32) for s in specs]).graph
        (op,) = [o for o in graph.get_operations() if o.type == op_type]
        return op

    return find


def test_graph_op_rules(keras_modules, graph_op):
    from irene_framework_tensorflow.paper_bytes import op_mem_bytes

    tf, _ = keras_modules
    transposed = graph_op(lambda a, b: tf.linalg.matmul(a, b, transpose_a=True), [(E, S), (E, F)], "MatMul")
    assert op_mem_bytes(transposed) == 4 * (S * E + S * F + E * F)
    batched = graph_op(tf.linalg.matmul, [(B, 1, S, E), (N, E, F)], "BatchMatMulV2")
    assert op_mem_bytes(batched) == 4 * B * N * (S * E + S * F + E * F)  # broadcast batch dimensions
    pair = [(B, S), (B, S)]
    assert op_mem_bytes(graph_op(tf.multiply, pair, "Mul")) == 3 * 4 * B * S
    assert op_mem_bytes(graph_op(tf.add, pair, "AddV2")) == 2 * 4 * B * S
    assert op_mem_bytes(graph_op(tf.nn.softmax, [(B, S)], "Softmax")) == 3 * 4 * B * S
    assert op_mem_bytes(graph_op(tf.tanh, [(B, S)], "Tanh")) == 4 * B * S
    assert op_mem_bytes(graph_op(lambda a: tf.transpose(a), [(B, S)], "Transpose")) == 0


def test_primitive_layers_are_charged_as_their_torch_op(keras_modules):
    """Embedding ≙ F.embedding, Dense ≙ F.linear (2-D input: addmm; 3-D: matmul + bias add) with its
    activation, LayerNormalization ≙ layer_norm, Activation(gelu) ≙ F.gelu."""
    from irene_framework_tensorflow.tracer import trace_keras_model

    _, keras = keras_modules
    ids = keras.Input((S,), dtype="int32", batch_size=None)
    x = keras.layers.Embedding(50, E, name="embed")(ids)
    x = keras.layers.Dense(F, activation="tanh", name="dense")(x)
    x = keras.layers.LayerNormalization(name="norm")(x)
    x = keras.layers.Activation("gelu", name="act")(x)
    pooled = keras.layers.Dense(F, name="pool")(x[:, 0])
    model = keras.Model(ids, pooled)
    leaves = {n.id: n.features["mem_bytes"] * MIB for n in trace_keras_model(model, B, S, meta=True).record.nodes()}
    tokens = B * S
    # int32 ids, rows returned; and Keras's fix-up of negative ids (an add: 2 per id)
    assert leaves["embed:Embedding"] == pytest.approx(4 * tokens + 4 * tokens * E + 2 * 4 * tokens)
    linear = B * (S * E + S * F + E * F) + 2 * tokens * F
    assert leaves["dense:Linear"] == pytest.approx(4 * (linear + tokens * F))  # + tanh: 1 per element
    assert leaves["norm:LayerNorm"] == pytest.approx(4 * 4 * tokens * F)
    assert leaves["act:GELUActivation"] == pytest.approx(2 * 4 * tokens * F)
    assert leaves["pool:Linear"] == pytest.approx(4 * (B * F + B * F + F * F))
