"""The model tree: the one schema for files, API and plugins (record schema v2).

A :class:`TreeRecord` is one model run at one (batch size, sequence length) in one phase on one
device; its ``root`` is a :class:`Node` of level ``model`` whose descendants are ``module`` nodes and
``ml`` leaves (primitives).  An inner node may carry a *synthetic* ``OwnOps`` child that holds the
energy a module spends beyond its children (see ``docs/predictor.md``).

Every field is declared (``extra="forbid"``): a new field is added here, with a default that keeps
older files valid, never smuggled in as a feature or a ``meta`` key.  A record is identified by its
:class:`RecordKey` (model, batch, seq, phase, context, dtype, attention, device) everywhere: ``--resume``,
the viewer's index and the API.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

if TYPE_CHECKING:
    import pandas as pd

#: The record schema this IrEne writes; readers accept :data:`READABLE_VERSIONS`.
SCHEMA_VERSION = 2
READABLE_VERSIONS: tuple[int, ...] = (1, 2)

Level = Literal["model", "module", "ml"]
LEVELS: tuple[Level, ...] = ("ml", "module", "model")

#: ``type`` of the synthetic pseudo-child that carries a module's own (non-child) work.
OWN_OPS_TYPE = "OwnOps"
#: ``meta`` key of the leaf types a record keeps in its parents' own work (an imported tree without
#: the ``GELU`` leaves a trace of its model has; written by ``irene_core.tracing.bytes_moved``).
ABSORBED_LEAVES = "absorbed_leaves"
#: The values of ``meta["family"]`` (the ``family`` split of ``irene crossvalidate``).
MODEL_FAMILIES: tuple[str, ...] = ("encoder", "decoder", "encoder-decoder")

#: Model features (known before running anything) and resource features (sampled while a node runs).
MODEL_FEATURES: tuple[str, ...] = ("batch_size", "seq_len", "flops", "mem_bytes", "num_parameters")
RESOURCE_FEATURES: tuple[str, ...] = (
    "cpu",
    "mem",
    "gpu",
    "gpu_mem",
    "gpu_clk",
    "gpu_mem_clk",
    "times_mean",
    "gpu_energy_mean",
)
#: The features that say what work a node does: nodes that differ in one of them do different work.
WORK_FEATURES: tuple[str, ...] = (*MODEL_FEATURES, "mem_bytes_moved")
#: Work features within this relative difference are the same work (a bias vector or an index tensor
#: more: GPT-2's MLP projections, 0.05 % apart, or BERT's token-type and word embeddings, 0.1 %).
WORK_TOLERANCE = 0.01
#: Unit of each node feature (the paper's Table 1; the API's answers use the same).
FEATURE_UNITS: dict[str, str] = {
    "batch_size": "sequences",
    "seq_len": "tokens",
    "flops": "MFLOPs",
    "mem_bytes": "MiB",
    "mem_bytes_moved": "MiB",
    "num_parameters": "parameters",
    "cpu": "%",
    "mem": "%",
    "gpu": "%",
    "gpu_mem": "%",
    "gpu_clk": "MHz",
    "gpu_mem_clk": "MHz",
    "times_mean": "s per call",
    "gpu_energy_mean": "J per call",
}


class MeterWindow(BaseModel):
    """One measurement window of a node: wall-clock edges (ns since the epoch, on the record's ``host``),
    the calls it ran and the energy the meter measured over it."""

    model_config = ConfigDict(extra="forbid")

    begin_ns: int
    end_ns: int
    calls: int = Field(ge=1)
    energy_j: float | None = None


class Notice(BaseModel):
    """A warning that travels with the data (shown per record and per request, never once per process)."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="what raised it: predictor, meter, profiler…")
    message: str
    nodes: list[str] = Field(default_factory=list, description="ids of the nodes it concerns (empty: the record)")


class Node(BaseModel):
    """One node of a model tree."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    id: str
    scope: str = Field(description="dotted module path ('' for the model itself)")
    type: str = Field(description="class name of the module, or op name (MatMul, Softmax)")
    level: Level
    features: dict[str, float] = Field(default_factory=dict)
    ground_truth_energy: float | None = Field(default=None, description="measured J per call (>= 0)")
    predicted_energy: float | None = Field(
        default=None,
        description="predicted J per call (IrEne's are >= 0, but an OwnOps may be < 0 where training measured parents "
        "below their children; another tool's may be negative: a bad prediction)",
    )
    predicted_low: float | None = Field(default=None, description="lower end of the 90 % interval (J per call)")
    predicted_high: float | None = Field(default=None, description="upper end of the 90 % interval (J per call)")
    extrapolated: bool = Field(
        default=False, description="predicted outside the predictor's training data (this node or a descendant)"
    )
    spread_pct: float | None = Field(default=None, description="round-to-round spread of the measured energy (CV, %)")
    energy_above_idle: float | None = Field(default=None, description="measured J per call above the idle power")
    flags: list[str] = Field(default_factory=list, description="measurement flags: spread, below_idle, retried…")
    windows: list[MeterWindow] = Field(default_factory=list, description="the measurement windows of this node")
    signature: str | None = Field(
        default=None, description="hash of what the node computes (type, inputs, parameters, configuration, children)"
    )
    measured_as: str | None = Field(
        default=None, description="id of the node whose measurement this node carries (deduplication)"
    )
    latency_spread_pct: float | None = Field(
        default=None, description="difference of the last two warm-up batches' median latencies (%)"
    )
    synthetic: bool = Field(default=False, description="True for the OwnOps pseudo-child")
    children: list[Node] = Field(default_factory=list)

    @field_validator("ground_truth_energy")
    @classmethod
    def _finite_non_negative(cls, value: float | None) -> float | None:
        if value is not None and (not math.isfinite(value) or value < 0):
            raise ValueError(f"energy must be a finite number >= 0, got {value}")
        return value

    @field_validator("predicted_energy")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError(f"energy must be a finite number, got {value}")
        return value

    @field_validator("features")
    @classmethod
    def _finite_features(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [k for k, v in value.items() if not math.isfinite(v)]
        if bad:
            raise ValueError(f"features must be finite: {', '.join(bad)}")
        return value

    @property
    def name(self) -> str:
        """``scope:type``, the paper's ``level_name``."""
        return f"{self.scope}:{self.type}"

    def walk(self, include_synthetic: bool = True) -> Iterator[Node]:
        """This node and all descendants, depth first, parents before children."""
        stack = [self]
        while stack:
            node = stack.pop()
            if node.synthetic and not include_synthetic:
                continue
            yield node
            stack.extend(reversed(node.children))

    def walk_with_parent(self) -> Iterator[tuple[Node | None, Node]]:
        """(parent, node) pairs, depth first; the parent of ``self`` is ``None``."""
        stack: list[tuple[Node | None, Node]] = [(None, self)]
        while stack:
            parent, node = stack.pop()
            yield parent, node
            stack.extend((node, child) for child in reversed(node.children))

    def leaves(self, include_synthetic: bool = False) -> Iterator[Node]:
        return (n for n in self.walk(include_synthetic) if not n.children)

    def at_level(self, level: Level) -> Iterator[Node]:
        """Real (non-synthetic) nodes of one level."""
        return (n for n in self.walk(include_synthetic=False) if n.level == level)

    def find(self, scope: str, type: str | None = None) -> Node | None:
        """The first node with this scope (and type, if given); modules before their ops."""
        for node in self.walk():
            if node.scope == scope and (type is None or node.type == type):
                return node
        return None

    def real_children(self) -> list[Node]:
        return [c for c in self.children if not c.synthetic]

    def own_ops(self) -> Node | None:
        return next((c for c in self.children if c.synthetic), None)


class RecordKey(NamedTuple):
    """What identifies a tree in a dataset: two records with one key are the same measurement."""

    model: str
    batch_size: int
    seq_len: int
    phase: str = "forward"
    context_len: int | None = None
    dtype: str = "float32"
    attention: str = "eager"
    device: str | None = None

    def describe(self) -> str:
        """``bert-base-uncased b8 s128`` plus whatever differs from the defaults."""
        text = f"{self.model} b{self.batch_size} s{self.seq_len}"
        extras = [
            self.phase if self.phase != "forward" else "",
            f"context {self.context_len}" if self.context_len else "",
            self.dtype if self.dtype != "float32" else "",
            self.attention if self.attention != "eager" else "",
            f"on {self.device}" if self.device else "",
        ]
        return " ".join([text, *(e for e in extras if e)])


class TreeRecord(BaseModel):
    """One traced (and possibly measured) model at one input size, phase and dtype on one device."""

    model_config = ConfigDict(extra="forbid")

    model_name: str
    batch_size: int = Field(gt=0)
    seq_len: int = Field(gt=0)
    phase: str = Field("forward", min_length=1, description="forward (the model's forward pass), prefill or decode")
    context_len: int | None = Field(None, ge=0, description="tokens already in the KV cache (decode)")
    dtype: str = Field("float32", min_length=1, description="the model's parameter dtype")
    attention: str = Field("eager", min_length=1, description="attention implementation (eager, sdpa)")
    device: str | None = Field(default=None, description="hardware label, e.g. 'device_1'")
    host: str | None = Field(default=None, description="the machine that measured the record (windows' clock)")
    meta: dict[str, Any] = Field(default_factory=dict, description="run metadata (idle power, hardware, family…)")
    notices: list[Notice] = Field(default_factory=list, description="warnings about this record's data")
    root: Node
    _schema_read: int = PrivateAttr(default=SCHEMA_VERSION)

    @property
    def family(self) -> str | None:
        """The model family (``meta.family``: encoder, decoder, encoder-decoder; None where unknown)."""
        family = self.meta.get("family")
        return None if family is None else str(family)

    @property
    def key(self) -> RecordKey:
        return RecordKey(self.model_name, self.batch_size, self.seq_len, self.phase, self.context_len, self.dtype,
                         self.attention, self.device)

    def __eq__(self, other: object) -> bool:
        """Equal fields make equal records, whichever file (and schema) they were read from."""
        if not isinstance(other, TreeRecord):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable, like every pydantic model

    @property
    def schema_read(self) -> int:
        """The schema version of the file this record was read from (the current one when built in memory)."""
        return self._schema_read

    def to_pandas(self) -> pd.DataFrame:
        """One row per node (see :func:`irene_core.tree.frames.to_pandas`); needs ``irene[pandas]``."""
        from irene_core.tree.frames import to_pandas

        return to_pandas([self])

    def nodes(self, include_synthetic: bool = False) -> Iterator[Node]:
        return self.root.walk(include_synthetic)

    def borrowed(self) -> set[str]:
        """Ids of the nodes whose ground truth was measured on other work: a node ``measured_as`` one of
        another type, or differing by more than :data:`WORK_TOLERANCE` in a :data:`WORK_FEATURES` value
        that both have (the paper's release gives an attention's A·V product the measurement of its QKᵀ
        product, which moves 25–31 % more bytes).  Such a ground truth stays on the node but is no
        measurement of it."""
        by_id = {node.id: node for node in self.nodes()}
        out = set()
        for node in by_id.values():
            source = by_id.get(node.measured_as) if node.measured_as else None
            if source is None:
                continue
            if source.type != node.type or any(
                not math.isclose(node.features[f], source.features[f], rel_tol=WORK_TOLERANCE)
                for f in WORK_FEATURES if f in node.features and f in source.features
            ):
                out.add(node.id)
        return out

    def by_level(self) -> dict[Level, list[Node]]:
        out: dict[Level, list[Node]] = {level: [] for level in LEVELS}
        for node in self.nodes():
            out[node.level].append(node)
        return out

    def check(self) -> None:
        """Raise ValueError on duplicate ids or a root that is not the model node."""
        if self.root.level != "model":
            raise ValueError(f"root must have level 'model', not '{self.root.level}'")
        seen: set[str] = set()
        for node in self.root.walk():
            if node.id in seen:
                raise ValueError(f"duplicate node id '{node.id}'")
            seen.add(node.id)
            if node.level == "model" and node is not self.root:
                raise ValueError(f"node '{node.id}' has level 'model' but is not the root")


def unique_id(scope: str, type: str, taken: set[str]) -> str:
    """A deterministic id ``scope:type`` (``#2``, ``#3``… for repeats), added to ``taken``."""
    base = f"{scope}:{type}"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}#{n}"
    taken.add(candidate)
    return candidate
