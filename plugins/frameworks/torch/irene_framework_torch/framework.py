"""The ``torch`` framework: build a model by name, trace one forward pass, replay any node.

Importing this module is cheap (torch and transformers are imported inside :meth:`trace`), so
the plugin's entry point keeps ``irene --help`` fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from irene_core import Framework, IreneError
from irene_framework_torch import models
from irene_framework_torch.models import ResolvedModel, preset_names
from irene_framework_torch.phases import (
    PHASES,
    PhaseRequest,
    check_dtype_runs,
    check_fits,
    check_positions,
    check_request,
    estimate_memory,
    phase_inputs,
    torch_dtype,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from irene_framework_torch.replay import TorchTracedModel

ATTENTIONS = ("eager", "sdpa")


def _device(name: str, meta: bool):
    """The torch device; on the meta device a missing GPU is fine (a what-if estimate)."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise IreneError(f"--device {name}: not a device (use cpu or cuda)") from None
    if device.type not in ("cpu", "cuda"):
        raise IreneError(f"--device {name}: the torch tracer runs on cpu or cuda")
    if device.type == "cuda" and not meta and not torch.cuda.is_available():
        raise IreneError(f"--device {name}: CUDA is not available to this PyTorch ({torch.__version__})")
    return device


class TorchFramework(Framework):
    """PyTorch / transformers tracer."""

    name = "torch"
    description = "PyTorch + transformers: module tree, functional ops, flops and bytes per node, node replay"
    phases = PHASES

    def presets(self) -> list[str]:
        return preset_names()

    def check_resources(
        self,
        model: str,
        batch_size: int,
        seq_len: int,
        *,
        device: str = "cpu",
        attention: str = "eager",
        phase: str = "forward",
        context_len: int | None = None,
        dtype: str | None = None,
        logits: str = "last",
        config: Mapping[str, int] | None = None,
    ) -> None:
        """Refuse (one line) what cannot run here: a bad phase request, a context beyond the model's
        positions, a dtype the device cannot run, a model whose estimated memory does not fit."""
        self._prepare(model, batch_size, seq_len, device, attention, False, phase, context_len, dtype, logits, config)

    def _prepare(
        self, model: str, batch_size: int, seq_len: int, device: str, attention: str, meta: bool, phase: str,
        context_len: int | None, dtype: str | None, logits: str, config: Mapping[str, int] | None,
    ) -> tuple[PhaseRequest, ResolvedModel, torch.device, torch.dtype]:
        """Everything checked before a model is built: the request, the device, the config overrides, the
        dtype, the memory."""
        request = check_request(phase, batch_size, seq_len, context_len, logits)
        if attention not in ATTENTIONS:
            raise IreneError(f"--attention {attention}: use one of {', '.join(ATTENTIONS)}")
        torch_device = _device(device, meta)
        resolved = models.resolve(model)
        if config:
            resolved = models.override(resolved, config)
        dtype_name = dtype or models.default_dtype(model)
        parameter_dtype = torch_dtype(dtype_name)
        if request.cached:
            if models.family(resolved.config) != "decoder":
                raise IreneError(f"--phase {phase}: {model} is not a decoder (a causal language model); "
                                 "prefill and decode need one (use --phase forward)")
            check_positions(resolved.config, request)
        if not meta:
            check_dtype_runs(parameter_dtype, torch_device)
            skeleton = models.build(resolved, attention, torch_device, True, causal=request.cached,
                                    dtype=parameter_dtype)
            parameters = sum(p.numel() for p in skeleton.parameters())
            element_size = parameter_dtype.itemsize
            check_fits(model, estimate_memory(resolved.config, parameters, request, element_size), torch_device,
                       dtype_name, request)
        return request, resolved, torch_device, parameter_dtype

    def trace(
        self,
        model: str,
        batch_size: int,
        seq_len: int,
        *,
        device: str = "cpu",
        attention: str = "eager",
        meta: bool = False,
        phase: str = "forward",
        context_len: int | None = None,
        dtype: str | None = None,
        logits: str = "last",
        config: Mapping[str, int] | None = None,
    ) -> TorchTracedModel:
        """Build ``model`` with random weights and trace one call at (batch_size, seq_len) in ``phase``.

        ``meta=True`` builds on the meta device: structure and model features without running a
        kernel or allocating weights; such a trace cannot replay (and is never refused for memory).
        ``phase``: ``forward`` (the base model, no cache), ``prefill`` (the causal LM filling an empty
        cache, logits of the last position or, with ``logits="all"``, of every one) or ``decode`` (one
        token per sequence after ``context_len`` cached tokens).  ``dtype``: float32, bfloat16 or
        float16 (default: bfloat16 for the modern decoder presets, float32 otherwise).  ``config``:
        architecture overrides (:func:`~irene_framework_torch.models.override`); the record is named
        ``model[key=value,…]`` and its meta has ``config_overrides`` (as given) and ``config_attributes``
        (the config attributes set, derived ones included).
        """
        request, resolved, torch_device, parameter_dtype = self._prepare(
            model, batch_size, seq_len, device, attention, meta, phase, context_len, dtype, logits, config
        )
        import torch
        import transformers

        from irene_framework_torch.tree_builder import trace_module

        on = torch.device("meta") if meta else torch_device
        module = models.build(resolved, attention, torch_device, meta, causal=request.cached, dtype=parameter_dtype)
        if request.cached:
            inputs, cache = phase_inputs(module, request, parameter_dtype, on)
        else:
            inputs, cache = models.example_inputs(module, batch_size, seq_len, on), None
        run_meta = {
            "framework": self.name,
            "traced_on": "meta" if meta else str(torch_device),
            "model_class": type(module).__name__,
            "model_source": resolved.source,
            "family": models.family(module.config),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        }
        if config:
            run_meta.update({"config_overrides": dict(config), "config_attributes": dict(resolved.overrides)})
        if cache is not None:
            run_meta.update({"kv_cache_bytes": cache.nbytes,
                             "kv_cache_dtype": str(parameter_dtype).removeprefix("torch."), "logits": logits})
        try:
            traced = trace_module(
                module, inputs, model_name=models.display_name(model, config), batch_size=batch_size, seq_len=seq_len,
                device=torch_device, meta=meta, run_meta=run_meta,
            )
        except IreneError as exc:
            where = f" {phase} context {context_len}" if context_len else (f" {phase}" if request.cached else "")
            raise IreneError(f"{model} at batch {batch_size}, seq {seq_len}{where}: {exc}") from None
        record = traced.record
        record.attention = attention
        record.phase, record.context_len = phase, context_len
        record.dtype = str(parameter_dtype).removeprefix("torch.")
        return traced
