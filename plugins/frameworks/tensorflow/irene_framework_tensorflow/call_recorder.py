"""Record which layer calls which, and which graph ops each call creates, while a model is traced into a
``tf.function`` graph.

Every layer's ``call`` is wrapped for the duration of the ``with`` block.  Graph construction is
sequential, so the ops created between two call events belong to the innermost layer running then:
each :class:`LayerCall` keeps, in order, its nested calls and :class:`OpSpan` s of its own ops.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OpSpan:
    """Ops ``graph.get_operations()[start:stop]``, created directly by one layer call."""

    start: int
    stop: int


@dataclass
class LayerCall:
    """One call of one layer during the trace: its arguments and what it did, in order."""

    layer: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    items: list[LayerCall | OpSpan] = field(default_factory=list)

    def calls(self) -> list[LayerCall]:
        return [item for item in self.items if isinstance(item, LayerCall)]


class CallRecorder:
    """Context manager: wraps ``call`` of ``layers`` and records the call tree into :attr:`calls`."""

    def __init__(self, layers: Iterable[Any]):
        self.layers = list({id(layer): layer for layer in layers}.values())
        self.calls: list[LayerCall] = []  # top-level calls
        self.graph: Any = None
        self._stack: list[LayerCall] = []
        self._cursor = 0
        self._saved: list[tuple[Any, Any]] = []

    def __enter__(self) -> CallRecorder:
        for layer in self.layers:
            self._saved.append((layer, layer.__dict__.get("call")))
            object.__setattr__(layer, "call", self._wrapped(layer, layer.call))
        return self

    def __exit__(self, *exc: object) -> None:
        for layer, own in self._saved:
            if own is None:
                object.__delattr__(layer, "call")
            else:
                object.__setattr__(layer, "call", own)
        self._saved.clear()

    def _wrapped(self, layer: Any, original: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            record = LayerCall(layer, args, kwargs)
            self._flush()
            (self._stack[-1].items if self._stack else self.calls).append(record)
            self._stack.append(record)
            try:
                return original(*args, **kwargs)
            finally:
                self._flush()
                self._stack.pop()

        return call

    def _flush(self) -> None:
        """Give the ops created since the last event to the layer running now."""
        if self.graph is None:
            import tensorflow as tf

            self.graph = tf.compat.v1.get_default_graph()
            self._cursor = len(self.graph.get_operations())
        count = len(self.graph.get_operations())
        if self._stack and count > self._cursor:
            self._stack[-1].items.append(OpSpan(self._cursor, count))
        self._cursor = count
