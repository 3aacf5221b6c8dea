"""The one table that maps Keras primitive layers onto the primitive (regressor) names of the torch tracer.

An ML leaf of a Keras tree gets the torch name where the math is the same, so the per-primitive
regressors, the viz and the evaluation treat both frameworks' trees alike; a primitive that is not in
the table keeps its Keras class name.  ``docs/tensorflow-tracer.md`` shows this table.
"""

from __future__ import annotations

from typing import Any

#: Keras layer class → regressor name (the torch module class or functional-op name).
KERAS_TO_REGRESSOR: dict[str, str] = {
    "Dense": "Linear",  # its activation, if any, is fused into the leaf
    "EinsumDense": "Linear",  # per-head q/k/v and output projections of MultiHeadAttention
    "LayerNormalization": "LayerNorm",
    "RMSNormalization": "RMSNorm",
    "Embedding": "Embedding",
    "ReversibleEmbedding": "Embedding",  # KerasHub: token embedding (tied output projection unused)
    "PositionEmbedding": "Embedding",  # KerasHub: learned positions
    "Softmax": "Softmax",
    "Dropout": "Dropout",
    "ReLU": "ReLU",
    "Conv1D": "Conv1d",
    "Conv2D": "Conv2d",
}

#: ``keras.layers.Activation(fn)`` → regressor name, by the function's name.
ACTIVATION_TO_REGRESSOR: dict[str, str] = {
    "tanh": "Tanh",
    "gelu": "GELUActivation",
    "relu": "ReLU",
    "sigmoid": "Sigmoid",
    "silu": "SiLU",
    "softmax": "Softmax",
}


def primitive_name(layer: Any) -> str:
    """The ML-leaf type of a primitive Keras layer."""
    cls = type(layer).__name__
    if cls == "Activation":
        fn = getattr(getattr(layer, "activation", None), "__name__", "")
        return ACTIVATION_TO_REGRESSOR.get(fn, cls)
    return KERAS_TO_REGRESSOR.get(cls, cls)
