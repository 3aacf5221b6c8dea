"""Entry point of this plugin (group ``irene``): one regressor spec per transformer primitive."""

from irene_core import RegressorSpec, hookimpl
from irene_primitives_transformers.primitives import PRIMITIVES
from irene_primitives_transformers.regressors import DispatchEnergyRegressor, trainable_regressor


@hookimpl
def irene_primitive_regressors() -> list[RegressorSpec]:
    return [
        RegressorSpec(
            name=p.name,
            factory=DispatchEnergyRegressor if p.free_in_inference else trainable_regressor,
            aliases=p.aliases,
            description=p.description,
            needs_data=not p.free_in_inference,
            computes_as=p.computes_as,
            suffixes=p.suffixes,
        )
        for p in PRIMITIVES
    ]
