"""``mem_bytes``: the byte model of the paper's measuring code, one torch function call at a time.

The paper's data (and so every predictor trained on it) counts bytes per traced op from its shapes
and element sizes, with fixed per-op factors (docs/torch-tracer.md has the table):

- matrix products ``A[..., m, n] @ B[..., n, p]``: ``bs·(m·n + m·p + n·p)`` elements, ``bs`` the
  product of the batch dimensions, so a 3-D × 2-D product counts the weight once per batch element;
  ``F.linear`` is charged as torch 1.7 ran it: ``addmm`` for a 2-D input, else ``matmul`` plus an
  in-place bias add;
- grouped products (a mixture-of-experts layer's experts, beyond the paper): each expert's product,
  ``m·k + m·n + k·n`` elements for its ``m`` rows, over the experts the rows are expected to reach;
- embedding: the indices plus the output;
- unary and normalisation ops: input elements × a factor (relu, gelu 2; layer_norm 4; softmax 3;
  tanh, rsqrt, abs, max, min, mean, sum and the other elementwise maths 1);
- binary ops: output elements × 2 (add, sub, div, pow) or × 3 (mul, rsub);
- clone 2 × its input, ``copy_`` source plus destination; every other op (views, ``contiguous``,
  dropout, conversions, masks, indexing, creation) 0.

The paper's tracer saw the model's own calls, so only outermost calls count: a torch function
running inside another one (``F.softmax`` calling ``Tensor.softmax``) is the outer call's work.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from irene_framework_torch.op_counter import GROUPED_PRODUCTS, experts_reached, tensor_arguments

#: Elements moved per input element (unary, normalisation and reduction ops).
PER_INPUT_ELEMENT: dict[str, int] = {
    "relu": 2,
    "gelu": 2,
    "silu": 2,  # beyond the paper's models: an activation like gelu
    "layer_norm": 4,
    "rms_norm": 4,  # beyond the paper's models: a normalisation like layer_norm
    "softmax": 3,
    "log_softmax": 3,
    **dict.fromkeys(
        ("abs", "tanh", "rsqrt", "max", "min", "mean", "sum",  # the paper's
         "amax", "amin", "exp", "log", "sqrt", "neg", "reciprocal", "sigmoid", "erf", "sin", "cos", "square"),
        1,
    ),
}
#: Elements moved per output element (binary ops).
PER_OUTPUT_ELEMENT: dict[str, int] = {"add": 2, "sub": 2, "div": 2, "true_divide": 2, "pow": 2, "mul": 3, "rsub": 3}
#: Matrix products, charged ``bs·(m·n + m·p + n·p)`` elements: their operands are the first two
#: tensor arguments, or the last two after an added ``input`` (``addmm(bias, A, B)``).
PRODUCTS = frozenset({"matmul", "rmatmul", "mm", "bmm"})
PRODUCTS_PLUS_INPUT = frozenset({"addmm", "baddbmm", "addbmm"})
#: Python operators → the op they run (a reflected ``__rmatmul__`` swaps its operands).
OPERATORS: dict[str, str] = {
    "add": "add", "radd": "add", "iadd": "add",
    "sub": "sub", "isub": "sub", "rsub": "rsub",
    "mul": "mul", "rmul": "mul", "imul": "mul",
    "truediv": "div", "rtruediv": "div", "itruediv": "div", "div": "div", "rdiv": "div", "idiv": "div",
    "pow": "pow", "rpow": "pow", "ipow": "pow",
    "matmul": "matmul", "rmatmul": "rmatmul",
    "neg": "neg", "abs": "abs",
}


def op_name(func: Callable[..., Any]) -> str:
    """The op a torch function runs: ``Tensor.__iadd__`` → ``add``, ``Tensor.mul_`` → ``mul``."""
    name = getattr(func, "__name__", "")
    if name.startswith("__") and name.endswith("__"):
        return OPERATORS.get(name[2:-2], name)
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], position: int, name: str) -> Any:
    return args[position] if position < len(args) else kwargs.get(name)


def _size(t: torch.Tensor) -> int:
    """Bytes of ``t`` by its shape (a broadcast view counts in full, as in the paper)."""
    return t.numel() * t.element_size()


def product_elements(a: torch.Size, b: torch.Size) -> int:
    """Elements the paper charges ``A @ B``: ``bs·(m·n + m·p + n·p)``, ``bs`` the broadcast batch size."""
    m = a[-2] if len(a) > 1 else 1
    n = a[-1]
    p = b[-1] if len(b) > 1 else 1
    batch = torch.broadcast_shapes(a[:-2], b[:-2] if len(b) > 1 else ())
    return math.prod(batch) * (m * n + m * p + n * p)


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor) -> int:
    """``F.linear`` as torch 1.7 ran it: ``addmm`` for 2-D inputs, else ``matmul`` + ``add_(bias)``."""
    elements = product_elements(x.shape, weight.shape[::-1])
    if x.dim() > 2 and bias is not None:
        elements += PER_OUTPUT_ELEMENT["add"] * out.numel()
    return elements * x.element_size()


def _grouped(a: torch.Tensor, b: torch.Tensor) -> int:
    """A grouped product as its groups' products: rows ``(s, k)`` against one ``(k, n)`` matrix per
    expert, ``s·k + s·n`` plus ``k·n`` per expert reached (:func:`experts_reached`); other layouts as
    one batched product."""
    if a.dim() != 2 or b.dim() != 3:
        return product_elements(a.shape, b.shape) * a.element_size()
    rows, shared, width = a.shape[0], a.shape[1], b.shape[-1]
    weights = b.shape[0] * experts_reached(a, b) * shared * width
    return round(rows * (shared + width) + weights) * a.element_size()


def _embedding(args: tuple[Any, ...], out: torch.Tensor) -> int:
    """Indices plus output (``F.embedding(ids, table)`` and ``torch.embedding(table, ids)`` alike)."""
    ids = next(t for t in args[:2] if isinstance(t, torch.Tensor) and not t.is_floating_point())
    return _size(ids) + _size(out)


def _attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, masked: bool) -> int:
    """Fused attention, charged as the eager ops it replaces: QKᵀ, scale, (mask add), softmax, A·V."""
    *batch, lq, e = query.shape
    lk, ev = key.shape[-2], value.shape[-1]
    scores = math.prod(batch) * lq * lk
    per_score = PER_OUTPUT_ELEMENT["mul"] + PER_INPUT_ELEMENT["softmax"] + (PER_OUTPUT_ELEMENT["add"] if masked else 0)
    products = math.prod(batch) * ((lq * e + lq * lk + e * lk) + (lq * lk + lq * ev + lk * ev))
    return (products + per_score * scores) * query.element_size()


def call_bytes(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    """Bytes the paper's model charges one torch function call (0 for ops it does not count)."""
    name = op_name(func)
    if name in PER_INPUT_ELEMENT:
        first = next(tensor_arguments((*args, *kwargs.values())), None)
        return PER_INPUT_ELEMENT[name] * _size(first) if first is not None else 0
    if name in PER_OUTPUT_ELEMENT:
        return PER_OUTPUT_ELEMENT[name] * _size(out) if isinstance(out, torch.Tensor) else 0
    if name in PRODUCTS or name in PRODUCTS_PLUS_INPUT:
        operands = [*tensor_arguments(args), *tensor_arguments(kwargs.values())]
        a, b = operands[-2:] if name in PRODUCTS_PLUS_INPUT else operands[:2]
        if name == "rmatmul":  # other @ self
            a, b = b, a
        return product_elements(a.shape, b.shape) * a.element_size()
    if name == "linear":
        return _linear(_argument(args, kwargs, 0, "input"), _argument(args, kwargs, 1, "weight"),
                       _argument(args, kwargs, 2, "bias"), out)
    if name == "embedding":
        return _embedding(args, out)
    if name in GROUPED_PRODUCTS:
        return _grouped(*[*tensor_arguments(args), *tensor_arguments(kwargs.values())][:2])
    if name == "clone":
        return 2 * _size(args[0])
    if name == "copy":
        return _size(args[0]) + _size(args[1])
    if name == "einsum":  # beyond the paper: operands read, result written
        return sum(_size(t) for t in tensor_arguments(args)) + _size(out)
    if name == "scaled_dot_product_attention":
        query, key, value = (_argument(args, kwargs, i, n) for i, n in enumerate(("query", "key", "value")))
        masked = _argument(args, kwargs, 3, "attn_mask") is not None or bool(_argument(args, kwargs, 5, "is_causal"))
        return _attention(query, key, value, masked)
    return 0
