"""The framework-tracer contract (kind ``framework``): model → tree with model features, and replay."""

from __future__ import annotations

import contextlib
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar

from irene_core.errors import IreneError
from irene_core.tree import TreeRecord


@dataclass(frozen=True)
class ReplayResult:
    """What replaying one node gave: how many calls ran, in what wall time (s)."""

    calls: int
    seconds: float

    @property
    def mean_latency(self) -> float:
        return self.seconds / self.calls if self.calls else float("nan")


def check_replay_request(calls: int | None, seconds: float | None) -> None:
    """Raise IreneError unless exactly one of ``calls`` (an integer >= 1) and ``seconds`` (> 0) is given."""
    if (calls is None) == (seconds is None):
        raise IreneError("replay: give exactly one of calls or seconds (calls=N or seconds=T)")
    if calls is not None and (isinstance(calls, bool) or not isinstance(calls, int) or calls < 1):
        raise IreneError(f"replay: calls must be an integer >= 1, got {calls!r} (calls and seconds must be positive)")
    if seconds is not None and not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise IreneError(f"replay: seconds must be a finite number > 0, got {seconds!r} (calls and seconds must be positive)")


def timed_replay(
    step: Callable[[], Any],
    sync: Callable[[], None],
    calls: int | None,
    seconds: float | None,
    around: AbstractContextManager | None = None,
) -> ReplayResult:
    """The timing loop of :meth:`TracedModel.replay` for framework plugins: ``step`` ``calls`` times,
    or until ``seconds`` have passed, between two ``sync`` calls (waits for queued device work),
    with ``around`` entered right before the first timed call and exited right after the last."""
    check_replay_request(calls, seconds)
    sync()
    with around if around is not None else contextlib.nullcontext():
        start = time.perf_counter()
        done = 0
        deadline = start + (seconds or 0.0)
        while True:
            step()
            done += 1
            if done == calls or (seconds is not None and time.perf_counter() >= deadline):
                break
        sync()
        elapsed = time.perf_counter() - start
    return ReplayResult(calls=done, seconds=elapsed)


class TracedModel(ABC):
    """A model traced at one input size: its tree, and the captured inputs to replay any node.

    ``record`` has the five model features (:data:`irene_core.tree.MODEL_FEATURES`) on every node;
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
        around: AbstractContextManager | None = None,
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
