"""Pydantic models of the viz API's answers (trees reuse :mod:`irene_core.tree.schema`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from irene_core.tree.per_token import PerToken
from irene_core.tree.schema import FEATURE_UNITS, TreeRecord

Source = Literal["preset", "local", "dataset", "file"]
#: What the errors (predicted vs measured) on a record are. The predictors ship no out-of-fold errors per
#: record (their out-of-fold residuals only size the intervals), so: in-sample (the record's model is in the
#: predictor's training data: the record may have been trained on) or held-out (its model never was).
ErrorBasis = Literal["in-sample", "held-out"]

#: Unit of each energy field and node feature in answers (docs/data-format.md).
UNITS: dict[str, str] = {
    "ground_truth_energy": "J per call (the whole batch)",
    "predicted_energy": "J per call (the whole batch)",
    "predicted_low": "J per call (the whole batch)",
    "predicted_high": "J per call (the whole batch)",
    "energy_above_idle": "J per call (the whole batch)",
    "spread_pct": "%",
    **FEATURE_UNITS,
}


class TreeView(TreeRecord):
    """A tree with where it came from: structure and model features only (``/api/tree``)."""

    source: Source = Field(description="preset: traced by name; local: a model dir in the data dir; dataset: a record")
    dataset: str | None = Field(default=None, description="dataset file (relative to the data dir) for source=dataset")
    node_count: int = Field(description="nodes in the tree, OwnOps pseudo-children included")
    units: dict[str, str] = Field(
        default_factory=lambda: dict(UNITS),
        description="unit of each energy field and node feature: "
        + "; ".join(f"{k}: {v}" for k, v in UNITS.items()),
    )
    per_token: PerToken | None = Field(
        default=None,
        description="per-token figures of one call (irene_core.tree.per_token): decode makes batch_size tokens, "
        "prefill and forward process batch_size × seq_len; J per token from the measured energy, else the predicted",
    )


class EnergyView(TreeView):
    """A tree with predicted energy on every node (J per call) and measured energy where a run has it."""

    predictor: str | None = Field(default=None, description="predictor that made predicted_energy")
    hardware: str | None = Field(default=None, description="the hardware the predicted figures stand for")
    error_basis: ErrorBasis | None = Field(
        default=None,
        description="what the prediction errors of a measured record are: in-sample (its model is in the "
        "predictor's training data, so the record may have been trained on) or held-out (its model is not); "
        "None without measured energy",
    )


Vary = Literal["batch", "seq", "context"]


class SweepPoint(BaseModel):
    """One point of a sweep: the model's energy at one size (J per call for the whole batch)."""

    value: int = Field(description="the varied parameter's value")
    batch_size: int
    seq_len: int
    context_len: int | None = None
    predicted_energy: float | None = Field(description="J per call (the whole batch)")
    predicted_low: float | None = Field(default=None, description="5 % bound of the 90 % interval, J per call")
    predicted_high: float | None = Field(default=None, description="95 % bound of the 90 % interval, J per call")
    extrapolated: bool = False
    energy_j_per_token: float | None = None
    measured_energy: float | None = Field(default=None, description="J per call: the dataset's measured record of "
                                          "this size, when a dataset is given and holds one")
    error: str | None = Field(default=None, description="why this point has no energy (beyond the model's positions…)")


class SweepView(BaseModel):
    """Predicted energy of one model as batch size, sequence length or decode context varies (``/api/sweep``)."""

    model: str
    vary: Vary
    phase: str | None = None
    dtype: str | None = None
    predictor: str | None = None
    hardware: str | None = None
    points: list[SweepPoint]
    units: dict[str, str] = Field(default_factory=lambda: {
        "predicted_energy": UNITS["predicted_energy"], "predicted_low": UNITS["predicted_low"],
        "predicted_high": UNITS["predicted_high"], "energy_j_per_token": "J per token",
        "measured_energy": UNITS["ground_truth_energy"]})


class ModelEntry(BaseModel):
    name: str
    source: Source
    dataset: str | None = None
    sizes: list[tuple[int, int]] = Field(
        default_factory=list, description="(batch_size, seq_len) available; empty means any size within the limits"
    )
    measured: bool = Field(default=False, description="some records carry ground_truth_energy")


class DatasetEntry(BaseModel):
    name: str
    records: int
    error: str | None = Field(default=None, description="first unreadable line, if any (that line is skipped)")


class PredictorEntry(BaseModel):
    name: str
    hardware: str | None = None
    default: bool = False


class LimitsView(BaseModel):
    max_batch_size: int
    max_seq_len: int
    max_context_len: int
    max_tree_nodes: int


class FirstView(BaseModel):
    """The preset and size the page shows first (computed while the server starts)."""

    model: str
    batch_size: int
    seq_len: int


class ModelsView(BaseModel):
    """Everything the server can show: models by source, datasets, predictors, and the request bounds."""

    first_view: FirstView | None = Field(default=None, description="what the page offers first")
    framework: str | None = Field(description="tracer used for presets (None when it is not installed)")
    framework_error: str | None = None
    models: list[ModelEntry]
    datasets: list[DatasetEntry]
    predictors: list[PredictorEntry]
    predictor_error: str | None = Field(default=None, description="why no predictor is available, if none is")
    limits: LimitsView


class StatusView(BaseModel):
    version: str
    cache_path: str
    cache_entries: int
    cache_hits: int
    cache_misses: int
    computations: int
    inflight: int


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str


class ApiError(BaseModel):
    """Every 4xx answer: one readable line, plus per-field errors for invalid parameters."""

    detail: str
    errors: list[FieldError] = Field(default_factory=list)
