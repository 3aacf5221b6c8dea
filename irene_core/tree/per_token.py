"""Per-token figures of a record, derived (never stored): energy and latency per token, tokens per
second, and the KV cache the call ran with.

Tokens per call: ``decode`` makes one token per sequence (``batch_size``); ``prefill`` and ``forward``
process ``batch_size × seq_len`` tokens.  Energy is the root's measured energy per call when there
is one, else its predicted energy; latency is the root's measured ``times_mean``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from irene_core.tree.schema import TreeRecord

MIB = 2**20


class PerToken(BaseModel):
    """What one call of a record costs per token."""

    model_config = ConfigDict(extra="forbid")

    phase: str
    context_len: int | None
    dtype: str
    tokens_per_call: int = Field(ge=1, description="decode: batch; prefill, forward: batch × seq")
    energy_j_per_token: float | None = Field(None, description="J per token (measured, else predicted)")
    energy_source: Literal["measured", "predicted"] | None = None
    latency_s_per_token: float | None = Field(None, description="measured seconds per call ÷ tokens")
    tokens_per_s: float | None = Field(None, description="tokens ÷ measured seconds per call")
    kv_cache_mib: float | None = Field(None, description="keys and values of every layer (prefill, decode)")
    kv_cache_dtype: str | None = None


def tokens_per_call(record: TreeRecord) -> int:
    """Tokens one call of ``record`` produces (decode) or processes (prefill, forward)."""
    return record.batch_size if record.phase == "decode" else record.batch_size * record.seq_len


def per_token(record: TreeRecord) -> PerToken:
    """The per-token figures of ``record`` (``None`` where the record lacks what they need)."""
    root = record.root
    tokens = tokens_per_call(record)
    energy = root.ground_truth_energy
    source: Literal["measured", "predicted"] = "measured"
    if energy is None:
        energy, source = root.predicted_energy, "predicted"
    latency = root.features.get("times_mean")
    kv_bytes = record.meta.get("kv_cache_bytes")
    return PerToken(
        phase=record.phase,
        context_len=record.context_len,
        dtype=record.dtype,
        tokens_per_call=tokens,
        energy_j_per_token=None if energy is None else energy / tokens,
        energy_source=None if energy is None else source,
        latency_s_per_token=None if latency is None else latency / tokens,
        tokens_per_s=tokens / latency if latency else None,
        kv_cache_mib=None if kv_bytes is None else float(kv_bytes) / MIB,
        kv_cache_dtype=record.meta.get("kv_cache_dtype"),
    )


def describe(figures: PerToken) -> str:
    """One line: ``decode, context 1024, bfloat16 · 8 tokens/call · 1.2 mJ/token (predicted) · …``."""
    parts = [figures.phase + (f", context {figures.context_len}" if figures.context_len else "") + f", {figures.dtype}",
             f"{figures.tokens_per_call} tokens/call"]
    if figures.energy_j_per_token is not None:
        parts.append(f"{1e3 * figures.energy_j_per_token:.4g} mJ/token ({figures.energy_source})")
    if figures.latency_s_per_token is not None and figures.tokens_per_s is not None:
        parts.append(f"{1e3 * figures.latency_s_per_token:.4g} ms/token, {figures.tokens_per_s:,.1f} tokens/s")
    if figures.kv_cache_mib is not None:
        parts.append(f"KV cache {figures.kv_cache_mib:,.1f} MiB ({figures.kv_cache_dtype})")
    return " · ".join(parts)
