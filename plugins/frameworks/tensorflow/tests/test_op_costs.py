"""FLOPs, bytes and leaf types of single TensorFlow graph ops."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def graph_op(keras_modules):
    """``graph_op(fn, *specs, op_type)`` → the one op of that type in ``tf.function(fn)``'s graph."""
    tf, _ = keras_modules

    def find(fn, specs, op_type):
        graph = tf.function(fn).get_concrete_function(*[tf.TensorSpec(s, d) for s, d in specs]).graph
        (op,) = [o for o in graph.get_operations() if o.type == op_type]
        return op

    return find


def test_matmul_family(keras_modules, graph_op):
    from irene_framework_tensorflow.op_costs import functional_leaf_type, op_bytes, op_flops

    tf, _ = keras_modules
    op = graph_op(lambda a, b: tf.linalg.matmul(a, b, transpose_a=True), [((5, 4), tf.float32), ((5, 6), tf.float32)],
                  "MatMul")
    assert op_flops(op) == 2 * 4 * 6 * 5
    assert op_bytes(op) == 4 * (5 * 4 + 5 * 6 + 4 * 6)
    assert functional_leaf_type(op) == "MatMul"
    batched = graph_op(tf.linalg.matmul, [((3, 1, 4, 5), tf.float32), ((2, 5, 6), tf.float32)], "BatchMatMulV2")
    assert op_flops(batched) == 2 * (3 * 2) * 4 * 6 * 5  # broadcast batch dimensions


def test_einsum_contractions_are_matmuls(keras_modules, graph_op):
    from irene_framework_tensorflow.op_costs import _einsum_flops, functional_leaf_type

    tf, _ = keras_modules
    specs = [((3, 4, 5), tf.float32), ((3, 5, 6), tf.float32)]
    op = graph_op(lambda a, b: tf.raw_ops.Einsum(inputs=[a, b], equation="...ij,...jk->...ik"), specs, "Einsum")
    assert _einsum_flops(op) == 2 * 3 * 4 * 5 * 6 and functional_leaf_type(op) == "MatMul"
    same = [((3, 4), tf.float32), ((3, 4), tf.float32)]
    elementwise = graph_op(lambda a, b: tf.raw_ops.Einsum(inputs=[a, b], equation="ij,ij->ij"), same, "Einsum")
    assert _einsum_flops(elementwise) == 12 and functional_leaf_type(elementwise) is None


def test_convolution_and_elementwise_costs(keras_modules, graph_op):
    from irene_framework_tensorflow.op_costs import op_flops

    tf, _ = keras_modules
    conv_specs = [((1, 8, 8, 3), tf.float32), ((3, 3, 3, 4), tf.float32)]
    conv = graph_op(lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"), conv_specs, "Conv2D")
    assert op_flops(conv) == 2 * (8 * 8 * 4) * (3 * 3 * 3)
    x = [((2, 5), tf.float32)]
    assert op_flops(graph_op(lambda a: tf.pow(a, 3.0), x, "Pow")) == 2 * 10
    assert op_flops(graph_op(lambda a: tf.pow(a, a), x, "Pow")) == 10
    assert op_flops(graph_op(tf.tanh, x, "Tanh")) == 4 * 10
    assert op_flops(graph_op(lambda a: tf.nn.softmax(a), x, "Softmax")) == 5 * 10
    assert op_flops(graph_op(lambda a: tf.reduce_mean(a, axis=-1), x, "Mean")) == 10


def test_bytes_of_views_and_gathers(keras_modules, graph_op):
    from irene_framework_tensorflow.op_costs import op_bytes

    tf, _ = keras_modules
    assert op_bytes(graph_op(lambda a: tf.reshape(a, (10,)), [((2, 5), tf.float32)], "Reshape")) == 0
    gather = graph_op(lambda table, ids: tf.gather(table, ids), [((1000, 8), tf.float32), ((3,), tf.int32)], "GatherV2")
    assert op_bytes(gather) == 2 * (3 * 8 * 4) + 3 * 4 + 4  # the rows it returns (read, written), ids, axis
