"""Replay one node alone under ``tf.function``: a layer on its captured inputs, or a functional op
(``MatMul``, ``Softmax``…) on random tensors of its traced shapes and dtypes, N times or for T seconds."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from irene_core import ReplayResult
from irene_core.plugin_api import check_replay_request, timed_replay


def layer_step(layer: Any, args: tuple[Any, ...], kwargs: dict[str, Any], device: str) -> Callable[[], Any]:
    """``layer.call(*args, **kwargs)`` compiled once; tensors are arguments, the rest stays as traced."""
    import tensorflow as tf

    flat = tf.nest.flatten((args, kwargs))
    positions = [i for i, item in enumerate(flat) if isinstance(item, tf.Tensor)]
    with tf.device(device):
        tensors = [tf.identity(flat[i]) for i in positions]

    def run(*values: Any) -> Any:
        items = list(flat)
        for i, value in zip(positions, values, strict=True):
            items[i] = value
        call_args, call_kwargs = tf.nest.pack_sequence_as((args, kwargs), items)
        return layer.call(*call_args, **call_kwargs)

    compiled = tf.function(run)
    return lambda: compiled(*tensors)


def op_step(op: Any, device: str) -> Callable[[], Any]:
    """The graph op ``op`` re-created through ``tf.raw_ops`` on random inputs, compiled once."""
    import tensorflow as tf

    op_def = op.op_def
    inferred = {name for arg in op_def.input_arg for name in (arg.type_attr, arg.number_attr, arg.type_list_attr)}
    attrs = {a.name: op.get_attr(a.name) for a in op_def.attr if a.name not in inferred}
    groups: list[tuple[str, int, bool]] = []  # (argument name, how many inputs, is a list)
    for arg in op_def.input_arg:
        if arg.number_attr:
            groups.append((arg.name, op.get_attr(arg.number_attr), True))
        elif arg.type_list_attr:
            groups.append((arg.name, len(op.get_attr(arg.type_list_attr)), True))
        else:
            groups.append((arg.name, 1, False))
    raw = getattr(tf.raw_ops, op.type)
    with tf.device(device):
        inputs = [_random_like(t.shape.as_list(), t.dtype) for t in op.inputs]

    def run(*values: Any) -> Any:
        kwargs, start = dict(attrs), 0
        for name, count, is_list in groups:
            kwargs[name] = list(values[start:start + count]) if is_list else values[start]
            start += count
        return raw(**kwargs)

    compiled = tf.function(run)
    return lambda: compiled(*inputs)


def _random_like(shape: list[int], dtype: Any) -> Any:
    import tensorflow as tf

    if dtype.is_floating:
        return tf.random.normal(shape, dtype=dtype)
    return tf.zeros(shape, dtype)


def device_sync(device: str) -> Callable[[], None]:
    """What waits until queued work on ``device`` has finished (GPUs run asynchronously; CPU does not)."""
    import tensorflow as tf

    return tf.test.experimental.sync_devices if "GPU" in device.upper() else (lambda: None)


def run_replay(
    step: Callable[[], Any],
    calls: int | None,
    seconds: float | None,
    sync: Callable[[], None],
    around: AbstractContextManager | None = None,
) -> ReplayResult:
    """One untimed warm-up call (compiles), then core's timing loop; every call waits for the
    device, as ``tf.function`` calls return before their GPU work is done."""
    check_replay_request(calls, seconds)
    step()

    def step_and_sync() -> None:
        step()
        sync()

    return timed_replay(step_and_sync, sync, calls, seconds, around)
