"""Pydantic models of the viz API's answers (trees reuse :mod:`irene_core.tree.schema`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from irene_core.tree.schema import TreeRecord

Source = Literal["preset", "local", "dataset", "file"]


class TreeView(TreeRecord):
    """A tree with where it came from: structure and model features only (``/api/tree``)."""

    source: Source = Field(description="preset: traced by name; local: a model dir in the data dir; dataset: a record")
    dataset: str | None = Field(default=None, description="dataset file (relative to the data dir) for source=dataset")
    node_count: int = Field(description="nodes in the tree, OwnOps pseudo-children included")


class EnergyView(TreeView):
    """A tree with predicted energy on every node (J per call) and measured energy where a run has it."""

    predictor: str | None = Field(default=None, description="predictor that made predicted_energy")
    hardware: str | None = Field(default=None, description="the hardware the predicted figures stand for")


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
    max_tree_nodes: int


class ModelsView(BaseModel):
    """Everything the server can show: models by source, datasets, predictors, and the request bounds."""

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
