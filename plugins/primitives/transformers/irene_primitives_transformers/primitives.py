"""The ML primitives of transformer models: canonical names, the leaf types that share them,
and which cost nothing in inference.

Names follow the PyTorch tracer (module class names, functional ops ``MatMul``/``Softmax``…) and the
paper's data (transformers 4.2.2); aliases cover other spellings (``bmm``, transformers' GELU
classes, the torch dropout variants).  Every name here gets its own regressor, trained on that
primitive's leaves; a primitive with no training leaves is predicted by the generic regressor
(with a warning) until data for it exists.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Primitive:
    name: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    free_in_inference: bool = False


PRIMITIVES: tuple[Primitive, ...] = (
    Primitive("Linear", ("linear", "NonDynamicallyQuantizableLinear"), "dense layer x·Wᵀ + b"),
    Primitive("Conv1D", (), "transformers' GPT-2 Conv1D: a dense layer with transposed weights"),
    Primitive("LayerNorm", ("layernorm", "layer_norm", "FusedLayerNorm", "BertLayerNorm"), "layer normalisation"),
    Primitive("RMSNorm", ("rms_norm", "LlamaRMSNorm", "T5LayerNorm"), "root-mean-square normalisation"),
    Primitive("Embedding", ("embedding",), "table lookup"),
    Primitive(
        "MatMul",
        ("matmul", "bmm", "BMM", "mm", "baddbmm", "addmm"),
        "functional matrix product (attention scores, context)",
    ),
    Primitive("Einsum", ("einsum",), "functional einsum"),
    Primitive("Softmax", ("softmax",), "softmax"),
    Primitive("ScaledDotProductAttention", ("scaled_dot_product_attention", "SDPA"), "fused attention kernel"),
    Primitive("Tanh", ("tanh",), "tanh activation"),
    Primitive(
        "GELU",
        (
            "gelu",
            "GELUActivation",
            "NewGELUActivation",
            "FastGELUActivation",
            "QuickGELUActivation",
            "GELUTanh",
            "PytorchGELUTanh",
            "AccurateGELUActivation",
        ),
        "GELU activations (exact and tanh approximations)",
    ),
    Primitive("ReLU", ("relu",), "ReLU activation"),
    Primitive("SiLU", ("silu", "SiLUActivation", "Swish"), "SiLU / swish activation"),
    Primitive("Sigmoid", ("sigmoid",), "sigmoid activation"),
    Primitive(
        "Dropout",
        ("dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "StableDropout"),
        "identity in inference (no kernel runs): 0 J",
        free_in_inference=True,
    ),
    Primitive("Identity", (), "no-op: 0 J", free_in_inference=True),
)
