"""Node signatures: a short stable hash of what one call computes, so identical nodes are measured once.

A signature covers the node's type and level; its inputs (the structure of args and kwargs, every
tensor's shape, dtype and strides, the values of plain arguments such as ``dim`` or ``p``); for a
module its own parameters' and buffers' shapes and dtypes and its configuration (plain attributes:
``eps``, head counts, activation functions, bias and dropout settings…, except those that only say
where it sits, :data:`POSITION_ATTRIBUTES`); for a functional op the function; and its children's
signatures in call order.  Never the node's name or position, so the twelve layers of bert-base share
one.  Meta traces get the same signatures as real ones (shapes, dtypes and strides only).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

#: Module attributes that number a module rather than configure it (transformers' ``layer_idx``…).
POSITION_ATTRIBUTES = frozenset({"layer_idx", "layer_id", "layer_index", "layer_number", "block_idx"})
_PLAIN = (bool, int, float, complex, str, type(None), slice, type(Ellipsis), torch.dtype, torch.device, enum.Enum)


def _tensor(t: torch.Tensor) -> str:
    layout = t.stride() if t.layout == torch.strided else t.layout
    return f"T{tuple(t.shape)}:{t.dtype}:{layout}"


def _value(x: Any) -> str | None:
    """A stable text for a tensor, a plain value (tuples of them too) or a function; None for anything else."""
    if isinstance(x, torch.Tensor):
        return _tensor(x)
    if isinstance(x, _PLAIN):
        return repr(x)
    if isinstance(x, (tuple, list)):
        parts = [_value(v) for v in x]
        return None if None in parts else f"({','.join(p for p in parts if p is not None)})"
    if callable(x) and hasattr(x, "__qualname__"):  # a function, method or class (no memory addresses)
        return f"{getattr(x, '__module__', None) or ''}.{x.__qualname__}"
    return None


def describe_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The call's argument structure and each argument; other objects (a cache, a config) by their type."""
    leaves, spec = tree_flatten((tuple(args), dict(kwargs)))
    described = (_value(x) or f"<{type(x).__module__}.{type(x).__qualname__}>" for x in leaves)
    return f"{spec}|{'|'.join(described)}"


def _configuration(function: Callable[..., Any]) -> str:
    """A module's class, parameters, buffers and plain attributes; a function's qualified name."""
    if not isinstance(function, nn.Module):
        return _value(function) or type(function).__qualname__
    own = [f"{type(function).__module__}.{type(function).__qualname__}"]
    for kind, tensors in (("p", function._parameters), ("b", function._buffers)):
        own += [f"{kind}:{name}={'-' if t is None else _tensor(t)}" for name, t in tensors.items()]
    for name, value in sorted(vars(function).items()):
        if name.startswith("_") or name in POSITION_ATTRIBUTES:
            continue
        text = _value(value)
        if text is not None:
            own.append(f"{name}={text}")
    return ";".join(own)


def signature(type_: str, level: str, function: Callable[..., Any], inputs: str, children: list[str]) -> str:
    """16 hex digits of a BLAKE2b hash over the node's type, level, configuration, inputs and children."""
    text = "\x1f".join([type_, level, _configuration(function), inputs, *children])
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
