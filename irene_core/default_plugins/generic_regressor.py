"""Core's ``generic`` primitive regressor: the fallback for leaf types no plugin knows and for
primitives with too few training leaves (see :mod:`irene_core.predictor.leaf_models`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from irene_core.hookspecs import hookimpl
from irene_core.plugins import GENERIC

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    from irene_core.predictor.leaf_regressor import LeafRegressor
    from irene_core.predictor.regressor import RegressorSpec


def leaf_regressor(feature_names: Sequence[str], **params: Any) -> LeafRegressor:
    """A fresh :class:`~irene_core.predictor.leaf_regressor.LeafRegressor` (imported here: numpy)."""
    from irene_core.predictor.leaf_regressor import LeafRegressor

    return LeafRegressor(feature_names, **params)


@hookimpl
def irene_primitive_regressors() -> list[RegressorSpec]:
    from irene_core.predictor.regressor import RegressorSpec

    return [
        RegressorSpec(
            name=GENERIC,
            factory=leaf_regressor,
            description="core's LeafRegressor, fitted on every training leaf of every type",
        )
    ]
