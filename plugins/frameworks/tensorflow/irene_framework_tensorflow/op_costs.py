"""FLOPs and bytes of TensorFlow graph ops from their static shapes, by the torch tracer's conventions.

FLOPs (docs/tensorflow-tracer.md lists every cost):
- *matmul flops*: matrix products 2·M·N·K (``MatMul``, ``BatchMatMul*``, two-operand ``Einsum``),
  convolutions 2·(output elements)·(kernel elements per output);
- *other flops*: elementwise arithmetic 1 per output element (``BiasAdd`` too, as torch's addmm bias),
  ``Tanh``/``Sigmoid``/``Erf``/``Erfc`` 4, ``SquaredDifference`` 2, ``Pow`` by a constant integer n ≥ 2 n−1,
  ``Softmax`` 5 and ``Mean``/``Sum`` 1 per input element.
Bytes moved (the ``mem_bytes_moved`` feature): what each op reads plus what it writes; ops that move no
data (reshapes, reads of variables, constants, shape queries) cost nothing, and a gather or slice reads
only the elements it returns.  ``mem_bytes`` follows the paper's byte model (:mod:`paper_bytes`).
"""

from __future__ import annotations

import math
import string
from typing import Any

#: Graph op types that become ML leaves of their own when a non-primitive layer runs them directly,
#: with the leaf type (the torch tracer's name for the same functional op); see also ``Einsum`` in
#: :func:`functional_leaf_type`.
FUNCTIONAL_LEAVES: dict[str, str] = {
    "MatMul": "MatMul",
    "BatchMatMul": "MatMul",
    "BatchMatMulV2": "MatMul",
    "BatchMatMulV3": "MatMul",
    "Softmax": "Softmax",
}

MATMULS = frozenset({"MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"})
CONVOLUTIONS = frozenset({"Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2dNative"})

#: Flops per output element.
PER_OUTPUT_ELEMENT: dict[str, int] = {
    **dict.fromkeys(
        ("AddV2", "Add", "Sub", "Mul", "RealDiv", "Div", "DivNoNan", "Neg", "Reciprocal", "Inv", "Sqrt", "Rsqrt",
         "Exp", "Log", "Abs", "Relu", "Relu6", "LeakyRelu", "Maximum", "Minimum", "Square", "BiasAdd"),
        1,
    ),
    **dict.fromkeys(("Tanh", "Sigmoid", "Erf", "Erfc"), 4),
    "SquaredDifference": 2,
}
#: Flops per input element.
PER_INPUT_ELEMENT: dict[str, int] = {"Softmax": 5, "LogSoftmax": 5, "Mean": 1, "Sum": 1}
#: Ops that move no data.
NO_DATA = frozenset({
    "Reshape", "ExpandDims", "Squeeze", "Identity", "IdentityN", "StopGradient", "PreventGradient", "Snapshot",
    "EnsureShape", "Placeholder", "Const", "ReadVariableOp", "VarHandleOp", "Shape", "ShapeN", "Size", "Rank",
    "NoOp",
})
#: Ops that read only the elements they return from their first input (gathers, slices).
GATHERS = frozenset({"GatherV2", "ResourceGather", "Gather", "GatherNd", "Slice", "StridedSlice"})


def dims(tensor: Any) -> list[int] | None:
    """The static shape of a graph tensor, or None if any dimension is unknown."""
    shape = tensor.shape
    if shape.rank is None or any(d is None for d in shape.as_list()):
        return None
    return shape.as_list()


def numel(tensor: Any) -> int:
    shape = dims(tensor)
    return math.prod(shape) if shape is not None else 0


def tensor_bytes(tensor: Any) -> int:
    """Bytes of a graph tensor (0 for resources, variants and unknown shapes)."""
    if tensor.dtype.name in ("resource", "variant"):
        return 0
    return numel(tensor) * tensor.dtype.size


def op_bytes(op: Any) -> int:
    """Bytes an op reads plus bytes it writes (see the module docstring)."""
    if op.type in NO_DATA:
        return 0
    written = sum(tensor_bytes(t) for t in op.outputs)
    inputs = list(op.inputs)
    if op.type in GATHERS:
        return written + sum(tensor_bytes(t) for t in inputs[1:]) + written
    return written + sum(tensor_bytes(t) for t in inputs)


def _matmul_flops(op: Any) -> int:
    first = dims(op.inputs[0])
    if first is None:
        return 0
    transposed = op.get_attr("transpose_a") if op.type == "MatMul" else op.get_attr("adj_x")
    return 2 * numel(op.outputs[0]) * (first[-2] if transposed else first[-1])


def einsum_labels(equation: str, shapes: list[list[int]]) -> tuple[list[str], str, dict[str, int]]:
    """Each operand's index labels, the output's, and every index's size (ellipses expanded; the
    output's ellipsis spans as many dimensions as the operands' widest)."""
    lhs, out = equation.replace(" ", "").split("->")
    raw = lhs.split(",")
    labels = [expand_ellipsis(r, len(shape)) for r, shape in zip(raw, shapes, strict=True)]
    if "..." in out:
        under = max(len(shape) - len(r) + 3 for r, shape in zip(raw, shapes, strict=True) if "..." in r)
        out = expand_ellipsis(out, len(out) - 3 + under)
    sizes: dict[str, int] = {}
    for operand, shape in zip(labels, shapes, strict=True):
        for label, size in zip(operand, shape, strict=True):
            sizes[label] = max(sizes.get(label, 1), size)
    return labels, out, sizes


def _einsum_sizes(op: Any) -> tuple[dict[str, int], set[str]] | None:
    """Index sizes and contracted indices of a two-operand ``Einsum`` with static shapes, else None."""
    shapes = [dims(t) for t in op.inputs]
    if len(shapes) != 2 or any(s is None for s in shapes):
        return None
    _, out, sizes = einsum_labels(op.get_attr("equation").decode(), shapes)
    return sizes, set(sizes) - set(out)


def _einsum_flops(op: Any) -> int:
    found = _einsum_sizes(op)
    if found is None:
        return 0
    sizes, contracted = found
    return (2 if contracted else 1) * math.prod(sizes.values())


def expand_ellipsis(labels: str, rank: int) -> str:
    """``...`` → digit labels, aligned from the right so broadcast dimensions share labels."""
    if "..." not in labels:
        return labels
    return labels.replace("...", string.digits[10 - (rank - (len(labels) - 3)):])


def _conv_flops(op: Any) -> int:
    kernel = dims(op.inputs[1])
    if kernel is None:
        return 0
    # filter = (spatial…, in_channels, out_channels or multiplier); depthwise: one input channel per output
    per_output = math.prod(kernel[:-2]) * (1 if op.type == "DepthwiseConv2dNative" else kernel[-2])
    return 2 * numel(op.outputs[0]) * per_output


def _pow_cost(op: Any) -> int:
    from tensorflow import get_static_value

    exponent = get_static_value(op.inputs[1])
    if exponent is not None and exponent.size == 1:
        value = float(exponent.reshape(-1)[0])
        if value.is_integer() and value >= 2:
            return int(value) - 1
    return 1


def matmul_flops(op: Any) -> int:
    """Matrix-product and convolution flops of one graph op."""
    if op.type in MATMULS:
        return _matmul_flops(op)
    if op.type == "Einsum":
        return _einsum_flops(op)
    if op.type in CONVOLUTIONS:
        return _conv_flops(op)
    return 0


def other_flops(op: Any) -> int:
    """Elementwise, normalisation and reduction flops of one graph op."""
    if op.type in PER_OUTPUT_ELEMENT:
        return PER_OUTPUT_ELEMENT[op.type] * numel(op.outputs[0])
    if op.type == "Pow":
        return _pow_cost(op) * numel(op.outputs[0])
    if op.type in PER_INPUT_ELEMENT:
        return PER_INPUT_ELEMENT[op.type] * numel(op.inputs[0])
    return 0


def op_flops(op: Any) -> int:
    """All flops of one graph op."""
    return matmul_flops(op) + other_flops(op)


def functional_leaf_type(op: Any) -> str | None:
    """The ML-leaf type of a functional op run directly by a module (None: part of the module's own work).

    A two-operand ``Einsum`` that contracts an index is a (batched) matrix product: ``MatMul``."""
    if op.type == "Einsum":
        found = _einsum_sizes(op)
        return "MatMul" if found is not None and found[1] else None
    return FUNCTIONAL_LEAVES.get(op.type)
