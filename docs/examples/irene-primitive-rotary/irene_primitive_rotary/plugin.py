"""Entry point (group ``irene``): contributes the regressor for the rotary-embedding primitive."""

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
        )
    ]
