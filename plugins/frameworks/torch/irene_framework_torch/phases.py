"""Phases of LLM inference (``forward``, ``prefill``, ``decode``), the parameter dtype, and whether a
trace fits the device — everything checked in one line before a model is built.

| phase | model | KV cache | lm_head | seq_len |
|---|---|---|---|---|
| forward | base model (``AutoModel``) | none | no | as given |
| prefill | causal LM | filled (pinned, empty before) | last position (``logits="all"``: every one) | prompt length |
| decode | causal LM | ``context_len`` random tokens (pinned) | last position | 1 |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from irene_core import IreneError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from irene_framework_torch.kv_cache import PinnedCache

PHASES = ("forward", "prefill", "decode")
LOGITS = ("last", "all")
DTYPES = ("float32", "bfloat16", "float16")
GIB = 2**30


@dataclass(frozen=True)
class PhaseRequest:
    """One traced call: phase, sizes, the tokens already cached, which logits the head computes."""

    phase: str
    batch_size: int
    seq_len: int
    context_len: int | None
    logits: str

    @property
    def cached(self) -> bool:
        return self.phase != "forward"

    @property
    def context(self) -> int:
        return self.context_len or 0


def check_request(phase: str, batch_size: int, seq_len: int, context_len: int | None, logits: str) -> PhaseRequest:
    """The request, or a one-line IreneError naming the flag that is wrong."""
    for flag, value in (("--batch-size", batch_size), ("--seq-len", seq_len)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise IreneError(f"{flag}: must be an integer >= 1, got {value!r}")
    if phase not in PHASES:
        raise IreneError(f"--phase {phase}: use one of {', '.join(PHASES)}")
    if logits not in LOGITS:
        raise IreneError(f"--logits {logits}: use one of {', '.join(LOGITS)}")
    if context_len is not None and phase != "decode":
        raise IreneError(f"--context {context_len}: a context is the KV cache of --phase decode (not {phase})")
    if phase == "decode":
        if context_len is None:
            raise IreneError("--phase decode needs --context L (the tokens already in the KV cache)")
        if isinstance(context_len, bool) or not isinstance(context_len, int) or context_len < 1:
            raise IreneError(f"--context: must be an integer >= 1, got {context_len!r}")
        if seq_len != 1:
            raise IreneError(f"--seq-len {seq_len}: --phase decode generates one token per sequence (use --seq-len 1)")
    if logits == "all" and phase != "prefill":
        raise IreneError(f"--logits all: only --phase prefill computes logits for several positions (not {phase})")
    return PhaseRequest(phase, batch_size, seq_len, context_len, logits)


def torch_dtype(name: str) -> torch.dtype:
    import torch

    if name not in DTYPES:
        raise IreneError(f"--dtype {name}: use one of {', '.join(DTYPES)}")
    dtype: torch.dtype = getattr(torch, name)
    return dtype


def check_dtype_runs(dtype: torch.dtype, device: torch.device) -> None:
    """One small matmul in ``dtype`` on ``device``; a one-line IreneError if the device cannot run it."""
    import torch

    name = str(dtype).removeprefix("torch.")
    try:
        a = torch.ones(8, 8, dtype=dtype, device=device)
        float((a @ a).float().sum())
    except (RuntimeError, TypeError, NotImplementedError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IreneError(f"--dtype {name}: {device} cannot run a {name} matmul ({first})") from None


def check_positions(config: Any, request: PhaseRequest) -> None:
    """A causal request fits the model's rotary / absolute positions (context + new tokens)."""
    limit = getattr(config.get_text_config(decoder=True), "max_position_embeddings", None)
    total = request.context + request.seq_len
    if isinstance(limit, int) and limit > 0 and total > limit:
        what = f"--context {request.context} + --seq-len {request.seq_len}" if request.context else f"--seq-len {total}"
        raise IreneError(f"{what} = {total} tokens exceeds the model's {limit} positions")


@dataclass(frozen=True)
class MemoryEstimate:
    """What one trace holds at once (bytes): weights, the KV cache, the captured activations."""

    weights: int
    kv_cache: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.activations

    def describe(self) -> str:
        return (f"about {self.total / GIB:.1f} GiB (weights {self.weights / GIB:.1f}, KV cache "
                f"{self.kv_cache / GIB:.1f}, activations {self.activations / GIB:.1f})")


def estimate_memory(config: Any, parameters: int, request: PhaseRequest, element_size: int) -> MemoryEstimate:
    """Weights + KV cache + the activations a trace keeps (every node's inputs of one pass, roughly
    10 hidden-size and 3 intermediate-size tensors per layer and token, the attention scores three
    times, and the logits)."""
    from irene_framework_torch.kv_cache import cache_bytes

    text = config.get_text_config(decoder=True)
    hidden = int(getattr(text, "hidden_size", 0) or 0)
    intermediate = int(getattr(text, "intermediate_size", 0) or 4 * hidden)
    layers = int(getattr(text, "num_hidden_layers", 0) or 0)
    heads = int(getattr(text, "num_attention_heads", 0) or 0)
    vocab = int(getattr(text, "vocab_size", 0) or 0)
    tokens = request.batch_size * request.seq_len
    kv_length = request.context + request.seq_len
    per_token = layers * (10 * hidden + 3 * intermediate + 3 * heads * kv_length)
    logit_rows = request.batch_size * (request.seq_len if request.logits == "all" or not request.cached else 1)
    activations = element_size * (tokens * per_token + (logit_rows * vocab if request.cached else 0))
    kv = 0
    if request.cached:
        kv = cache_bytes(config, request.batch_size, request.context, request.seq_len, element_size)
    return MemoryEstimate(parameters * element_size, kv, activations)


def available_memory(device: torch.device) -> int:
    """Free memory of ``device``: the GPU's free memory, or the host's available RAM."""
    import torch

    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def check_fits(name: str, estimate: MemoryEstimate, device: torch.device, dtype_name: str,
               request: PhaseRequest) -> None:
    """A one-line IreneError when ``estimate`` exceeds what ``device`` has free."""
    free = available_memory(device)
    if estimate.total > free:
        where = "host RAM available" if device.type == "cpu" else f"free on {device}"
        context = f", context {request.context}" if request.context else ""
        raise IreneError(
            f"{name} ({dtype_name}, batch {request.batch_size}, seq {request.seq_len}{context}) needs "
            f"{estimate.describe()} but {free / GIB:.1f} GiB is {where}; use a smaller size or --dtype "
            "(irene trace --meta needs no memory)"
        )


def phase_inputs(model: torch.nn.Module, request: PhaseRequest, dtype: torch.dtype, device: torch.device
                 ) -> tuple[dict[str, Any], PinnedCache]:
    """Keyword inputs of one prefill or decode call of a causal LM: random token ids (seed 0), a pinned
    cache holding ``context_len`` random tokens, ``use_cache=True`` and ``logits_to_keep``."""
    import inspect

    import torch

    from irene_framework_torch.kv_cache import pinned_cache
    from irene_framework_torch.models import WEIGHT_SEED

    parameters = inspect.signature(model.forward).parameters
    if "logits_to_keep" not in parameters:
        raise IreneError(f"{type(model).__name__} takes no logits_to_keep: IrEne cannot choose the logits it computes")
    cache = pinned_cache(model, request.batch_size, request.context, request.seq_len, dtype, device)
    vocab = int(model.config.get_text_config(decoder=True).vocab_size)
    generator = torch.Generator().manual_seed(WEIGHT_SEED)
    ids = torch.randint(0, vocab, (request.batch_size, request.seq_len), generator=generator).to(device)
    cache_key = "cache" if "cache" in parameters else "past_key_values"
    inputs = {"input_ids": ids, cache_key: cache, "use_cache": True,
              "logits_to_keep": 0 if request.logits == "all" else 1}
    return inputs, cache
