"""The framework-tracer contract (kind ``framework``): model → tree with model features, and replay."""

from __future__ import annotations

from abc import ABC, abstractmethod
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
    """A tracer for one ML framework."""

    kind: ClassVar[str] = "framework"
    name: ClassVar[str]
    description: ClassVar[str] = ""

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
    ) -> TracedModel:
        """Build ``model`` and trace one forward pass at (batch_size, seq_len).

        ``attention``: ``eager`` (attention ops visible as leaves) or ``sdpa`` (one fused leaf);
        ``meta``: structure and model features without running a kernel (the result cannot
        replay).  Bad names or options raise :class:`~irene_core.errors.IreneError` (one line).
        """
