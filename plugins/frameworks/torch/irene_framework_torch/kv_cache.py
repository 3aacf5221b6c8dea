"""A KV cache that replays: random keys and values of ``context`` tokens, written at fixed positions.

transformers' caches grow on every call (a ``DynamicCache`` concatenates, a ``StaticCache`` advances
its write position), so a node replayed N times would see N different caches.  A
:class:`PinnedCache` holds per layer a pre-allocated store of ``kept + seq_len`` tokens, the first
``kept`` random (the synthesised context), and each update writes the step's keys and values at
the same positions ``[kept, kept + seq_len)``: the store never grows, its length never changes, and
every replay does the same work.  A sliding-window layer keeps the last ``window - 1`` context
tokens, as a real sliding cache does once full.

The write is a :class:`KVCacheUpdate` module attached to the attention module of its layer
(``…self_attn.kv_cache``), so the tree has a ``KVCacheUpdate`` leaf per layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers.cache_utils import Cache, CacheLayerMixin, get_layer_types_and_kwargs

from irene_core import IreneError

#: Layer types of transformers' caches that a pinned cache can stand for.
FULL, SLIDING = "full_attention", "sliding_attention"
KV_SEED = 1


class KVCacheUpdate(nn.Module):
    """Writes one step's keys and values into its layer's pinned store; returns the whole store."""

    def __init__(self) -> None:
        super().__init__()
        self.layer: PinnedLayer | None = None

    def forward(self, key_states: torch.Tensor, value_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.layer is not None, "KVCacheUpdate called before its cache was built"
        return self.layer.write(key_states, value_states)


class PinnedLayer(CacheLayerMixin):
    """One layer's store: ``context`` tokens seen (``kept`` of them stored) plus the step's ``seq_len``."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, context: int, kept: int, sliding: bool,
                 writer: KVCacheUpdate):
        super().__init__()
        self.keys, self.values = keys, values
        self.context, self.kept, self.is_sliding = context, kept, sliding
        self.positions = torch.arange(kept, keys.shape[-2], device=keys.device)
        self.writer = writer
        self.is_initialized = True
        writer.layer = self

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        """Nothing to do: the store is allocated when the cache is built."""

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
               ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.writer(key_states, value_states)

    def write(self, key_states: torch.Tensor, value_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.keys.index_copy_(2, self.positions, key_states)
        self.values.index_copy_(2, self.positions, value_states)
        return self.keys, self.values

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.keys.shape[-2], self.context - self.kept

    def get_seq_length(self) -> int:
        return self.context

    def get_max_length(self) -> int:
        return self.keys.shape[-2]


class PinnedCache(Cache):
    """A transformers :class:`Cache` of :class:`PinnedLayer` s (its length is the context, always)."""

    def __init__(self, layers: list[PinnedLayer]):
        super().__init__(layers=layers)  # type: ignore[arg-type]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for layer in self.layers for t in (layer.keys, layer.values))


@dataclass(frozen=True)
class CacheShape:
    """The store of one layer: heads, head size, the context tokens it keeps, whether it slides."""

    heads: int
    head_dim: int
    kept: int
    sliding: bool


def cache_shapes(config: Any, context: int, seq_len: int) -> list[CacheShape]:
    """Per layer of ``config``'s decoder: the store a pinned cache holds for ``context`` + ``seq_len`` tokens."""
    text = config.get_text_config(decoder=True)
    layer_types, kwargs = get_layer_types_and_kwargs(text)
    heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    shapes = []
    for layer_type, extra in zip(layer_types, kwargs, strict=True):
        if layer_type not in (FULL, SLIDING):
            raise IreneError(f"layer type '{layer_type}' has no key/value cache IrEne can synthesise")
        window = extra.get("sliding_window") if layer_type == SLIDING else None
        kept = min(context, max(window - seq_len, 0)) if window else context
        shapes.append(CacheShape(heads, head_dim, kept, window is not None))
    return shapes


def cache_bytes(config: Any, batch_size: int, context: int, seq_len: int, element_size: int) -> int:
    """Bytes of the stores of a pinned cache (keys and values of every layer)."""
    return sum(2 * batch_size * s.heads * (s.kept + seq_len) * s.head_dim * element_size
               for s in cache_shapes(config, context, seq_len))


def _attention_modules(model: nn.Module) -> dict[int, nn.Module]:
    """The attention module of each layer index (the module class ending in ``Attention`` with a ``layer_idx``)."""
    found: dict[int, nn.Module] = {}
    for module in model.modules():
        index = getattr(module, "layer_idx", None)
        if isinstance(index, int) and type(module).__name__.endswith("Attention"):
            found.setdefault(index, module)
    return found


def pinned_cache(model: nn.Module, batch_size: int, context: int, seq_len: int, dtype: torch.dtype,
                 device: torch.device) -> PinnedCache:
    """A pinned cache for one call of ``model`` at (batch_size, seq_len) after ``context`` tokens, with
    random context keys and values (seed :data:`KV_SEED`); attaches each layer's ``KVCacheUpdate``."""
    attention = _attention_modules(model)
    generator = None if device.type == "meta" else torch.Generator(device=device).manual_seed(KV_SEED)
    layers = []
    for index, shape in enumerate(cache_shapes(model.config, context, seq_len)):
        module = attention.get(index)
        if module is None:
            raise IreneError(f"{type(model).__name__}: no attention module with layer_idx {index} for the KV cache")
        writer = KVCacheUpdate()
        module.add_module("kv_cache", writer)
        size = (batch_size, shape.heads, shape.kept + seq_len, shape.head_dim)
        store = [torch.zeros(size, dtype=dtype, device=device) for _ in range(2)]
        if generator is not None:
            for tensor in store:
                tensor[:, :, : shape.kept].normal_(generator=generator)
        layers.append(PinnedLayer(store[0], store[1], context, shape.kept, shape.sliding, writer))
    return PinnedCache(layers)
