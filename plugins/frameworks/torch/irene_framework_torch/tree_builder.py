"""Build the model tree from one forward pass: module calls, functional ops, work per node.

- Forward pre/post hooks (``with_kwargs=True``: transformers passes most inputs as keywords) on
  every module open and close a node per *call*: scope = the ``named_modules`` path, type = the
  class name.  Containers without a forward of their own (``ModuleList``) are never called, so
  ``encoder.layer.3`` hangs under ``encoder`` as in the paper's trees.  A module called twice
  (ALBERT's shared layer) gives two nodes, ``scope:Type`` and ``scope:Type#2``.
- A TorchFunctionMode turns the functional ops of :mod:`irene_framework_torch.leaf_types` called
  directly inside a non-primitive module into ``ml`` leaves named after that module's scope, and
  charges every torch function call the bytes of the paper's model
  (:mod:`irene_framework_torch.paper_bytes`) to the innermost open node.
- An :class:`~irene_framework_torch.op_counter.OpCounter` charges every aten op (flops, bytes
  moved) to the innermost open node: a primitive leaf owns everything inside it, a module owns its
  *direct* ops.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from irene_core import IreneError, Node, TreeRecord, unique_id
from irene_framework_torch.leaf_types import functional_leaves, is_primitive_module
from irene_framework_torch.op_counter import OpCounter, OpTotals
from irene_framework_torch.paper_bytes import call_bytes
from irene_framework_torch.replay import Capture, InputStore, ReplayTarget, TorchTracedModel
from irene_framework_torch.signature import describe_inputs, signature


@dataclass
class CallNode:
    """One call seen during the traced pass (a module call or a functional op)."""

    scope: str
    type: str
    level: str
    function: Callable[..., Any]
    capture: Capture | None
    num_parameters: int
    own: OpTotals = field(default_factory=OpTotals)
    children: list[CallNode] = field(default_factory=list)
    inputs: str = ""  # what the call was given (shapes, dtypes, plain values): part of its signature
    signature: str | None = None  # set when the call closes, after its children's

    @property
    def is_leaf(self) -> bool:
        return self.level == "ml"

    def walk(self) -> Iterator[CallNode]:
        yield self
        for child in self.children:
            yield from child.walk()


class _FunctionCalls(TorchFunctionMode):
    """Sees every outermost torch function call: opens an ``ml`` node around each functional leaf op
    called inside a non-primitive module, and charges each call's paper-model bytes."""

    def __init__(self, builder: TreeBuilder):
        super().__init__()
        self.builder = builder
        self.names = functional_leaves()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        op = self.names.get(func)
        parent = self.builder.current
        node = None
        if op is not None and parent is not None and not parent.is_leaf:
            node = self.builder.open(parent.scope, op, "ml", func, args, kwargs, num_parameters=0)
        out = func(*args, **kwargs)
        self.builder.sink().mem_bytes += call_bytes(func, args, kwargs, out)
        if node is not None:
            self.builder.close(node)  # not on error: the open nodes then say where the pass failed
        return out


class TreeBuilder:
    """Traces one forward pass of ``model``; ``capture`` keeps every node's inputs for replay."""

    def __init__(self, model: nn.Module, capture: bool):
        self.model = model
        self.store = InputStore() if capture else None
        self.root: CallNode | None = None
        self._stack: list[CallNode] = []
        self._hooked: list[CallNode | None] = []
        self._outside = OpTotals()
        self._scopes = {module: name for name, module in model.named_modules()}
        self._params = {module: sum(p.numel() for p in module.parameters()) for module in self._scopes}

    @property
    def current(self) -> CallNode | None:
        return self._stack[-1] if self._stack else None

    def sink(self) -> OpTotals:
        """The totals of the node running now (work outside the root goes nowhere)."""
        return self._stack[-1].own if self._stack else self._outside

    def open(
        self, scope: str, type_: str, level: str, function: Callable[..., Any],
        args: tuple[Any, ...], kwargs: dict[str, Any], num_parameters: int,
    ) -> CallNode:
        capture = self.store.capture(args, kwargs) if self.store is not None else None
        node = CallNode(scope, type_, level, function, capture, num_parameters, inputs=describe_inputs(args, kwargs))
        if self._stack:
            self._stack[-1].children.append(node)
        else:
            self.root = node
        self._stack.append(node)
        return node

    def close(self, node: CallNode) -> None:
        popped = self._stack.pop()
        assert popped is node, f"unbalanced trace: closing {node.scope}:{node.type} inside {popped.scope}:{popped.type}"
        if node.level == "module" and not node.children:
            node.level = "ml"  # a childless custom module is a leaf
        node.signature = signature(node.type, node.level, node.function, node.inputs,
                                   [child.signature or "" for child in node.children])

    def _pre_hook(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        parent = self.current
        if parent is not None and parent.is_leaf:
            self._hooked.append(None)  # inside a primitive: its work, not a node
            return
        if parent is None:
            level = "model"
        elif is_primitive_module(module):
            level = "ml"
        else:
            level = "module"
        scope = self._scopes.get(module)
        if scope is None:  # a module that is not a submodule of the traced model
            scope = f"{parent.scope}.{type(module).__name__}" if parent else ""
        node = self.open(scope, type(module).__name__, level, module, args, kwargs, self._params.get(module, 0))
        self._hooked.append(node)

    def _post_hook(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        node = self._hooked.pop()
        if node is not None:
            self.close(node)

    def run(self, inputs: dict[str, Any]) -> CallNode:
        """One forward pass of the model on ``inputs`` under inference mode; returns the root."""
        handles = []
        for module in self._scopes:
            handles.append(module.register_forward_pre_hook(self._pre_hook, with_kwargs=True))
            handles.append(module.register_forward_hook(self._post_hook, with_kwargs=True))
        before_write = self.store.before_write if self.store is not None else None
        try:
            with torch.inference_mode(), _FunctionCalls(self), OpCounter(self.sink, before_write):
                self.model(**inputs)
        except Exception as exc:
            raise self._failure(exc) from exc
        finally:
            for handle in handles:
                handle.remove()
        assert self.root is not None and not self._stack
        return self.root

    def _failure(self, exc: Exception) -> IreneError:
        """One line: the innermost node that was running, and what went wrong."""
        where = self.current
        at = f" in {where.scope or '(model)'}:{where.type}" if where is not None else ""
        text = str(exc).strip()
        message = text.splitlines()[0] if text else ""
        if isinstance(exc, IreneError):
            return IreneError(f"{message}{at}")
        return IreneError(f"forward pass failed{at}: {type(exc).__name__}: {message}")


def _subtree_totals(node: CallNode, out: dict[int, OpTotals]) -> OpTotals:
    total = OpTotals()
    total.add(node.own)
    for child in node.children:
        total.add(_subtree_totals(child, out))
    out[id(node)] = total
    return total


def to_record(
    root: CallNode, model_name: str, batch_size: int, seq_len: int, device: str, meta: dict[str, Any]
) -> tuple[TreeRecord, dict[str, CallNode], dict[str, OpTotals]]:
    """The tree record (every node with the model features and ``mem_bytes_moved``), node id → call,
    id → subtree work."""
    totals: dict[int, OpTotals] = {}
    _subtree_totals(root, totals)
    taken: set[str] = set()
    calls: dict[str, CallNode] = {}
    work: dict[str, OpTotals] = {}

    def convert(call: CallNode) -> Node:
        node_id = unique_id(call.scope, call.type, taken)
        calls[node_id] = call
        t = work[node_id] = totals[id(call)]
        features = {
            "batch_size": float(batch_size),
            "seq_len": float(seq_len),
            "flops": t.flops / 1e6,
            "mem_bytes": t.mem_bytes / 2**20,
            "mem_bytes_moved": t.bytes_moved / 2**20,
            "num_parameters": float(call.num_parameters),
        }
        node = Node(id=node_id, scope=call.scope, type=call.type, level=call.level, features=features,
                    signature=call.signature)
        node.children = [convert(child) for child in call.children]
        return node

    record = TreeRecord(
        model_name=model_name, batch_size=batch_size, seq_len=seq_len, device=device, meta=meta, root=convert(root)
    )
    record.check()
    return record, calls, work


def trace_module(
    model: nn.Module,
    inputs: dict[str, Any],
    *,
    model_name: str,
    batch_size: int,
    seq_len: int,
    device: torch.device,
    meta: bool = False,
    run_meta: dict[str, Any] | None = None,
) -> TorchTracedModel:
    """Trace ``model(**inputs)`` (any ``nn.Module``) into a replayable tree.

    ``meta=True`` means the model and inputs live on the meta device: no capture, no replay.
    """
    root = TreeBuilder(model, capture=not meta).run(inputs)
    record, calls, work = to_record(root, model_name, batch_size, seq_len, str(device), run_meta or {})
    targets = None if meta else {i: ReplayTarget(c.function, c.capture) for i, c in calls.items() if c.capture}
    return TorchTracedModel(record, targets, work, model, device)
