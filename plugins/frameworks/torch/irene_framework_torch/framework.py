"""The ``torch`` framework: build a model by name, trace one forward pass, replay any node.

Importing this module is cheap (torch and transformers are imported inside :meth:`trace`), so
the plugin's entry point keeps ``irene --help`` fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from irene_core import Framework, IreneError
from irene_framework_torch.models import preset_names

if TYPE_CHECKING:  # pragma: no cover
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

    def presets(self) -> list[str]:
        return preset_names()

    def trace(
        self,
        model: str,
        batch_size: int,
        seq_len: int,
        *,
        device: str = "cpu",
        attention: str = "eager",
        meta: bool = False,
    ) -> TorchTracedModel:
        """Build ``model`` with random weights and trace one forward pass at (batch_size, seq_len).

        ``meta=True`` builds on the meta device: structure and model features without running a
        kernel or allocating weights; such a trace cannot replay.
        """
        for flag, value in (("--batch-size", batch_size), ("--seq-len", seq_len)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise IreneError(f"{flag}: must be an integer >= 1, got {value!r}")
        if attention not in ATTENTIONS:
            raise IreneError(f"--attention {attention}: use one of {', '.join(ATTENTIONS)}")
        torch_device = _device(device, meta)

        import torch
        import transformers

        from irene_framework_torch import models
        from irene_framework_torch.tree_builder import trace_module

        resolved = models.resolve(model)
        module = models.build(resolved, attention, torch_device, meta)
        inputs = models.example_inputs(module, batch_size, seq_len, torch.device("meta") if meta else torch_device)
        run_meta = {
            "framework": self.name,
            "traced_on": "meta" if meta else str(torch_device),
            "model_class": type(module).__name__,
            "model_source": resolved.source,
            "family": models.family(module.config),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        }
        try:
            traced = trace_module(
                module, inputs, model_name=model, batch_size=batch_size, seq_len=seq_len,
                device=torch_device, meta=meta, run_meta=run_meta,
            )
        except IreneError as exc:
            raise IreneError(f"{model} at batch {batch_size}, seq {seq_len}: {exc}") from None
        traced.record.attention = attention
        return traced
