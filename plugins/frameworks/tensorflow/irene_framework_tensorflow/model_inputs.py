"""Random inputs of one (batch, seq) for a Keras model with symbolic inputs (functional / Sequential).

Per input: dimension 0 is the batch, dimension 1 (when the model leaves it open) the sequence; other
dimensions must be fixed.  Integer inputs named like masks get ones, segment/type ids zeros, other
integer inputs token ids below the vocabulary size (the smallest ``input_dim`` of the model's embedding
layers when not given); float inputs standard-normal values; boolean inputs ``True``.
"""

from __future__ import annotations

from typing import Any

from irene_core import IreneError


def symbolic_inputs(model: Any) -> Any:
    """The model's symbolic input structure, or a one-line error for models that have none."""
    try:
        return model.input
    except (AttributeError, ValueError):
        raise IreneError(
            f"model '{model.name}' ({type(model).__name__}) has no symbolic inputs (a subclassed keras.Model): "
            "pass inputs=..., a function (batch_size, seq_len) -> the model's inputs"
        ) from None


def smallest_vocabulary(model: Any) -> int:
    """The smallest ``input_dim`` among the model's embedding layers (2 if it has none)."""
    dims = [layer.input_dim for layer in model._flatten_layers() if isinstance(getattr(layer, "input_dim", None), int)]
    return min(dims, default=2)


def _shape(spec: Any, batch_size: int, seq_len: int, label: str) -> list[int]:
    dims = list(spec.shape)
    if not dims:
        raise IreneError(f"model input '{label}' is a scalar: it has no batch dimension")
    dims[0] = batch_size
    if len(dims) > 1:
        if dims[1] is None:
            dims[1] = seq_len
        elif dims[1] != seq_len:
            raise IreneError(f"model input '{label}' has a fixed sequence length {dims[1]}, not --seq-len {seq_len}")
    if any(d is None for d in dims):
        raise IreneError(f"model input '{label}' has open dimensions beyond (batch, seq): {tuple(spec.shape)}")
    return dims


def random_inputs(model: Any, batch_size: int, seq_len: int, vocabulary_size: int | None = None, seed: int = 0) -> Any:
    """Concrete random tensors in the structure of ``model.input``."""
    from irene_framework_tensorflow.keras_runtime import import_keras

    tf, keras = import_keras()
    structure = symbolic_inputs(model)
    vocab = vocabulary_size or smallest_vocabulary(model)
    rng = tf.random.Generator.from_seed(seed)

    def make(spec: Any) -> Any:
        label = getattr(spec, "name", "input")
        shape = _shape(spec, batch_size, seq_len, label)
        dtype = tf.as_dtype(keras.backend.standardize_dtype(spec.dtype))
        lowered = label.lower()
        if dtype.is_bool:
            return tf.ones(shape, tf.bool)
        if dtype.is_floating:
            return rng.normal(shape, dtype=dtype)
        if "mask" in lowered:
            return tf.ones(shape, dtype)
        if "segment" in lowered or "type" in lowered:
            return tf.zeros(shape, dtype)
        return tf.cast(rng.uniform(shape, minval=0, maxval=vocab, dtype=tf.int64), dtype)

    return tf.nest.map_structure(make, structure)
