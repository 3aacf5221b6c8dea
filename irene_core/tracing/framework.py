"""The framework-tracer contract (kind ``framework``): model → tree with model features, and replay."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from irene_core.tracing.replay import ReplayResult
from irene_core.tree.schema import TreeRecord


class TracedModel(ABC):
    """A model traced at one input size: its tree, and the captured inputs to replay any node.

    ``record`` has the five model features (:data:`irene_core.tree.schema.MODEL_FEATURES`) on every node;
    its ids are the keys :meth:`replay` takes.
    """

    record: TreeRecord

    @abstractmethod
    def replay(
        self,
        node_id: str,
        *,
        calls: int | None = None,
        seconds: float | None = None,
        around: AbstractContextManager[Any] | None = None,
    ) -> ReplayResult:
        """Run node ``node_id`` alone on its captured inputs ``calls`` times, or for ``seconds``.

        Exactly one of ``calls`` / ``seconds``; cheap to call many times (a run replays every node).
        ``around`` (e.g. a meter window) is entered right before the first timed call and exited
        right after the last, so it covers exactly the calls counted — no warm-up, no set-up.
        Raises :class:`~irene_core.errors.IreneError` for an unknown node, bad arguments, or a
        trace that holds no tensors (``meta=True``).
        """


class Framework(ABC):
    """A tracer for one ML framework.

    ``phases`` (a capability, read by core with this default as the fallback) names the phases
    :meth:`trace` accepts: ``forward`` is the model's forward pass; a framework that also traces
    LLM inference declares ``prefill`` (the prompt, filling a KV cache) and ``decode`` (one token per
    sequence after ``context_len`` cached tokens).
    """

    kind: ClassVar[str] = "framework"
    name: ClassVar[str]
    description: ClassVar[str] = ""
    phases: ClassVar[tuple[str, ...]] = ("forward",)

    @abstractmethod
    def presets(self) -> list[str]:
        """Model names this framework can build with no download."""

    @abstractmethod
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
    ) -> TracedModel:
        """Build ``model`` and trace one call at (batch_size, seq_len) in ``phase``.

        ``attention``: ``eager`` (attention ops visible as leaves) or ``sdpa`` (one fused leaf);
        ``meta``: structure and model features without running a kernel (the result cannot
        replay); ``phase``: one of :attr:`phases`; ``context_len``: tokens already in the KV cache
        (``decode``); ``dtype``: the parameter dtype (``None``: the framework's default for the
        model); ``logits``: ``last`` or ``all`` positions through the language-model head
        (``prefill``).  The record carries ``phase``, ``context_len`` and ``dtype``.  ``config``:
        architecture overrides (``irene whatif --vary``) by generic name — ``layers``, ``hidden``,
        ``heads``, ``intermediate`` — or by any integer attribute of the model's config; the record's
        ``meta["config_overrides"]`` says them.  Bad names or options raise
        :class:`~irene_core.errors.IreneError` (one line).  Plugins written before ``phase``… or
        ``config`` existed omit them: core passes them only when they differ from these defaults.
        """

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
    ) -> None:
        """Raise :class:`~irene_core.errors.IreneError` (one line) when tracing this on ``device``
        cannot work here — a dtype the device cannot run, a model that does not fit its memory —
        before anything is built (``irene run`` calls it up front).  Default: no check."""
        return None
