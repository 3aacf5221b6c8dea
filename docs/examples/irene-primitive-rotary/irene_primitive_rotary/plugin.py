"""Entry point (group ``irene``): contributes the regressor for the rotary-embedding primitive.

``irene-primitives-transformers`` already names ``RotaryEmbedding`` (with the generic trainable
regressor): ``replaces=True`` takes the name over, with its aliases, whatever the load order."""

from irene_core import RegressorSpec, hookimpl
from irene_primitive_rotary.regressor import PowerLawRegressor


@hookimpl
def irene_primitive_regressors():
    return [
        RegressorSpec(
            name="RotaryEmbedding",
            factory=PowerLawRegressor,
            aliases=("LlamaRotaryEmbedding", "MistralRotaryEmbedding"),
            description="power law in flops and bytes",
            replaces=True,
        )
    ]
