"""The ML primitives of transformer models: canonical names, the leaf types that share them,
and which cost nothing in inference.

Names follow the PyTorch tracer (module class names, functional ops ``MatMul``/``Softmax``…) and the
paper's data (transformers 4.2.2); aliases cover other spellings (``bmm``, transformers' GELU
classes, the torch dropout variants).  Every name here gets its own regressor, trained on that
primitive's leaves.  ``computes_as`` names a primitive that performs the same computation
(``Conv1D`` → ``Linear``): without training leaves of its own, a primitive is predicted as that
one; with neither, by the generic regressor (marked extrapolated) until data for it exists.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Primitive:
    name: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    free_in_inference: bool = False
    computes_as: str | None = None


PRIMITIVES: tuple[Primitive, ...] = (
    Primitive("Linear", ("linear", "NonDynamicallyQuantizableLinear"), "dense layer x·Wᵀ + b"),
    Primitive(
        "Conv1D",
        (),
        "transformers' GPT-2 Conv1D: a dense layer with transposed weights",
        computes_as="Linear",
    ),
    Primitive("LayerNorm", ("layernorm", "layer_norm", "FusedLayerNorm", "BertLayerNorm"), "layer normalisation"),
    Primitive(
        "RMSNorm",
        ("rms_norm", "LlamaRMSNorm", "T5LayerNorm", "Qwen2RMSNorm", "Qwen3RMSNorm", "MistralRMSNorm", "Gemma2RMSNorm",
         "Phi3RMSNorm", "MixtralRMSNorm", "Qwen3MoeRMSNorm"),
        "root-mean-square normalisation",
    ),
    Primitive(
        "RotaryEmbedding",
        ("LlamaRotaryEmbedding", "Qwen2RotaryEmbedding", "Qwen3RotaryEmbedding", "MistralRotaryEmbedding",
         "Gemma2RotaryEmbedding", "Phi3RotaryEmbedding", "MixtralRotaryEmbedding", "Qwen3MoeRotaryEmbedding"),
        "rotary position embedding: the cos/sin tables of the positions",
    ),
    Primitive("KVCacheUpdate", (), "writes one step's keys and values into the KV cache (prefill, decode)"),
    Primitive("Embedding", ("embedding", "Gemma2TextScaledWordEmbedding"), "table lookup (gemma's scaled by √hidden)"),
    Primitive(
        "MatMul",
        ("matmul", "bmm", "BMM", "mm", "baddbmm", "addmm"),
        "functional matrix product (attention scores, context)",
    ),
    Primitive(
        "GroupedMatMul",
        ("grouped_mm", "_grouped_mm"),
        "grouped matrix product: each expert's tokens through its own weights (a mixture-of-experts layer)",
        computes_as="Linear",
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
        "identity in inference (no kernel runs): its dispatch only",
        free_in_inference=True,
    ),
    Primitive("Identity", (), "no-op: its dispatch only", free_in_inference=True),
)
