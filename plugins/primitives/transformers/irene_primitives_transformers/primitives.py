"""The ML primitives of transformer models: canonical names, the leaf types that share them,
and which cost nothing in inference.

Names follow the PyTorch tracer (module class names, functional ops ``MatMul``/``Softmax``…) and the
paper's data (transformers 4.2.2); aliases cover other spellings (``bmm``, transformers' GELU
classes, the torch dropout variants).  Every name here gets its own regressor, trained on that
primitive's leaves.  ``computes_as`` names a primitive that performs the same computation
(``Conv1D`` → ``Linear``): without training leaves of its own, a primitive is predicted as that
one; with neither, by the generic regressor (marked extrapolated) until data for it exists.
``suffixes`` name a primitive in model families this list never names: transformers gives each family
its own class (``OlmoeRMSNorm``, ``GPTNeoXRotaryEmbedding``, ``OPTLearnedPositionalEmbedding``,
``BloomGelu``), and the longest ending, case aside, says which primitive it is.
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
    suffixes: tuple[str, ...] = ()


PRIMITIVES: tuple[Primitive, ...] = (
    Primitive("Linear", ("linear",), "dense layer x·Wᵀ + b", suffixes=("Linear",)),
    Primitive(
        "Conv1D",
        (),
        "transformers' GPT-2 Conv1D: a dense layer with transposed weights",
        computes_as="Linear",
    ),
    Primitive("LayerNorm", ("layer_norm",), "layer normalisation", suffixes=("LayerNorm",)),
    Primitive(
        "RMSNorm",
        ("rms_norm", "T5LayerNorm"),  # T5's layer norm is a root-mean-square one
        "root-mean-square normalisation",
        suffixes=("RMSNorm",),
    ),
    Primitive(
        "RotaryEmbedding",
        (),
        "rotary position embedding: the cos/sin tables of the positions",
        suffixes=("RotaryEmbedding",),
    ),
    Primitive("KVCacheUpdate", (), "writes one step's keys and values into the KV cache (prefill, decode)"),
    Primitive("Embedding", (), "table lookup (learnt positions; gemma's scaled by √hidden)", suffixes=("Embedding",)),
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
        (),
        "GELU activations (exact and tanh approximations)",
        suffixes=("GELU", "GELUActivation", "GELUTanh"),
    ),
    Primitive("ReLU", ("relu",), "ReLU activation"),
    Primitive("SiLU", ("Swish",), "SiLU / swish activation", suffixes=("SiLU", "SiLUActivation")),
    Primitive("Sigmoid", ("sigmoid",), "sigmoid activation"),
    Primitive(
        "Dropout",
        ("Dropout1d", "Dropout2d", "Dropout3d"),
        "identity in inference (no kernel runs): its dispatch only",
        free_in_inference=True,
        suffixes=("Dropout",),
    ),
    Primitive("Identity", (), "no-op: its dispatch only", free_in_inference=True),
)
