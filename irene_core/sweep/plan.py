"""What a sweep measures: a :class:`SweepPlan` (from ``irene sweep``'s flags or a JSON/YAML file) and
its tasks, one tree each: models × phases × dtypes × batch sizes × (sequence lengths, or for
``decode`` one token after each context length).

The plan file's keys are :class:`SweepPlan`'s fields (``docs/sweep.md``); an unknown key is an error
naming the file and the key. Each (phase, dtype) group of tasks maps onto one ``irene run`` plan
(:meth:`SweepPlan.run_plan`), whose rules the driver and the nodes check. A task's record key has no
device: the device label comes from the node that measures it (``host/machine/device``, as ``irene
run`` writes it), and ``--resume`` compares its *kind* (:func:`device_kind`: the label without the host).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from irene_core.errors import IreneError, os_error_message, validation_message
from irene_core.profiling.profiler import RunSettings
from irene_core.profiling.session import GridPoint, RunPlan
from irene_core.tracing.replay import WarmupPolicy
from irene_core.tree.schema import RecordKey


class SweepTask(NamedTuple):
    """One tree to measure; ``dtype`` None is the framework's default for the model (resolved by the
    driver's checks, :meth:`resolved`)."""

    model: str
    batch_size: int
    seq_len: int
    phase: str = "forward"
    context_len: int | None = None
    dtype: str | None = None

    @property
    def group(self) -> tuple[str, str | None]:
        """The (phase, dtype) of the ``irene run`` plan this task belongs to."""
        return self.phase, self.dtype

    def key(self, attention: str) -> RecordKey:
        """The record key of its tree, without the device (which the measuring node gives)."""
        return RecordKey(self.model, self.batch_size, self.seq_len, self.phase, self.context_len,
                         self.dtype or "(default dtype)", attention)

    def describe(self, attention: str) -> str:
        return self.key(attention).describe()


class SweepPlan(BaseModel):
    """A sweep: the grid, the device, the meter and how each node is measured (``irene run``'s flags)."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(min_length=1, description="model names (as `irene run --model`)")
    batch_sizes: list[PositiveInt] = Field(default=[8], min_length=1)
    seq_lens: list[PositiveInt] = Field(default=[128], min_length=1, description="forward and prefill")
    phases: list[Literal["forward", "prefill", "decode"]] = Field(default=["forward"], min_length=1)
    context_lens: list[PositiveInt] = Field(default=[], description="decode: tokens already in the KV cache")
    dtypes: list[str | None] = Field(default=[None], min_length=1, description="None: the framework's default")
    logits: Literal["last", "all"] = "last"
    framework: str = "torch"
    device: str = Field("cpu", description="cpu or cuda (each GPU-scoped actor gets the GPU Ray assigned it)")
    attention: Literal["eager", "sdpa"] = "eager"
    meter: str | None = Field(None, description="meter plugin; its options come from each node")
    sampler: str = "resource"
    predictor: str | None = Field(None, description="a shipped predictor's name or a predictor directory")
    window_seconds: PositiveFloat | None = Field(None, description="default 2 s with a meter, 0.25 s without")
    rounds: PositiveInt | None = Field(None, description="default 3 with a meter, 1 without")
    max_spread_pct: PositiveFloat = 5.0
    cooldown: NonNegativeFloat = 0.0
    idle_seconds: NonNegativeFloat = 3.0
    interval_ms: PositiveFloat = 170.0
    dedup: bool = Field(True, description="measure one node per class of identical nodes")
    warmup_seconds: PositiveFloat | None = Field(None, description="the most a node warms up (default: irene run's)")

    @field_validator("device")
    @classmethod
    def _device_kind(cls, device: str) -> str:
        if ":" in device:
            raise ValueError(f"{device!r}: a sweep names a kind of device (cpu, cuda); Ray assigns each actor its GPU")
        return device

    @model_validator(mode="after")
    def _contexts_for_decode(self) -> SweepPlan:
        if "decode" in self.phases and not self.context_lens:
            raise ValueError("phase decode needs context_lens (--context: the tokens already in the KV cache)")
        if self.context_lens and "decode" not in self.phases:
            raise ValueError("context_lens are the KV cache of phase decode, which phases lacks")
        return self

    def tasks(self) -> list[SweepTask]:
        """Every combination, without repeats, in the order of the fields."""
        tasks: list[SweepTask] = []
        for model, phase, dtype, batch in itertools.product(self.models, self.phases, self.dtypes, self.batch_sizes):
            points = [(1, c) for c in self.context_lens] if phase == "decode" else [(s, None) for s in self.seq_lens]
            tasks.extend(SweepTask(model, batch, seq, phase, context, dtype) for seq, context in points)
        return list(dict.fromkeys(tasks))

    def settings(self) -> RunSettings:
        """How each node is measured (``irene run``'s defaults for what the plan leaves out)."""
        return RunSettings(
            window_seconds=self.window_seconds or (2.0 if self.meter else 0.25),
            rounds=self.rounds or (3 if self.meter else 1),
            cooldown_seconds=self.cooldown,
            idle_seconds=self.idle_seconds,
            max_spread_pct=self.max_spread_pct,
            dedup=self.dedup,
            **({"warmup": self._warmup(self.warmup_seconds)} if self.warmup_seconds else {}),
        )

    @staticmethod
    def _warmup(seconds: float) -> WarmupPolicy:
        """Warm-up within ``seconds``: its timing batches shrink so that two of them fit."""
        return WarmupPolicy(max_seconds=seconds, batch_seconds=min(WarmupPolicy.batch_seconds, seconds / 2))

    def run_plan(self, group: tuple[str, str | None], output: Path, meter_options: dict[str, str]) -> RunPlan:
        """The ``irene run`` plan of the tasks of one (phase, dtype) group: what the run rules check, on
        the driver and on each node, and how each task is traced."""
        phase, dtype = group
        return RunPlan(
            framework=self.framework,
            grid=[GridPoint(t.model, t.batch_size, t.seq_len, t.context_len) for t in self.tasks() if t.group == group],
            phase=phase,
            dtype=dtype,
            logits=self.logits,
            meter=self.meter,
            meter_options=meter_options,
            predictor=self.predictor,
            output=output,
            resume=False,
            interval_ms=self.interval_ms,
            device=self.device,
            attention=self.attention,
            settings=self.settings(),
            sampler=self.sampler,
        )

    def groups(self) -> list[tuple[str, str | None]]:
        return list(dict.fromkeys(t.group for t in self.tasks()))


def read_plan_file(path: Path) -> dict[str, Any]:
    """The mapping in a JSON (``.json``) or YAML file; IreneError naming the file when it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise IreneError(f"--plan {os_error_message(exc, path)}") from None
    except UnicodeDecodeError:
        raise IreneError(f"--plan {path}: not UTF-8 text") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise IreneError(f"--plan {path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    else:
        try:
            import yaml
        except ImportError:
            raise IreneError(f"--plan {path}: YAML needs PyYAML (pip install 'irene[ray]'), or write JSON") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark is not None else ""
            raise IreneError(f"--plan {path}{where}: invalid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(data, dict):
        raise IreneError(f"--plan {path}: expected a mapping of plan keys (see docs/sweep.md)")
    return data


def load_plan(path: Path) -> SweepPlan:
    """The plan in ``path``; an unknown key or a bad value is one line naming the file and the key."""
    data = read_plan_file(path)
    try:
        plan = SweepPlan.model_validate(data)
    except PydanticValidationError as exc:
        raise IreneError(f"--plan {path}: {plan_problem(exc)}") from None
    return plan.model_copy(update={"predictor": _beside(path, plan.predictor)})


def plan_problem(exc: PydanticValidationError) -> str:
    """The first problem of an invalid plan in one line."""
    return validation_message(exc, " (see docs/sweep.md for the plan keys)").replace("Value error, ", "")


def _beside(plan_file: Path, predictor: str | None) -> str | None:
    """A relative predictor directory is read from the plan file's directory (a shipped predictor's name is
    a name)."""
    from irene_core.predictor.predictor import shipped_predictors

    if predictor is None or predictor in shipped_predictors() or Path(predictor).is_absolute():
        return predictor
    return str(plan_file.parent / predictor)


def device_kind(label: str | None) -> str | None:
    """The kind of device behind a record's device label: ``myhost/x86_64/cuda:1`` → ``x86_64/cuda``
    (the host and the device's index dropped); a label not written by ``irene run`` is its own kind."""
    if label is None:
        return None
    _host, sep, rest = label.partition("/")
    return rest.split(":", 1)[0] if sep and "/" in rest else label
