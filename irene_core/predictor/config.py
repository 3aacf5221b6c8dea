"""Predictor settings: plain parameters, the ``paper`` preset, and JSON config files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from irene_core.errors import IreneError, validation_message
from irene_core.predictor.artifacts import read_json


class PredictorConfig(BaseModel):
    """Everything that defines how a predictor is trained (see docs/predictor.md)."""

    model_config = ConfigDict(extra="forbid")

    features: Literal["all", "model", "no-gpu-energy", "resource"] = Field("all", description="feature set")
    aggregator: Literal["own-ops", "predicted-sum", "unstructured", "end2end", "stepwise", "log-ridge"] = "own-ops"
    leaf_method: Literal["auto", "ols"] = Field("auto", description="per-primitive regressor: ours or the paper's OLS")
    bytes_feature: Literal["mem_bytes_moved", "mem_bytes"] = Field(
        "mem_bytes_moved",
        description="byte feature: the bytes kernels move (one count for every primitive), or the paper's byte model",
    )
    exclude_features: list[str] = Field(default_factory=list, description="features of the set not to use")
    reconcile: Literal["qp", "max", "none"] = Field(
        "qp", description="how the output tree is made to add up ('none': raw estimates, trees need not add up)"
    )
    below_range: Literal["floor", "regressor"] = Field(
        "floor",
        description="leaves below their kind's training range: the device's launch floor plus their edge's "
        "energy above it scaled with the work, or as the leaf regressor says",
    )
    min_rows: int = Field(10, ge=2, description="primitive types with fewer training leaves use the generic regressor")
    own_ops_alphas: list[float] = Field(default_factory=lambda: [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1e3], min_length=1)
    own_ops_anchor: bool = Field(
        True,
        description="own-ops: offer anchors for the factor, the physical wall-energy model and at the root a "
        "direct log-linear fit (chosen per level by CV)",
    )
    tau: float = Field(10.0, gt=0, description="end2end/stepwise: α = 1 + tanh(w·φ + b)/τ")
    degree: int = Field(3, ge=1, le=3, description="end2end/stepwise: polynomial degree of φ")
    epochs: int = Field(8, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    seed: int = 13370
    hardware: str | None = Field(
        None, description="what the training data was measured on (default: the records' device)"
    )


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # The paper's method: OLS per primitive, end2end weighted sums (tau 10, degree-3 features, Adam
    # lr 1e-3, 8 epochs); like every predictor, its output tree is then made to add up (``qp``).
    "paper": {"aggregator": "end2end", "leaf_method": "ols", "bytes_feature": "mem_bytes", "below_range": "regressor"},
    # The log-ridge baseline of issue 13: every node from its own features, per level; its trees
    # need not add up.  It predicts the leaves itself: the cheapest leaf regressors are fitted.
    "log-ridge": {
        "aggregator": "log-ridge", "leaf_method": "ols", "reconcile": "none", "bytes_feature": "mem_bytes",
        "below_range": "regressor",
    },
}


def load_config(
    source: str | Path | dict[str, Any] | PredictorConfig | None = None, **overrides: Any
) -> PredictorConfig:
    """A config from a preset name (``default``, ``paper``), a JSON file, a dict or a config,
    with ``overrides`` applied.  A file or dict may say ``"preset": "paper"`` and change some
    fields.  Bad input raises IreneError naming the file and field."""
    where = "config"
    if source is None:
        data: dict[str, Any] = {}
    elif isinstance(source, PredictorConfig):
        data = source.model_dump()
    elif isinstance(source, dict):
        data = dict(source)
    elif str(source) in PRESETS:
        data = dict(PRESETS[str(source)])
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise IreneError(f"{path}: no such config file (or use a preset: {', '.join(PRESETS)})")
        data = read_json(path, "not valid JSON")
        if not isinstance(data, dict):
            raise IreneError(f"{path}: a predictor config must be a JSON object")
    preset = data.pop("preset", None)
    if preset is not None:
        if preset not in PRESETS:
            raise IreneError(f"{where}: unknown preset '{preset}' (choose from: {', '.join(PRESETS)})")
        data = {**PRESETS[preset], **data}
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return PredictorConfig(**data)
    except ValidationError as exc:
        raise IreneError(f"{where}: {validation_message(exc)}") from None
