"""The rules ``irene run`` checks before the first node is profiled (see :mod:`.validation`).

In order: the grid and options (``--context`` only with ``--phase decode``, which takes ``--seq-len 1``),
the plugins, the output and report paths, the predictor, what each model needs at its largest grid
point (the framework's :meth:`~irene_core.tracing.framework.Framework.check_resources`: a phase it
traces, a dtype the device runs, the estimated memory within the device's), every model (a meta-device
trace at its smallest batch and longest sequence and context: no weights, no kernels), the GPUs of
``--device``, the sampler
and meter (started, and the meter read once), the predictor's features against what this run
produces, and last the dataset lock. The context keeps what the rules opened (sampler, meter, lock,
predictor) for the run, and releases it when the run ends.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from irene_core.errors import IreneError, os_error_message
from irene_core.metering.gpus import nvml_indices_for_device
from irene_core.metering.meter import Meter, open_meter
from irene_core.metering.sampler import ResourceSampler
from irene_core.plugins import get_registry
from irene_core.profiling.validation import validation
from irene_core.tracing.trace import check_resources, trace
from irene_core.tree.atomic import DatasetLock
from irene_core.tree.schema import TreeRecord

if TYPE_CHECKING:
    from irene_core.predictor.predictor import Predictor
    from irene_core.profiling.session import RunPlan

#: The rules of ``irene run``; ``sweep`` and later phases extend or reuse them.
RUN_RULES = validation("run")


@dataclass
class RunContext:
    """What the rules check (``plan``) and what they open for the run (released by ``close``)."""

    plan: RunPlan
    resources: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    sampler: ResourceSampler | None = None
    meter: Meter | None = None
    predictor: Predictor | None = None
    traces: dict[str, TreeRecord] = field(default_factory=dict)
    gpus: tuple[int, ...] = ()  # NVML indices of the GPUs the model runs on

    def __enter__(self) -> RunContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.resources.close()


def writable_problem(path: Path, flag: str) -> str | None:
    """Why ``path`` cannot be written (a file there, or a new one beside it), else None.

    Probes with a temp file in the nearest existing directory, and opens an existing file for
    appending without writing: nothing is created, truncated or changed.
    """
    if path.is_dir():
        return f"{flag} {path}: is a directory (expected a file to write)"
    if path.exists() and not path.is_file():
        return f"{flag} {path}: not a regular file"
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{flag} {path}: {parent} is not a directory"
    try:
        if path.exists():
            with open(path, "ab"):
                pass
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        words = os_error_message(OSError(exc.errno, exc.strerror))
        return f"{flag} {path}: cannot write {'it' if exc.filename == str(path) else f'in {parent}'} ({words})"
    return None


@RUN_RULES.rule("meter-options")
def _meter_options(context: RunContext) -> str | None:
    if context.plan.meter_options and not context.plan.meter:
        return "--meter-option needs --meter (which meter should take it?)"
    return None


@RUN_RULES.rule("grid")
def _grid(context: RunContext) -> str | None:
    """Batch sizes and sequence lengths ≥ 1 (the CLI refuses others too; Python callers come here)."""
    if not context.plan.grid:
        return "nothing to run: the grid of models, batch sizes and sequence lengths is empty"
    for model, batch, seq, _context in context.plan.grid:
        for flag, value in (("--batch-size", batch), ("--seq-len", seq)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                return f"{flag} {value!r} ({model}): must be an integer >= 1"
    return None


@RUN_RULES.rule("phase")
def _phase(context: RunContext) -> str | None:
    """``--context`` only with ``--phase decode``, which makes one token per sequence after a context
    (whatever the framework; the framework then says which phases it traces)."""
    plan = context.plan
    contexts = sorted({c for *_, c in plan.grid if c is not None})
    if contexts and plan.phase != "decode":
        return f"--context {contexts[0]}: a context is the KV cache of --phase decode (not {plan.phase})"
    if plan.phase == "decode":
        if len(contexts) < len({c for *_, c in plan.grid}):
            return "--phase decode needs --context L (the tokens already in the KV cache)"
        seqs = sorted({s for _, _, s, _ in plan.grid if s != 1})
        if seqs:
            return f"--seq-len {seqs[0]}: --phase decode generates one token per sequence (use --seq-len 1)"
    return None


@RUN_RULES.rule("framework")
def _framework(context: RunContext) -> str | None:
    try:
        get_registry().get("framework", context.plan.framework)
    except IreneError as exc:
        return str(exc)
    return None


@RUN_RULES.rule("gpus")
def _gpus(context: RunContext) -> str | None:
    """``--device cuda:N`` maps to its NVML GPU (by UUID); a CPU device runs on none."""
    try:
        context.gpus = nvml_indices_for_device(context.plan.device)
    except IreneError as exc:
        return f"--device {context.plan.device}: {exc}"
    return None


@RUN_RULES.rule("sampler")
def _sampler(context: RunContext) -> str | None:
    """The sampler plugin exists, is a resource sampler and accepts ``--interval-ms``."""
    name = context.plan.sampler
    try:
        template = get_registry().get("features", name)
        if not isinstance(template, ResourceSampler):
            return f"--sampler {name}: the features plugin '{name}' is not a resource sampler"
        context.sampler = template.configured(interval_s=context.plan.interval_ms / 1000.0, gpus=context.gpus)
    except IreneError as exc:
        return f"--sampler {name}: {exc}"
    return None


@RUN_RULES.rule("meter")
def _meter(context: RunContext) -> str | None:
    """The meter plugin exists and takes the options (constructing touches no hardware); the NVML meter
    measures the GPUs the model runs on unless ``gpus=`` says otherwise."""
    if not context.plan.meter:
        return None
    options = dict(context.plan.meter_options)
    if context.plan.meter == "nvml" and context.gpus and "gpus" not in options:
        options["gpus"] = ",".join(map(str, context.gpus))
    try:
        context.meter = context.resources.enter_context(open_meter(context.plan.meter, options))
    except IreneError as exc:
        return str(exc)
    return None


@RUN_RULES.rule("output")
def _output(context: RunContext) -> str | None:
    return writable_problem(context.plan.output, "-o")


@RUN_RULES.rule("html")
def _html(context: RunContext) -> str | None:
    return writable_problem(context.plan.html, "--html") if context.plan.html else None


@RUN_RULES.rule("predictor")
def _predictor(context: RunContext) -> str | None:
    from irene_core.predictor.predictor import load_predictor

    try:
        context.predictor = load_predictor(context.plan.predictor)
    except IreneError as exc:
        return str(exc)
    return None


def _extremes(plan: RunPlan, model: str) -> tuple[int, int, int, int | None]:
    """The smallest and largest batch, the longest sequence and the longest context of ``model`` in the grid."""
    points = [p for p in plan.grid if p.model == model]
    contexts = [p.context_len for p in points if p.context_len is not None]
    return (min(p.batch_size for p in points), max(p.batch_size for p in points), max(p.seq_len for p in points),
            max(contexts) if contexts else None)


def _model_error(model: str, seq: int, exc: IreneError) -> str:
    return str(exc) if model in str(exc) else f"--model {model} (seq {seq}): {exc}"


@RUN_RULES.rule("resources")
def _resources(context: RunContext) -> str | None:
    """The framework can run every model here at its largest grid point: the phase, the dtype on the
    device, the estimated memory (weights, KV cache, activations) within what the device has."""
    plan = context.plan
    for model in dict.fromkeys(p.model for p in plan.grid):
        _, batch, seq, longest = _extremes(plan, model)
        try:
            check_resources(model, batch, seq, **plan.trace_options(longest))
        except IreneError as exc:
            return _model_error(model, seq, exc)
    return None


@RUN_RULES.rule("models")
def _models(context: RunContext) -> str | None:
    """Every model builds and traces on the meta device at its smallest batch, longest sequence and context."""
    plan = context.plan
    for model in dict.fromkeys(p.model for p in plan.grid):
        batch, _, seq, longest = _extremes(plan, model)
        try:
            traced = trace(model, batch, seq, meta=True, **plan.trace_options(longest))
        except IreneError as exc:
            return _model_error(model, seq, exc)
        context.traces[model] = traced.record
    return None


@RUN_RULES.rule("sampler-starts")
def _sampler_starts(context: RunContext) -> str | None:
    sampler = context.sampler
    assert sampler is not None  # the "sampler" rule ran
    try:
        sampler.start()
    except IreneError as exc:
        return f"--sampler {context.plan.sampler}: {exc}"
    context.resources.callback(sampler.stop)
    return None


@RUN_RULES.rule("meter-reads")
def _meter_reads(context: RunContext) -> str | None:
    """The meter is usable here, opens and measures one (empty) window."""
    meter = context.meter
    if meter is None:
        return None
    ok, reason = meter.available()
    if not ok:
        return f"meter '{meter.name}' is not usable here: {reason}"
    try:
        meter.begin("irene-check")
        meter.end("irene-check")
    except IreneError as exc:
        return str(exc)
    return None


def produced_features(context: RunContext) -> tuple[set[str], dict[str, str]]:
    """Features every node of this run will have, and those the sampler cannot produce here (why)."""
    sampler = context.sampler
    assert sampler is not None  # the "sampler" rule ran
    missing = sampler.missing_features()
    produced = {"times_mean"} | (set(sampler.feature_names) - set(missing))
    for record in context.traces.values():
        produced |= set.intersection(*(set(n.features) for n in record.nodes()))
    return produced, missing


@RUN_RULES.rule("predictor-features")
def _predictor_features(context: RunContext) -> str | None:
    """The predictor gets every feature it needs from this run (model features, sampled features)."""
    predictor = context.predictor
    assert predictor is not None  # the "predictor" rule ran
    produced, missing = produced_features(context)
    lacking = [f for f in predictor.feature_names_ if f not in produced]
    if not lacking:
        return None
    reasons = sorted({missing[f] for f in lacking if f in missing})
    why = f" ({'; '.join(reasons)})" if reasons else ""
    return (
        f"--predictor {context.plan.predictor or 'reference'} needs features this run cannot produce: "
        f"{', '.join(lacking)}{why}; use a predictor trained with fewer features (irene train --features model)"
    )


@RUN_RULES.rule("lock")
def _lock(context: RunContext) -> str | None:
    """No other process writes the output; held until the run ends (last: it creates the lock file)."""
    try:
        context.resources.enter_context(DatasetLock(context.plan.output))
    except IreneError as exc:
        return str(exc)
    return None
