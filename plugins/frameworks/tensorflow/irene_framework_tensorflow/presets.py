"""The paper's architectures as KerasHub backbones from explicit hyperparameters: random weights, no download.

Names match the torch tracer's presets.  ``openai-gpt`` is missing: KerasHub has no GPT-1 backbone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_BASE = {"num_heads": 12, "hidden_dim": 768, "intermediate_dim": 3072, "dropout": 0.1}


@dataclass(frozen=True)
class Preset:
    """A KerasHub backbone class (in ``keras_hub.models``) and its constructor arguments."""

    backbone: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def vocabulary_size(self) -> int:
        return int(self.kwargs["vocabulary_size"])


def _bert(layers: int, hidden: int) -> Preset:
    return Preset(
        "BertBackbone",
        {"vocabulary_size": 30522, "num_layers": layers, "num_heads": hidden // 64, "hidden_dim": hidden,
         "intermediate_dim": 4 * hidden, "dropout": 0.1, "max_sequence_length": 512, "num_segments": 2},
    )


PAPER_PRESETS: dict[str, Preset] = {
    "bert-base-uncased": _bert(12, 768),
    "distilbert-base-uncased": Preset(
        "DistilBertBackbone", {"vocabulary_size": 30522, "num_layers": 6, "max_sequence_length": 512, **_BASE}
    ),
    "roberta-base": Preset(
        "RobertaBackbone", {"vocabulary_size": 50265, "num_layers": 12, "max_sequence_length": 512, **_BASE}
    ),
    "gpt2": Preset("GPT2Backbone", {"vocabulary_size": 50257, "num_layers": 12, "max_sequence_length": 1024, **_BASE}),
    "distilgpt2": Preset(
        "GPT2Backbone", {"vocabulary_size": 50257, "num_layers": 6, "max_sequence_length": 1024, **_BASE}
    ),
}
#: The 24 BERT miniatures of Turc et al.: H/64 heads, intermediate 4H (also under their hub ids).
MINIATURES = [(n, h) for n in (2, 4, 6, 8, 10, 12) for h in (128, 256, 512, 768)]
MINIATURE_PATTERN = "bert-L{2,4,6,8,10,12}-H{128,256,512,768}"
PRESETS: dict[str, Preset] = {**PAPER_PRESETS, **{f"bert-L{n}-H{h}": _bert(n, h) for n, h in MINIATURES}}
ALIASES = {f"google/bert_uncased_L-{n}_H-{h}_A-{h // 64}": f"bert-L{n}-H{h}" for n, h in MINIATURES}


def build_preset(name: str, meta: bool = False) -> Any:
    """A freshly built ``keras_hub.models.<Backbone>`` with random weights (imports Keras); with
    ``meta`` the weights are declared but never initialised or allocated (for tracing only)."""
    from irene_framework_tensorflow.keras_runtime import import_keras

    _, keras = import_keras()
    import keras_hub

    preset = PRESETS[ALIASES.get(name, name)]
    backbone = getattr(keras_hub.models, preset.backbone)
    if not meta:
        return backbone(**preset.kwargs)
    with keras.StatelessScope(initialize_variables=False):
        return backbone(**preset.kwargs)
