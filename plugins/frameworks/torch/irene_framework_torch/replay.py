"""Captured inputs of every node, and replaying one node alone (the unit ``irene run`` measures).

Inputs are captured by reference during the traced pass (no copy); an in-place op that is about
to write a captured tensor's storage makes the store swap in a clone first, so every node
replays on exactly the values it saw.  A node whose inputs were written in place during the pass
may write them again when replayed, so it is replayed on fresh copies of its tensor inputs at
each call (the copy is part of the timed call; transformers models do not write their inputs).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._pytree import TreeSpec, tree_flatten, tree_unflatten

from irene_core import IreneError, ReplayResult, TracedModel, TreeRecord
from irene_core.plugin_api import timed_replay
from irene_framework_torch.op_counter import OpTotals


@dataclass
class Capture:
    """The (args, kwargs) of one call, flattened so that single tensors can be swapped."""

    leaves: list[Any]
    spec: TreeSpec
    written: bool = False

    def arguments(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        args, kwargs = tree_unflatten(self.leaves, self.spec)
        return tuple(args), dict(kwargs)

    def fresh_arguments(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Like :meth:`arguments`, with every tensor copied."""
        leaves = [x.clone() if isinstance(x, torch.Tensor) else x for x in self.leaves]
        args, kwargs = tree_unflatten(leaves, self.spec)
        return tuple(args), dict(kwargs)


def _storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


class InputStore:
    """Captures call inputs and protects them from later in-place writes (copy on write)."""

    def __init__(self) -> None:
        self._by_storage: dict[int, list[tuple[Capture, int]]] = {}

    def capture(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Capture:
        leaves, spec = tree_flatten((tuple(args), dict(kwargs)))
        captured = Capture(leaves, spec)
        for i, leaf in enumerate(leaves):
            if isinstance(leaf, torch.Tensor):
                self._by_storage.setdefault(_storage_key(leaf), []).append((captured, i))
        return captured

    def before_write(self, tensor: torch.Tensor) -> None:
        """Called before ``tensor`` is written in place: captured aliases of its storage get clones."""
        entries = self._by_storage.pop(_storage_key(tensor), None)
        clones: dict[int, torch.Tensor] = {}
        for captured, i in entries or ():
            captured.written = True
            original = captured.leaves[i]
            if id(original) not in clones:
                clones[id(original)] = original.clone()
            captured.leaves[i] = clones[id(original)]


@dataclass
class ReplayTarget:
    """What to call to re-run one node: a module or a torch function, and its captured inputs."""

    function: Callable[..., Any]
    capture: Capture


class TorchTracedModel(TracedModel):
    """A traced torch model: its tree (``record``) and a replay for every node.

    ``op_totals`` maps node ids to the work of their subtree (matmul and other flops, mem_bytes, bytes moved);
    ``model`` is the traced ``nn.Module``.
    """

    def __init__(
        self,
        record: TreeRecord,
        targets: dict[str, ReplayTarget] | None,
        op_totals: dict[str, OpTotals],
        model: torch.nn.Module,
        device: torch.device,
    ):
        self.record = record
        self.op_totals = op_totals
        self.model = model
        self.device = device
        self._targets = targets
        self._runners: dict[str, Callable[[], Any]] = {}

    def _runner(self, node_id: str) -> Callable[[], Any]:
        runner = self._runners.get(node_id)
        if runner is not None:
            return runner
        if self._targets is None:
            raise IreneError(
                f"{self.record.model_name}: traced with meta=True (structure and model features only, no "
                "tensors); trace without --meta to replay nodes"
            )
        target = self._targets.get(node_id)
        if target is None:
            raise IreneError(f"no node '{node_id}' in the traced tree of {self.record.model_name}")
        capture, function = target.capture, target.function
        if capture.written:
            def runner() -> Any:
                args, kwargs = capture.fresh_arguments()
                return function(*args, **kwargs)
        else:
            args, kwargs = capture.arguments()
            runner = functools.partial(function, *args, **kwargs)
        self._runners[node_id] = runner
        return runner

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def output(self, node_id: str) -> Any:
        """Run node ``node_id`` once on its captured inputs and return what it returns."""
        with torch.inference_mode():
            return self._runner(node_id)()

    def replay(
        self,
        node_id: str,
        *,
        calls: int | None = None,
        seconds: float | None = None,
        around: AbstractContextManager | None = None,
    ) -> ReplayResult:
        """Run node ``node_id`` alone on its captured inputs ``calls`` times, or for ``seconds``."""
        run = self._runner(node_id)
        with torch.inference_mode():
            return timed_replay(run, self._sync, calls, seconds, around)
