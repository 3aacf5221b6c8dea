"""The per-primitive regressor contract (kind ``primitive``).

A plugin contributes one :class:`RegressorSpec` per primitive type through the
``irene_primitive_regressors`` hook.  The predictor calls ``spec.factory(feature_names, **params)``
to make a fresh regressor for that type, fits it on the type's training leaves and saves its
``get_state()`` (JSON values and numpy arrays, never pickles).  ``params`` comes from the predictor
config (today: ``method="auto"`` or ``"ols"``), plus ``fallback=True`` for the ``generic`` spec's
regressor that predicts kinds without a regressor of their own; a factory should accept and may
ignore them.

A fitted regressor may carry the capability attribute ``scales_with_work`` (absent: False): True when
its estimate is proportional to the node's measured work (time, GPU energy), so that below its
training range it falls with the work by itself, and the predictor keeps its estimate there instead
of its launch-floor rule (:mod:`irene_core.predictor.leaf_models`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:  # numpy only in annotations: the contract loads without it
    import numpy as np


@runtime_checkable
class PrimitiveRegressor(Protocol):
    """scikit-learn style: plain constructor parameters, ``fit``/``predict`` on raw feature rows
    (columns in the order of the ``feature_names`` given to the factory), energies in J."""

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        groups: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> PrimitiveRegressor:
        """Fit on rows ``X`` with energies ``y`` > 0; ``groups`` (model names; the rows' computations
        for the ``fallback``) allow grouped cross-validation of hyperparameters inside the training
        data."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Energies (J, >= 0) for rows ``X``."""

    def get_state(self) -> dict[str, Any]:
        """Everything ``set_state`` needs: JSON values and numpy arrays (nested dicts allowed)."""

    def set_state(self, state: dict[str, Any]) -> PrimitiveRegressor:
        """Restore a fitted regressor from ``get_state()`` output."""


RegressorFactory = Callable[..., PrimitiveRegressor]


@dataclass(frozen=True)
class RegressorSpec:
    """A regressor for one primitive type, as contributed by a plugin.

    ``name`` is the canonical primitive name (``Linear``, ``MatMul``); ``aliases`` are other leaf
    types that share its regressor (``bmm`` → ``MatMul``).  ``replaces=True`` lets a later plugin
    take over a name.  ``needs_data=False`` marks regressors that are usable untrained (Dropout,
    which runs no kernel in inference: 0 J until training measures its dispatch).  ``computes_as``
    names a primitive that performs the same computation (``Conv1D`` → ``Linear``): a predictor
    without training leaves of this one predicts, counts and bounds its leaves as that one's.
    ``suffixes`` are class-name endings that name this primitive in any model family (``RMSNorm``:
    ``OlmoeRMSNorm``, ``GptOssRMSNorm``), matched, case aside, when no name or alias is the leaf
    type; the longest ending wins (``…RotaryEmbedding`` over ``…Embedding``).
    """

    kind: ClassVar[str] = "primitive"
    name: str
    factory: RegressorFactory
    aliases: tuple[str, ...] = ()
    description: str = ""
    replaces: bool = False
    needs_data: bool = True
    computes_as: str | None = None
    suffixes: tuple[str, ...] = ()


def make_regressor(
    factory: RegressorFactory, feature_names: Sequence[str], params: dict[str, Any]
) -> PrimitiveRegressor:
    """Call a factory with the predictor's feature names and regressor parameters."""
    return factory(tuple(feature_names), **params)
