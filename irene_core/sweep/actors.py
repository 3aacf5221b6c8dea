"""The measuring actor: one per (node, meter scope) for the whole sweep, so imports, plugins, the
predictor and idle power are paid once per node (``ray.remote`` is applied by the driver; this module
imports no Ray).

It checks on its node what ``irene run`` checks there (:data:`NODE_RULES`, for the plan's first (phase,
dtype) group: the sampler, the meter with the node's own options, the GPU Ray assigned, the predictor's
features; a task of another group that cannot run there fails as bad input), sets torch's threads to the
CPUs it holds, then measures one tree per call exactly as ``irene run`` does and returns it as JSON
text (never a pickled object). Each method answers JSON: a result, or ``{"error": …, "kind": …}``
where ``kind`` is ``meter`` (worth retrying on another node) or ``input`` (it would fail anywhere).

Meter options belong to the node (ports and powercap roots differ per machine): the JSON object in
``IRENE_METER_OPTIONS``, else the file :func:`options_file`, maps a meter name to its options, e.g.
``{"rapl": {"root": "/sys/class/powercap"}, "emonpi": {"port": "/dev/ttyUSB0"}}``.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from irene_core.errors import IreneError, validation_message
from irene_core.metering.gpus import hardware_info
from irene_core.metering.meter import MeterError
from irene_core.profiling.profiler import MeterFailure, Profiler, host_label
from irene_core.profiling.run_checks import RUN_RULES, RunContext
from irene_core.profiling.session import GridPoint, measure_tree
from irene_core.profiling.validation import Validation
from irene_core.sweep.plan import SweepPlan, SweepTask, device_kind
from irene_core.tree.jsonl import record_to_line

#: The environment variable with a node's meter options (JSON), and the file read without it.
OPTIONS_ENV = "IRENE_METER_OPTIONS"
#: ``irene run``'s rules that concern the dataset: the driver checks them, not the nodes.
DRIVER_ONLY = frozenset({"output", "html", "lock"})

_OPTIONS = TypeAdapter(dict[str, dict[str, str | int | float]])


def subset(rules: Validation, name: str, without: frozenset[str]) -> Validation:
    """A validation with ``rules``' rules, in order, except those named in ``without``."""
    kept = Validation(name)
    for rule in rules.rules:
        if rule.name not in without:
            kept.add(rule.name, rule.check)
    return kept


#: What each node checks before it measures (``irene run``'s rules, less the dataset's).
NODE_RULES = subset(RUN_RULES, "sweep-node", DRIVER_ONLY)


def options_file() -> Path:
    """``$XDG_CONFIG_HOME/irene/meter-options.json`` (``~/.config`` without it)."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "irene" / "meter-options.json"


def node_meter_options(meter: str | None) -> dict[str, str]:
    """This node's options for ``meter``: from ``IRENE_METER_OPTIONS``, else :func:`options_file`, else none."""
    if meter is None:
        return {}
    text, source = os.environ.get(OPTIONS_ENV), OPTIONS_ENV
    if text is None:
        path = options_file()
        if not path.is_file():
            return {}
        text, source = path.read_text(encoding="utf-8"), str(path)
    try:
        options = _OPTIONS.validate_json(text)
    except PydanticValidationError as exc:
        shape = '{"METER": {"KEY": "VALUE"}}'
        raise IreneError(f"{source}: {validation_message(exc)} (expected {shape})") from None
    return {key: str(value) for key, value in options.get(meter, {}).items()}


def _answer(**fields: Any) -> str:
    return json.dumps(fields, allow_nan=False)


class MeasuringActor:
    """Measures the trees of one sweep on one node (one tree at a time; the driver sends them)."""

    def __init__(self, plan: str, output: str, threads: int) -> None:
        self.plan = SweepPlan.model_validate_json(plan)
        self.output = Path(output)
        self.threads = max(1, threads)
        self.device = host_label(self.plan.device)
        self.context: RunContext | None = None
        self.profiler: Profiler | None = None
        self.meta: dict[str, Any] = {}

    def describe(self) -> str:
        """Where this actor runs (cheap: no plugin is loaded)."""
        return _answer(host=socket.gethostname(), device=self.device, kind=device_kind(self.device), pid=os.getpid())

    def prepare(self) -> str:
        """Check this node (:data:`NODE_RULES`), open sampler and meter, measure idle power; once."""
        started = time.perf_counter()
        try:
            import torch

            torch.set_num_threads(self.threads)  # not Ray's OMP_NUM_THREADS=1: the cores this actor holds
            options = node_meter_options(self.plan.meter)
            context = RunContext(self.plan.run_plan(self.plan.groups()[0], self.output, options))
            self.context = context
            NODE_RULES.run(context)
            assert context.predictor is not None  # the "predictor" rule loaded it
            self.profiler = Profiler(self.plan.settings(), context.sampler, context.meter)
            idle = self.profiler.idle_power()
        except IreneError as exc:
            self.close()
            return _answer(error=str(exc), kind="meter" if isinstance(exc, MeterError | MeterFailure) else "input")
        self.meta = {"framework": self.plan.framework, "idle_power_w": idle, "meter_options": options,
                     "hardware": hardware_info(context.gpus)}
        return _answer(seconds=time.perf_counter() - started, threads=self.threads)

    def measure(self, task: str, attempt: int, node_id: str) -> str:
        """One tree, traced, measured node by node and predicted, as ``irene run`` makes it (JSON text)."""
        if self.profiler is None or self.context is None or self.context.predictor is None:
            return _answer(error="the actor was not prepared", kind="meter")
        todo = SweepTask(*json.loads(task))
        how = self.plan.run_plan(todo.group, self.output, self.meta["meter_options"]).trace_options(todo.context_len)
        started = time.perf_counter()
        try:
            predicted = measure_tree(
                GridPoint(todo.model, todo.batch_size, todo.seq_len, todo.context_len), how, self.profiler,
                self.context.predictor, self.device, {**self.meta, "sweep": {"node_id": node_id, "attempt": attempt}},
            )
            line = record_to_line(predicted)
        except (MeterError, MeterFailure) as exc:
            return _answer(error=str(exc), kind="meter")
        except IreneError as exc:
            return _answer(error=str(exc), kind="input")
        return _answer(tree=line, seconds=time.perf_counter() - started)

    def close(self) -> None:
        """Stop the sampler, release the meter (the driver calls it, or the actor's end does)."""
        if self.context is not None:
            self.context.__exit__(None, None, None)
            self.context = None
        self.profiler = None
