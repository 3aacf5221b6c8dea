"""Flops and bytes of every aten op, charged to the tree node that is running when the op runs.

Flops have two parts (docs/torch-tracer.md lists every cost):
- *matmul flops*: the formulas of ``torch.utils.flop_counter`` (mm, addmm, bmm, baddbmm,
  convolution, fused attention), plus the CPU flash-attention kernel and the grouped product of
  mixture-of-experts layers (``_grouped_mm``, and transformers' loop over the experts where the
  device has no grouped kernel, ``grouped_mm_fallback``) that it leaves at zero;
- *other flops*: elementwise arithmetic (1 per output element), transcendental activations,
  softmax (5 per element), layer norm (8 per element), reductions, and the bias add of
  addmm/baddbmm: the conventions of the paper's data, so LayerNorm, Softmax, Tanh and GELU
  leaves have non-zero flops as in the CSV release.
*Bytes moved* (the ``mem_bytes_moved`` feature) are what each op reads plus what it writes (inputs,
outputs, parameters); views move no data, gathers (embedding, index_select) read only the rows they
return, scatters (index_copy_: a KV-cache update) write only the rows they are given, a broadcast
input (stride 0) is read once, and a grouped product reads the weights of the experts its rows
are expected to reach (:func:`experts_reached`).  The ``mem_bytes`` feature follows the
paper's byte model instead, per torch function call (:mod:`irene_framework_torch.paper_bytes`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn.attention import SDPBackend
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry, sdpa_flop_count

from irene_core import IreneError

aten = torch.ops.aten


@dataclass
class OpTotals:
    """Work done by a set of ops: flops and bytes moved per aten op, ``mem_bytes`` per torch call."""

    matmul_flops: int = 0
    other_flops: int = 0
    bytes_moved: int = 0
    mem_bytes: int = 0

    @property
    def flops(self) -> int:
        return self.matmul_flops + self.other_flops

    def add(self, other: OpTotals) -> None:
        self.matmul_flops += other.matmul_flops
        self.other_flops += other.other_flops
        self.bytes_moved += other.bytes_moved
        self.mem_bytes += other.mem_bytes


def _cpu_flash_attention_flop(query: Any, key: Any, value: Any, *args: Any, out_val: Any = None, **kwargs: Any) -> int:
    return sdpa_flop_count(query.shape, key.shape, value.shape)


def _grouped_mm_flop(mat_a: Any, mat_b: Any, *args: Any, out_val: Any = None, **kwargs: Any) -> int:
    """2 per multiply–add of a grouped product: each group's rows through its own weights (the
    experts of a mixture-of-experts layer).  Every row counts: on the meta device the offsets have no
    values, and rows past the last offset (expert-parallel sentinels) are the only ones the kernel skips."""
    shared = mat_a.shape[-1]
    per_group = out_val.numel()
    if mat_a.dim() == 2 and mat_b.dim() == 2:  # the groups split the shared dimension: out is (groups, m, n)
        per_group //= out_val.shape[0]
    return int(2 * per_group * shared)


#: Grouped products by op name (torch ≥ 2.8): the torch function, its kernel, and the custom op transformers
#: runs instead where the device has none (a GPU before compute capability 8.0, torch before 2.8 on the
#: CPU): one ``mm`` per expert inside, which no dispatch mode sees.
GROUPED_PRODUCTS = frozenset({"grouped_mm", "_grouped_mm", "grouped_mm_fallback"})
#: aten op packet → matmul-flop formula (called with the op's arguments and ``out_val``).
MATMUL_FORMULAS: dict[Any, Callable[..., int]] = {
    **flop_registry,
    aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_attention_flop,
}

#: Flops per output element (elementwise ops; in-place variants share their entry).
PER_OUTPUT_ELEMENT: dict[str, int] = {
    **dict.fromkeys(
        ("add", "sub", "rsub", "mul", "div", "neg", "reciprocal", "sqrt", "rsqrt", "exp", "log", "abs", "relu",
         "maximum", "minimum", "clamp", "clamp_min", "clamp_max", "square"),
        1,
    ),
    **dict.fromkeys(("tanh", "sigmoid", "erf", "sin", "cos"), 4),
    "silu": 5,
    "gelu": 6,
}
#: Flops per input element (normalisations, softmax, reductions).
PER_INPUT_ELEMENT: dict[str, int] = {
    "_softmax": 5,
    "_log_softmax": 5,
    "_safe_softmax": 5,
    "native_layer_norm": 8,
    "_fused_rms_norm": 4,
    "mean": 1,
    "sum": 1,
}
#: Fused matmul + add ops: the add costs one flop per output element (unless beta == 0).
MATMUL_PLUS_ADD = frozenset({"addmm", "baddbmm", "addbmm", "addmv"})
#: Fused attention kernels: scale (1) + softmax (5) per score element, + 1 with a mask (or causal).
FUSED_ATTENTION = frozenset({
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
})
#: Ops that read only the rows they return from their first argument (a table).
GATHERS = frozenset({"embedding", "index_select", "gather", "take_along_dim"})
#: Ops that write their last tensor argument's elements into rows of the first (a KV-cache update):
#: they read the indices and the source and write as much as the source, not the whole destination.
SCATTERS = frozenset({"index_copy", "index_put", "scatter", "slice_scatter", "index_add"})
#: Non-view ops that move no data.
NO_DATA = frozenset({"_unsafe_view", "_reshape_alias", "detach", "alias", "lift_fresh", "_local_scalar_dense"})

#: Ops whose output's shape depends on tensor values: no meta kernel can say it.
_VALUE_SHAPED = frozenset({aten.nonzero.default, aten.masked_select.default, aten._unique2.default,
                           aten.unique_consecutive.default})
#: Dropouts: torch's Python decomposition clones in eval mode where the C++ kernel returns its input.
_DROPOUTS = frozenset({aten.dropout.default, aten.feature_dropout.default, aten.alpha_dropout.default,
                       aten.feature_alpha_dropout.default})
#: Metadata queries that FlopCounterMode also passes through untouched.
_METADATA_OPS = frozenset({
    aten.is_contiguous.default,
    aten.is_contiguous.memory_format,
    aten.is_strides_like_format.default,
    aten.is_non_overlapping_and_dense.default,
    aten.size.default,
    aten.sym_size.default,
    aten.stride.default,
    aten.sym_stride.default,
    aten.storage_offset.default,
    aten.sym_storage_offset.default,
    aten.numel.default,
    aten.sym_numel.default,
    aten.dim.default,
    torch.ops.prim.layout.default,
})


def experts_reached(mat_a: torch.Tensor, mat_b: torch.Tensor) -> float:
    """Share of a grouped product's weight groups its rows use: for rows ``(S, k)`` against one
    weight matrix per expert ``(G, k, n)``, the experts that ``S`` token–expert pairs routed uniformly
    at random are expected to reach, ``G·(1 − (1 − 1/G)^S)``, over ``G`` (a decode step of a few tokens
    reads a few experts' weights, a prompt all of them); 1 for the other layouts, whose groups all run.
    Expected rather than counted, so that meta and real traces agree and the routing of random
    weights does not set it."""
    if mat_a.dim() != 2 or mat_b.dim() != 3:
        return 1.0
    groups, rows = mat_b.shape[0], mat_a.shape[0]
    return float(1.0 - (1.0 - 1.0 / groups) ** rows) if groups else 1.0


def stored_bytes(t: torch.Tensor) -> int:
    """Bytes a kernel touches to read or write ``t`` once (broadcast dims, stride 0, count once)."""
    n = t.element_size()
    for size, stride in zip(t.shape, t.stride(), strict=True):
        if stride:
            n *= size
    return n


def tensor_arguments(values: Any) -> Iterator[torch.Tensor]:
    """Tensors among op arguments or outputs (one level into lists and tuples)."""
    for v in values:
        if isinstance(v, torch.Tensor):
            yield v
        elif isinstance(v, (list, tuple)):
            yield from (x for x in v if isinstance(x, torch.Tensor))


def _base_name(func: torch._ops.OpOverload) -> str:
    name = func._overloadpacket.__name__
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


def _pow_cost(args: tuple[Any, ...]) -> int:
    exponent = args[1] if len(args) > 1 else None
    if isinstance(exponent, (int, float)) and float(exponent).is_integer() and exponent >= 2:
        return int(exponent) - 1
    return 1


def other_flops(func: torch._ops.OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    """Non-matmul flops of one op (see the module docstring)."""
    name = _base_name(func)
    if name in PER_OUTPUT_ELEMENT or name == "pow":
        first = next(tensor_arguments((out,)), None)
        cost = _pow_cost(args) if name == "pow" else PER_OUTPUT_ELEMENT[name]
        return cost * first.numel() if first is not None else 0
    if name in PER_INPUT_ELEMENT:
        return PER_INPUT_ELEMENT[name] * args[0].numel()
    if name in MATMUL_PLUS_ADD:
        return 0 if kwargs.get("beta", 1) == 0 else next(tensor_arguments((out,))).numel()
    if name in FUSED_ATTENTION:
        query, key = args[0], args[1]
        scores = query.numel() // query.shape[-1] * key.shape[-2]
        masked = any(
            isinstance(_argument(func, args, kwargs, a), torch.Tensor) for a in ("attn_mask", "attn_bias")
        ) or bool(_argument(func, args, kwargs, "is_causal"))
        return scores * (7 if masked else 6)
    return 0


def _argument(func: torch._ops.OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> Any:
    """The value of argument ``name`` of a call of ``func`` (None if absent)."""
    for position, argument in enumerate(func._schema.arguments):
        if argument.name == name:
            return args[position] if position < len(args) else kwargs.get(name, argument.default_value)
    return None


def op_bytes(func: torch._ops.OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    """Bytes read plus bytes written by one op."""
    name = _base_name(func)
    if func.is_view or name in NO_DATA:
        return 0
    written = sum(stored_bytes(t) for t in tensor_arguments(out if isinstance(out, (tuple, list)) else (out,)))
    inputs = list(tensor_arguments(args)) + list(tensor_arguments(kwargs.values()))
    if name in GATHERS and inputs:  # reads the indices and as many table rows as it writes
        return 2 * written + sum(stored_bytes(t) for t in inputs[1:])
    if name in SCATTERS and len(inputs) > 1:  # reads the indices and the source, writes the source's rows
        return sum(stored_bytes(t) for t in inputs[1:]) + stored_bytes(inputs[-1])
    if name in GROUPED_PRODUCTS:  # reads the weights of the experts its rows reach
        weights = stored_bytes(inputs[1])
        return written + sum(stored_bytes(t) for t in inputs) - weights + round(weights * experts_reached(*inputs[:2]))
    return written + sum(stored_bytes(t) for t in inputs)


@functools.cache
def _written_arguments(func: torch._ops.OpOverload) -> tuple[tuple[int, str], ...]:
    """(position, name) of the arguments ``func`` writes in place."""
    return tuple(
        (i, a.name)
        for i, a in enumerate(func._schema.arguments)
        if a.alias_info is not None and a.alias_info.is_write
    )


def _meta_grouped_mm(mat_a: torch.Tensor, mat_b: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """A grouped product's output on the meta device, whose kernel takes bfloat16 only (the CPU's takes
    float32 too): the same product of bfloat16 stand-ins, in the dtype the real kernel returns."""
    dtype = kwargs.pop("out_dtype", None) or mat_a.dtype
    bf16 = [a.to(torch.bfloat16) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
    out: torch.Tensor = aten._grouped_mm(mat_a.to(torch.bfloat16), mat_b.to(torch.bfloat16), *bf16, **kwargs)
    return out.to(dtype)


class OpCounter(TorchDispatchMode):
    """Counts every aten op and adds it to ``sink()``, the totals of the node running now.

    ``before_write(tensor)`` is called before an op writes ``tensor`` in place (the replay store
    uses it to keep captured inputs intact).  On the meta device, a data-dependent boolean check
    (``bool(mask.all())``) answers True, the answer real all-ones masks and unpacked inputs give;
    any other read of tensor values, or an op whose output's shape depends on them (``nonzero``),
    fails with an IreneError; fused attention takes the kernel the CPU would take, and a float32
    grouped product a bfloat16 stand-in, so meta and CPU traces agree.
    """

    def __init__(self, sink: Callable[[], OpTotals], before_write: Callable[[torch.Tensor], None] | None = None):
        super().__init__()
        self.sink = sink
        self.before_write = before_write

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _METADATA_OPS:
            return NotImplemented
        if func in _DROPOUTS and not args[2]:
            return args[0]
        if func is aten.scaled_dot_product_attention.default and args[0].is_meta:
            return self._meta_attention(*args, **kwargs)
        if func in _VALUE_SHAPED and args[0].is_meta:
            raise IreneError(
                f"meta mode: the model's {func._overloadpacket.__name__} returns a shape that depends on tensor "
                "values (e.g. a mixture of experts' eager loop over the experts its tokens chose); trace it "
                "without --meta"
            )
        with torch._C.DisableTorchFunction():  # Python kernels' torch calls are not the model's calls
            if _base_name(func) == "_grouped_mm" and args[0].is_meta and args[0].dtype != torch.bfloat16:
                return self._count(func, args, kwargs, _meta_grouped_mm(*args, **kwargs))
            if func is not torch.ops.prim.device.default:
                with self:
                    decomposed = func.decompose(*args, **kwargs)
                if decomposed is not NotImplemented:
                    return decomposed
            if func is aten._local_scalar_dense.default and args[0].is_meta:
                return self._meta_scalar(args[0])
            if self.before_write is not None:
                for position, name in _written_arguments(func):
                    target = args[position] if position < len(args) else kwargs.get(name)
                    if isinstance(target, torch.Tensor):
                        self.before_write(target)
            out = func(*args, **kwargs)
        return self._count(func, args, kwargs, out)

    def _count(self, func: torch._ops.OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Any:
        """Adds one op's flops and bytes to the node running now; returns its output ``out``."""
        totals = self.sink()
        formula = MATMUL_FORMULAS.get(func._overloadpacket)
        if formula is None and _base_name(func) in GROUPED_PRODUCTS:
            formula = _grouped_mm_flop
        if formula is not None:
            totals.matmul_flops += formula(*args, **kwargs, out_val=out)
        totals.other_flops += other_flops(func, args, kwargs, out)
        totals.bytes_moved += op_bytes(func, args, kwargs, out)
        return out

    def _meta_attention(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attn_mask: torch.Tensor | None = None,
        dropout_p: float = 0.0, is_causal: bool = False, *, scale: float | None = None, enable_gqa: bool = False,
    ) -> torch.Tensor:
        """SDPA on meta tensors takes the kernel the CPU would pick (meta alone always picks math)."""

        def stand_in(t: torch.Tensor | None) -> torch.Tensor | None:  # a CPU tensor of t's shape, one row of memory
            return None if t is None else torch.empty(t.shape[-1], dtype=t.dtype).expand(t.shape)

        choice = torch._fused_sdp_choice(
            stand_in(query), stand_in(key), stand_in(value), stand_in(attn_mask), dropout_p, is_causal,
            scale=scale, enable_gqa=enable_gqa,
        )
        with self:
            if choice == int(SDPBackend.FLASH_ATTENTION):
                return aten._scaled_dot_product_flash_attention_for_cpu(
                    query, key, value, dropout_p, is_causal, attn_mask=attn_mask, scale=scale
                )[0]
            return aten.scaled_dot_product_attention.default.decompose(
                query, key, value, attn_mask, dropout_p, is_causal, scale=scale, enable_gqa=enable_gqa
            )

    @staticmethod
    def _meta_scalar(tensor: torch.Tensor) -> bool:
        if tensor.dtype == torch.bool:
            return True
        raise IreneError(
            f"meta mode: the model reads the value of a {tensor.dtype} tensor during its forward pass "
            "(data-dependent control flow); trace it without --meta"
        )
