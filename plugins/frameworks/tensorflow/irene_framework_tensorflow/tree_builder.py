"""Where the Keras model tree is built: recorded layer calls + graph ops → :class:`irene_core.tree.schema.Node`.

- The model's call is the root (level ``model``, type = model class).
- A call of a layer that tracks sublayers is a ``module`` node; a call of a layer without sublayers is
  an ``ml`` leaf (type from :mod:`primitive_names`) that owns every op it runs.
- Matrix products and softmaxes a non-primitive layer runs itself become ``ml`` leaves named after it
  (``transformer_layer_0.self_attention_layer:MatMul``), in the order they ran.
- A layer with sublayers that made no node below it is a leaf too (as on the torch side).
- Features on every node: ``batch_size``, ``seq_len``, ``flops`` (MFLOPs) and ``mem_bytes_moved`` (MiB
  read plus written) of every op the node runs, its own and its children's (:mod:`op_costs`);
  ``mem_bytes`` (MiB) by the paper's byte model (:mod:`paper_bytes`: primitive layers as their torch
  op, other ops one by one); ``num_parameters`` (all weights of the layer; 0 for functional ops).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from irene_core import Level, Node, unique_id
from irene_framework_tensorflow.call_recorder import LayerCall, OpSpan
from irene_framework_tensorflow.layer_scopes import child_layers, segment
from irene_framework_tensorflow.op_costs import functional_leaf_type, op_bytes, op_flops
from irene_framework_tensorflow.paper_bytes import layer_mem_bytes, op_mem_bytes
from irene_framework_tensorflow.primitive_names import primitive_name

MIB = float(2**20)


@dataclass
class BuiltTree:
    """The tree, and for every node id what replays it: a :class:`LayerCall` or a graph op."""

    root: Node
    targets: dict[str, Any] = field(default_factory=dict)
    keras_classes: dict[str, str] = field(default_factory=dict)  # leaf id → Keras class, where renamed


def distinct_tensors(structure: Any) -> Iterator[Any]:
    """Distinct tensors in a nested structure of arguments or outputs."""
    import tensorflow as tf

    seen: set[int] = set()
    for item in tf.nest.flatten(structure):
        if isinstance(item, tf.Tensor) and id(item) not in seen:
            seen.add(id(item))
            yield item


class TreeBuilder:
    """Builds one tree from a recorded root call (see the module docstring)."""

    def __init__(self, ops: list[Any], scopes: dict[int, str], batch_size: int, seq_len: int):
        self.ops = ops
        self.scopes = scopes
        self.base = {"batch_size": float(batch_size), "seq_len": float(seq_len)}
        self.taken: set[str] = set()
        self.targets: dict[str, Any] = {}
        self.keras_classes: dict[str, str] = {}

    def build(self, root_call: LayerCall) -> BuiltTree:
        root = self._call_node(root_call, "", "model")
        return BuiltTree(root, self.targets, self.keras_classes)

    def _node(self, scope: str, type_: str, level: Level, target: Any) -> Node:
        node_id = unique_id(scope, type_, self.taken)
        self.targets[node_id] = target
        return Node(id=node_id, scope=scope, type=type_, level=level, features=dict(self.base))

    def _scope(self, call: LayerCall, parent_scope: str, siblings: set[str]) -> str:
        known = self.scopes.get(id(call.layer))
        if known is not None:
            return known
        name = segment(call.layer, siblings)  # a layer made inside a call, not tracked by the model
        return f"{parent_scope}.{name}" if parent_scope else name

    def _call_node(self, call: LayerCall, scope: str, level: Level) -> Node:
        if level != "model" and not child_layers(call.layer):
            return self._leaf(call, scope)
        node = self._node(scope, type(call.layer).__name__, level, call)
        own_ops: list[Any] = []
        siblings: set[str] = set()
        for item in call.items:
            if isinstance(item, LayerCall):
                node.children.append(self._call_node(item, self._scope(item, scope, siblings), "module"))
                continue
            for op in self.ops[item.start:item.stop]:
                leaf_type = functional_leaf_type(op)
                if leaf_type is None:
                    own_ops.append(op)
                    continue
                leaf = self._node(scope, leaf_type, "ml", op)
                leaf.features.update(_work([op]), num_parameters=0.0)
                node.children.append(leaf)
        own = _work(own_ops)
        for key in own:
            node.features[key] = own[key] + sum(c.features[key] for c in node.children)
        node.features["num_parameters"] = float(call.layer.count_params())
        if level == "module" and not node.children:
            node.level = "ml"
        return node

    def _leaf(self, call: LayerCall, scope: str) -> Node:
        type_ = primitive_name(call.layer)
        node = self._node(scope, type_, "ml", call)
        ops = list(self._all_ops(call))
        node.features.update(_work(ops), num_parameters=float(call.layer.count_params()))
        as_torch_op = layer_mem_bytes(call.layer, next(distinct_tensors((call.args, call.kwargs)), None), ops)
        if as_torch_op is not None:
            node.features["mem_bytes"] = as_torch_op / MIB
        if type_ != type(call.layer).__name__:
            self.keras_classes[node.id] = type(call.layer).__name__
        return node

    def _all_ops(self, call: LayerCall) -> Iterator[Any]:
        for item in call.items:
            if isinstance(item, OpSpan):
                yield from self.ops[item.start:item.stop]
            else:
                yield from self._all_ops(item)


def _work(ops: Iterable[Any]) -> dict[str, float]:
    """``flops`` (MFLOPs), ``mem_bytes`` and ``mem_bytes_moved`` (MiB) of some graph ops."""
    ops = list(ops)
    return {
        "flops": sum(op_flops(op) for op in ops) / 1e6,
        "mem_bytes": sum(op_mem_bytes(op) for op in ops) / MIB,
        "mem_bytes_moved": sum(op_bytes(op) for op in ops) / MIB,
    }
