"""The what-if schema (pydantic, the single one: the CLI, the JSON output and the viewer's API use it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: The most points one question may trace (a whole sweep belongs to ``irene sweep``).
MAX_POINTS = 64
#: The unit of every energy of a result.
UNIT = "J per call, whole batch"


class WhatIfQuery(BaseModel):
    """Which architectures to compare at one input size, by which predictor, with which questions."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(
        default_factory=list,
        description="explicit models: presets (brace patterns such as bert-L{2,4}-H{128,256} expand), "
        "config.json paths, cached hub ids",
    )
    base: str | None = Field(default=None, description="the model to vary (exactly one of models / base)")
    vary: dict[str, list[int]] = Field(
        default_factory=dict, description="architecture settings to vary (layers, hidden, heads, intermediate or "
        "a config attribute) -> values; points are their cartesian product",
    )
    batch_size: int = Field(default=16, ge=1)
    seq_len: int = Field(default=128, ge=1)
    framework: str = "torch"
    predictor: str = Field(default="model", description="a reference predictor name or a predictor directory")
    accuracy: dict[str, float] = Field(
        default_factory=dict, description="model display name -> score, higher is better"
    )
    budget_j: float | None = Field(default=None, gt=0, allow_inf_nan=False,
                                   description="ask: best accuracy within this many J per call")
    min_accuracy: float | None = Field(default=None, allow_inf_nan=False,
                                       description="ask: least energy for an accuracy of at least this")


class TypeEnergy(BaseModel):
    """One module type's share of a point: what the modules of this type own (their leaves and own ops)."""

    type: str
    count: int = Field(description="modules of this type that own energy")
    energy: float = Field(description="J per call, whole batch")
    low: float | None = Field(description="sum of the owned nodes' 90 % lower bounds (conservative)")
    high: float | None = Field(description="sum of the owned nodes' 90 % upper bounds (conservative)")


class WhatIfPoint(BaseModel):
    """One architecture: its size, its predicted energy and where it goes, its accuracy and Pareto mark."""

    model: str = Field(description="display name: bert-L4-H256, or bert-base-uncased[layers=4,hidden=256]")
    settings: dict[str, int] = Field(description="the varied values ({} for explicit models)")
    parameters: int
    flops: float = Field(description="MFLOPs per call, whole batch")
    energy: float = Field(description="predicted J per call, whole batch")
    low: float | None = Field(description="90 % interval, lower end (J)")
    high: float | None = Field(description="90 % interval, upper end (J)")
    extrapolated: bool = Field(description="predicted outside the predictor's training data")
    notices: list[str] = Field(description="the predictor's warnings for this point")
    per_type: list[TypeEnergy] = Field(description="a partition of energy by module type, most energy first")
    accuracy: float | None
    pareto: bool = Field(description="on the energy-vs-accuracy Pareto front (False without accuracy)")


class Answer(BaseModel):
    """The answer to a budget or min-accuracy question (by the point predictions)."""

    question: str
    model: str | None = Field(description="None: no point qualifies")
    energy: float | None
    accuracy: float | None
    note: str = Field(description="what makes the answer less certain ('' when nothing does)")


class WhatIfResult(BaseModel):
    """Every point in query order, the answers, and the query-level notices."""

    schema_version: int = 1
    batch_size: int
    seq_len: int
    predictor: str
    device: str | None = Field(description="the hardware the predictor stands for")
    unit: str = UNIT
    points: list[WhatIfPoint]
    answers: list[Answer]
    notices: list[str]
