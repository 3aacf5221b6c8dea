"""Trace a ``keras.Model`` at one (batch, seq): the model tree with model features, and node replay.

One ``tf.function`` trace of the forward pass gives the structure and, from the static shapes of the
graph ops, the features (no kernel runs for that); one run of the traced graph then captures every
layer call's real inputs for replay (skipped with ``meta=True``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from irene_core import IreneError, ReplayResult, TracedModel, TreeRecord
from irene_framework_tensorflow.call_recorder import CallRecorder, LayerCall
from irene_framework_tensorflow.keras_runtime import import_keras, tf_device
from irene_framework_tensorflow.layer_scopes import layer_scopes
from irene_framework_tensorflow.model_inputs import random_inputs
from irene_framework_tensorflow.replay import device_sync, layer_step, op_step, run_replay
from irene_framework_tensorflow.tree_builder import BuiltTree, TreeBuilder, distinct_tensors

#: Inputs for a model: given as is, or made by a function of (batch_size, seq_len).
Inputs = Any | Callable[[int, int], Any]


class KerasTracedModel(TracedModel):
    """A Keras model traced at one input size; replays any node of :attr:`record` alone."""

    def __init__(self, record: TreeRecord, model: Any, built: BuiltTree, device: str, captured: bool):
        self.record = record
        self.model = model
        self.device = device
        self._targets = built.targets
        self._captured = captured
        self._steps: dict[str, Callable[[], Any]] = {}

    def _step(self, node_id: str) -> Callable[[], Any]:
        if node_id not in self._targets:
            raise IreneError(f"replay: no node '{node_id}' in the tree of '{self.record.model_name}'")
        if not self._captured:
            raise IreneError(f"replay: '{self.record.model_name}' was traced with meta=True: no inputs to replay")
        step = self._steps.get(node_id)
        if step is None:
            target = self._targets[node_id]
            if isinstance(target, LayerCall):
                step = layer_step(target.layer, target.args, target.kwargs, self.device)
            else:
                step = op_step(target, self.device)
            self._steps[node_id] = step
        return step

    def replay(
        self,
        node_id: str,
        *,
        calls: int | None = None,
        seconds: float | None = None,
        around: AbstractContextManager | None = None,
    ) -> ReplayResult:
        """Run node ``node_id`` alone ``calls`` times or for ``seconds`` under ``tf.function``."""
        return run_replay(self._step(node_id), calls, seconds, device_sync(self.device), around)

    def output(self, node_id: str) -> Any:
        """Run node ``node_id`` once as replay runs it and return what it returns."""
        return self._step(node_id)()


def _check_size(batch_size: int, seq_len: int) -> None:
    for flag, value in (("--batch-size", batch_size), ("--seq-len", seq_len)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise IreneError(f"{flag}: expected a positive integer, got {value!r}")


def _model_inputs(model: Any, batch_size: int, seq_len: int, inputs: Inputs | None, vocabulary_size: int | None) -> Any:
    if inputs is None:
        return random_inputs(model, batch_size, seq_len, vocabulary_size)
    return inputs(batch_size, seq_len) if callable(inputs) else inputs


def _build(model: Any, x: Any, meta: bool) -> None:
    """Create a lazily built model's weights outside the traced graph: by calling it eagerly, or
    with ``meta`` symbolically (no forward pass)."""
    import keras
    import tensorflow as tf

    if meta:
        model(tf.nest.map_structure(lambda t: keras.KerasTensor(t.shape, t.dtype), x), training=False)
    else:
        model(x, training=False)


def _record_calls(model: Any, x: Any, meta: bool) -> tuple[LayerCall, Any, list[Any]]:
    """Trace ``model(x)`` into a graph; the root call, the concrete function and the tensors it returns
    (every distinct tensor some layer call received).  With ``meta`` the weights enter the graph as
    placeholders, so uninitialised (never allocated) weights are fine."""
    import keras
    import tensorflow as tf

    recorder = CallRecorder(model._flatten_layers(include_self=True, recursive=True))
    variables = list(model.variables) if meta else []
    returned: list[Any] = []

    def forward(inputs: Any, values: list[Any]) -> list[Any]:
        weights = (
            keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True)), initialize_variables=False)
            if meta else contextlib.nullcontext()
        )
        with recorder, weights:
            model(inputs, training=False)
        returned[:] = list(distinct_tensors([(c.args, c.kwargs) for c in _all_calls(recorder.calls)]))
        return returned

    specs = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), x)
    weight_specs = [tf.TensorSpec(v.shape, v.dtype) for v in variables]
    concrete = tf.function(forward).get_concrete_function(specs, weight_specs)
    if len(recorder.calls) != 1:
        raise IreneError(
            f"model '{model.name}': expected one call of the model while tracing, saw {len(recorder.calls)}"
        )
    return recorder.calls[0], concrete, returned


def _all_calls(calls: list[LayerCall]) -> list[LayerCall]:
    out: list[LayerCall] = []
    stack = list(reversed(calls))
    while stack:
        call = stack.pop()
        out.append(call)
        stack.extend(reversed(call.calls()))
    return out


def _capture_inputs(root: LayerCall, concrete: Any, x: Any, graph_tensors: list[Any]) -> None:
    """Run the traced graph once and swap each call's graph tensors for their values."""
    import tensorflow as tf

    values = {id(t): v for t, v in zip(graph_tensors, concrete(x, []), strict=True)}
    for call in _all_calls([root]):
        call.args, call.kwargs = tf.nest.map_structure(lambda v: values.get(id(v), v), (call.args, call.kwargs))


def trace_keras_model(
    model: Any,
    batch_size: int,
    seq_len: int,
    *,
    name: str | None = None,
    inputs: Inputs | None = None,
    vocabulary_size: int | None = None,
    device: str = "cpu",
    meta: bool = False,
    source: str = "object",
) -> KerasTracedModel:
    """Trace ``model`` at (batch_size, seq_len).

    ``inputs``: the model's inputs, or a function (batch_size, seq_len) → inputs; by default random
    inputs in the structure of ``model.input`` (see :mod:`model_inputs`).  ``meta=True`` computes the
    tree and features only: no forward pass runs, weights that were never initialised (a preset built
    with ``meta``) stay unallocated, and replay is unavailable.  ``source`` (preset, file, object) is
    recorded in the record's meta.
    """
    tf, keras = import_keras()
    if not isinstance(model, keras.Model):
        raise IreneError(f"framework 'tensorflow': expected a keras.Model, got {type(model).__name__}")
    _check_size(batch_size, seq_len)
    tf_name = tf_device(device)
    with tf.device(tf_name):
        x = _model_inputs(model, batch_size, seq_len, inputs, vocabulary_size)
        if not model.built:
            _build(model, x, meta)
        root_call, concrete, graph_tensors = _record_calls(model, x, meta)
        ops = concrete.graph.get_operations()
        built = TreeBuilder(ops, layer_scopes(model), batch_size, seq_len).build(root_call)
        if not meta:
            _capture_inputs(root_call, concrete, x, graph_tensors)
    record = TreeRecord(
        model_name=name or model.name,
        batch_size=batch_size,
        seq_len=seq_len,
        device=device,
        attention="eager",
        meta={
            "framework": "tensorflow",
            "traced_on": "meta" if meta else tf_name,
            "model_class": type(model).__name__,
            "model_source": source,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "keras_classes": built.keras_classes,
        },
        root=built.root,
    )
    record.check()
    return KerasTracedModel(record, model, built, tf_name, captured=not meta)
