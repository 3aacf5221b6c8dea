"""The per-primitive regressor contract (kind ``primitive``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np


class PrimitiveRegressor(Protocol):
    """scikit-learn style: ``fit``/``predict`` on a feature matrix, plain constructor parameters,
    and a JSON/array state for artifacts (never pickled)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> PrimitiveRegressor: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def get_state(self) -> dict[str, Any]: ...

    def set_state(self, state: dict[str, Any]) -> PrimitiveRegressor: ...


@dataclass(frozen=True)
class RegressorSpec:
    """A regressor for one primitive type, as contributed by a plugin."""

    kind: ClassVar[str] = "primitive"
    name: str
    factory: Callable[[], PrimitiveRegressor]
    aliases: tuple[str, ...] = ()
    description: str = ""
    replaces: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
