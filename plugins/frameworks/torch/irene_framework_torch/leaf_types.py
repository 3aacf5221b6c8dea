"""Which modules and functional ops become ML-primitive leaves (level ``ml``), and their names.

A *primitive module* is a leaf of the model tree: everything that runs inside it is its own work.
Primitive are: torch.nn modules without child modules (Linear, LayerNorm, Embedding, Dropout,
Tanh, GELU, ReLU...), subclasses of the common torch primitives (``BartLearnedPositionalEmbedding``
is an Embedding), transformers' ``Conv1D`` and activation classes (``SiLUActivation``: the SwiGLU
gate), childless normalisation modules and rotary embeddings whatever their package
(``T5LayerNorm``, ``LlamaRMSNorm``, ``Gemma2RMSNorm``, ``Qwen3RotaryEmbedding``), and the KV-cache
write of prefill and decode (:class:`~irene_framework_torch.kv_cache.KVCacheUpdate`).

A *functional leaf* is a call of one of :data:`FUNCTIONAL_OP_NAMES`' functions made directly inside
a non-primitive module (e.g. the attention score ``matmul``); it becomes an ``ml`` leaf named after
the calling module's scope, like the paper's ``encoder.layer.0.attention.self:MatMul``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

#: Packages whose classes count as primitives when they have no child module.
_PRIMITIVE_PACKAGES = ("torch.nn.modules.", "transformers.activations")


@cache
def _primitive_bases() -> tuple[type, ...]:
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    from irene_framework_torch.kv_cache import KVCacheUpdate

    return (nn.Linear, nn.Embedding, nn.LayerNorm, nn.modules.conv._ConvNd, nn.modules.dropout._DropoutNd, Conv1D,
            KVCacheUpdate)


def is_primitive_module(module: nn.Module) -> bool:
    """True when ``module`` is an ML primitive: a leaf whose inner calls are its own work."""
    cls = type(module)
    if isinstance(module, _primitive_bases()):
        return True
    if next(module.children(), None) is not None:
        return False
    return cls.__module__.startswith(_PRIMITIVE_PACKAGES) or cls.__name__.endswith(("Norm", "RotaryEmbedding"))


#: Functional op name for each (qualified) torch function name, as documented in docs/torch-tracer.md.
FUNCTIONAL_OP_NAMES: dict[str, str] = {
    "torch.matmul": "MatMul",
    "torch.Tensor.matmul": "MatMul",
    "torch.Tensor.__matmul__": "MatMul",
    "torch.Tensor.__rmatmul__": "MatMul",
    "torch.bmm": "MatMul",
    "torch.Tensor.bmm": "MatMul",
    "torch.mm": "MatMul",
    "torch.Tensor.mm": "MatMul",
    "torch.baddbmm": "MatMul",
    "torch.Tensor.baddbmm": "MatMul",
    "torch.addmm": "MatMul",
    "torch.Tensor.addmm": "MatMul",
    "torch.einsum": "Einsum",
    "torch.softmax": "Softmax",
    "torch.Tensor.softmax": "Softmax",
    "torch.nn.functional.softmax": "Softmax",
    "torch.nn.functional.scaled_dot_product_attention": "ScaledDotProductAttention",
    "torch.nn.functional.linear": "Linear",
    "torch.nn.functional.layer_norm": "LayerNorm",
    "torch.nn.functional.embedding": "Embedding",
    "torch.nn.functional.grouped_mm": "GroupedMatMul",
    "torch._grouped_mm": "GroupedMatMul",
    "torch.ops.transformers.grouped_mm_fallback": "GroupedMatMul",
}


@cache
def functional_leaves() -> dict[Callable[..., Any], str]:
    """The torch function objects a TorchFunctionMode sees for :data:`FUNCTIONAL_OP_NAMES` (those this
    torch and transformers have: the grouped product came with torch 2.8; transformers registers its
    fallback op when its mixture-of-experts code is imported)."""
    import torch

    with contextlib.suppress(ImportError):  # a transformers without mixture-of-experts kernels
        import transformers.integrations.moe  # noqa: F401  (registers torch.ops.transformers.grouped_mm_fallback)

    out: dict[Callable[..., Any], str] = {}
    for qualified, op in FUNCTIONAL_OP_NAMES.items():
        obj: Any = torch
        for part in qualified.split(".")[1:]:
            obj = getattr(obj, part, None)
        if obj is not None:
            out[obj] = op
    return out
