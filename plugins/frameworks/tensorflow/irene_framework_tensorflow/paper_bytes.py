"""``mem_bytes`` of Keras nodes: the paper's byte model, as the torch tracer counts it.

The paper's data counts bytes per torch op from shapes × element size with fixed factors
(docs/torch-tracer.md).  Here:

- a primitive layer whose math is one torch op is charged as that op, from the shapes of its call:
  ``Dense`` / ``EinsumDense`` ≙ ``F.linear`` as torch 1.7 ran it (``bs·(m·n + m·p + n·p)`` elements,
  ``bs`` the batch dimensions before the row dimension, plus 2 per output element for the bias add
  of an input of rank > 2) and its fused activation; ``LayerNormalization`` 4 and
  ``RMSNormalization`` 4 per input element; ``Activation`` layers their activation's factor;
  embedding layers the indices and the rows each table lookup returns (their other ops as below);
- every other graph op by the rule of the torch op it computes: matrix products (``MatMul``,
  ``BatchMatMul*``, two-operand ``Einsum``) ``bs·(m·n + m·p + n·p)``; ``Softmax`` 3 per input
  element; ``Relu`` 2, ``Tanh``, ``Rsqrt``, reductions and other unary maths 1 per input element;
  ``Mul`` 3 and the other binary ops 2 per output element; everything else (reshapes, transposes,
  casts, selects, slices, gathers) 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from irene_framework_tensorflow.op_costs import MATMULS, dims, einsum_labels, tensor_bytes

#: Elements moved per input element, by graph op type.
PER_INPUT_ELEMENT: dict[str, int] = {
    "Softmax": 3,
    "LogSoftmax": 3,
    **dict.fromkeys(("Relu", "Relu6", "LeakyRelu", "Elu", "Selu", "Gelu"), 2),
    **dict.fromkeys(
        ("Tanh", "Rsqrt", "Abs", "Max", "Min", "Mean", "Sum", "Exp", "Log", "Sqrt", "Neg", "Reciprocal", "Inv",
         "Sigmoid", "Erf", "Erfc", "Square"),
        1,
    ),
}
#: Elements moved per output element, by graph op type (binary ops).
PER_OUTPUT_ELEMENT: dict[str, int] = {
    **dict.fromkeys(("AddV2", "Add", "BiasAdd", "Sub", "RealDiv", "Div", "DivNoNan", "Pow", "SquaredDifference"), 2),
    "Mul": 3,
}
#: Elements moved per element by a fused or stand-alone activation, by its Keras function name: as
#: the torch op of the same function (``gelu`` exact or tanh-approximated ≙ ``F.gelu``).
ACTIVATIONS: dict[str, int] = {
    "linear": 0, "tanh": 1, "sigmoid": 1, "relu": 2, "gelu": 2, "gelu_approximate": 2, "silu": 2, "swish": 2,
    "softmax": 3,
}
#: Elements per input element of the normalisation layers (torch's ``layer_norm``).
NORMALISATIONS: dict[str, int] = {"LayerNormalization": 4, "RMSNormalization": 4}
#: Embedding layers: their table lookups are charged as ``F.embedding`` (``GatherV2``: indices + rows;
#: ``Slice``: rows), their other ops one by one.
EMBEDDINGS = frozenset({"Embedding", "ReversibleEmbedding", "PositionEmbedding"})
TABLE_LOOKUPS = frozenset({"GatherV2", "ResourceGather", "Slice"})


def product_elements(batch: int, m: int, n: int, p: int) -> int:
    """Elements the paper charges a product of ``[batch, m, n]`` by ``[n, p]`` operands."""
    return batch * (m * n + m * p + n * p)


def _broadcast(a: list[int], b: list[int]) -> list[int]:
    width = max(len(a), len(b))
    a, b = [1] * (width - len(a)) + a, [1] * (width - len(b)) + b
    return [max(x, y) for x, y in zip(a, b, strict=True)]


def _matmul_elements(op: Any) -> int:
    a, b = dims(op.inputs[0]), dims(op.inputs[1])
    if a is None or b is None:
        return 0
    flags = ("transpose_a", "transpose_b") if op.type == "MatMul" else ("adj_x", "adj_y")
    m, n = (a[-1], a[-2]) if op.get_attr(flags[0]) else (a[-2], a[-1])
    p = b[-2] if op.get_attr(flags[1]) else b[-1]
    return product_elements(math.prod(_broadcast(a[:-2], b[:-2])), m, n, p)


def einsum_dims(equation: str, a: list[int], b: list[int]) -> tuple[int, int, int, int]:
    """(bs, m, n, p) of a two-operand einsum read as the paper's ``A[bs, m, n] @ B[n, p]``.

    Summed indices make ``n``; indices only ``B`` keeps make ``p``; the last index only ``A`` keeps
    is ``m``, and ``A``'s other own indices with the indices both operands keep are the batch.
    """
    (a_labels, b_labels), out, sizes = einsum_labels(equation, [a, b])
    a_free = [x for x in dict.fromkeys(a_labels) if x not in b_labels and x in out]
    batch = [x for x in dict.fromkeys(a_labels) if x in b_labels and x in out] + a_free[:-1]
    n = math.prod(size for label, size in sizes.items() if label not in out)
    p = math.prod(sizes[x] for x in dict.fromkeys(b_labels) if x not in a_labels and x in out)
    m = sizes[a_free[-1]] if a_free else 1
    return math.prod(sizes[x] for x in batch), m, n, p


def _einsum_elements(op: Any) -> int:
    if len(op.inputs) != 2:
        return 0
    a, b = dims(op.inputs[0]), dims(op.inputs[1])
    if a is None or b is None:
        return 0
    return product_elements(*einsum_dims(op.get_attr("equation").decode(), a, b))


def op_mem_bytes(op: Any) -> int:
    """Bytes the paper's model charges one graph op (see the module docstring)."""
    if op.type in PER_INPUT_ELEMENT:
        return PER_INPUT_ELEMENT[op.type] * tensor_bytes(op.inputs[0])
    if op.type in PER_OUTPUT_ELEMENT:
        return PER_OUTPUT_ELEMENT[op.type] * tensor_bytes(op.outputs[0])
    if op.type in MATMULS:
        return _matmul_elements(op) * op.inputs[0].dtype.size
    if op.type == "Einsum":
        return _einsum_elements(op) * op.inputs[0].dtype.size
    return 0


def _linear_bytes(layer: Any, x: Any, bs: int, m: int, n: int, p: int) -> int:
    """A dense layer as torch 1.7's ``F.linear`` (+ bias add for rank > 2) plus its activation."""
    out = bs * m * p
    elements = product_elements(bs, m, n, p)
    if getattr(layer, "bias", None) is not None and x.shape.rank > 2:
        elements += PER_OUTPUT_ELEMENT["AddV2"] * out
    activation = getattr(getattr(layer, "activation", None), "__name__", "linear")
    return (elements + ACTIVATIONS.get(activation, 1) * out) * x.dtype.size


def layer_mem_bytes(layer: Any, x: Any, ops: Iterable[Any]) -> int | None:
    """Bytes of a primitive layer charged as its torch op, given its first input ``x`` and its ops;
    None for a layer charged op by op."""
    cls = type(layer).__name__
    shape = dims(x) if x is not None else None
    if cls == "Dense" and shape is not None:
        n, p = layer.kernel.shape
        return _linear_bytes(layer, x, math.prod(shape[:-2]), shape[-2] if len(shape) > 1 else 1, n, p)
    if cls == "EinsumDense" and shape is not None:
        return _linear_bytes(layer, x, *einsum_dims(layer.equation, shape, list(layer.kernel.shape)))
    if cls in NORMALISATIONS and shape is not None:
        return NORMALISATIONS[cls] * tensor_bytes(x)
    if cls in ("Activation", "ReLU") and shape is not None:
        name = "relu" if cls == "ReLU" else getattr(layer.activation, "__name__", "")
        return ACTIVATIONS.get(name, 1) * tensor_bytes(x)
    if cls in EMBEDDINGS:
        return sum(_lookup_bytes(op) if op.type in TABLE_LOOKUPS else op_mem_bytes(op) for op in ops)
    return None


def _lookup_bytes(op: Any) -> int:
    """A table lookup as ``F.embedding``: the indices (none for a ``Slice``) and the rows returned."""
    return tensor_bytes(op.outputs[0]) + (tensor_bytes(op.inputs[1]) if op.type != "Slice" else 0)
