"""One ``irene run``: plugins opened, the grid profiled tree by tree, each tree predicted and
appended durably, and a summary printed. Ctrl-C or a meter failure keeps every finished tree.
Printing the summary and rendering the HTML report are the CLI's job (:mod:`irene_core.cli.run`), on
:attr:`RunSession.finished`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from irene_core.errors import IreneError
from irene_core.metering.meter import Meter, open_meter
from irene_core.metering.sampler import ResourceSampler
from irene_core.plugins import get_registry
from irene_core.profiling.profiler import Profiler, RunSettings, host_label
from irene_core.tracing.trace import trace
from irene_core.tree.jsonl import append_record, read_records
from irene_core.tree.schema import RecordKey, TreeRecord

if TYPE_CHECKING:
    from irene_core.predictor.predictor import Predictor


@dataclass
class RunPlan:
    framework: str
    grid: list[tuple[str, int, int]]
    meter: str | None
    meter_options: dict[str, str]
    predictor_dir: Path | None
    output: Path
    resume: bool
    interval_ms: float
    device: str
    attention: str
    settings: RunSettings
    sampler: str = "resource"

    def key(self, model: str, batch: int, seq: int) -> RecordKey:
        """The key the tree of one grid point will have (what ``--resume`` compares)."""
        return RecordKey(model, batch, seq, attention=self.attention, device=host_label(self.device))


def done_keys(path: Path) -> set[RecordKey]:
    return {r.key for r in read_records(path)} if path.exists() else set()


class RunSession:
    def __init__(self, plan: RunPlan, console: Console, err_console: Console):
        self.plan = plan
        self.console = console
        self.err = err_console
        self.finished: list[TreeRecord] = []

    def _todo(self) -> list[tuple[str, int, int]]:
        done = done_keys(self.plan.output)
        if done & {self.plan.key(*point) for point in self.plan.grid} and not self.plan.resume:
            raise IreneError(
                f"{self.plan.output} already holds trees of this grid; pass --resume to skip them or -o another file"
            )
        todo = [point for point in self.plan.grid if self.plan.key(*point) not in done]
        if len(todo) < len(self.plan.grid):
            self.err.print(
                f"resuming: {len(self.plan.grid) - len(todo)} of {len(self.plan.grid)} trees "
                f"already in {self.plan.output}"
            )
        return todo

    @contextlib.contextmanager
    def _instruments(self) -> Iterator[tuple[ResourceSampler, Meter | None]]:
        sampler = self._sampler_template().configured(interval_s=self.plan.interval_ms / 1000.0)
        meter = open_meter(self.plan.meter, self.plan.meter_options) if self.plan.meter else None
        if meter is not None:
            ok, reason = meter.available()
            if not ok:
                raise IreneError(f"meter '{meter.name}' is not usable here: {reason}")
        sampler.start()
        try:
            yield sampler, meter
        finally:
            sampler.stop()
            if meter is not None:
                meter.close()

    def _sampler_template(self) -> ResourceSampler:
        template = get_registry().get("features", self.plan.sampler)
        if not isinstance(template, ResourceSampler):
            raise IreneError(
                f"--sampler {self.plan.sampler}: the features plugin '{self.plan.sampler}' is not a resource sampler"
            )
        return template

    def _predictor(self) -> Predictor:
        from irene_core.predictor.predictor import Predictor, load_reference_predictor

        predictor = (
            Predictor.load(self.plan.predictor_dir) if self.plan.predictor_dir else load_reference_predictor("model")
        )
        self.err.print(
            f"predictor: {self.plan.predictor_dir or 'shipped reference (model features)'} "
            f"— figures stand for {predictor.hardware}"
        )
        return predictor

    def run(self) -> None:
        plan = self.plan
        get_registry().get("framework", plan.framework)  # an unknown framework fails before anything runs
        if plan.meter:
            get_registry().get("meter", plan.meter)  # an unknown meter fails before anything runs
        self._sampler_template()
        todo = self._todo()
        if not todo:
            self.console.print(f"nothing to do: every tree of the grid is already in {plan.output}")
            return
        predictor = self._predictor()
        label = host_label(plan.device)
        current: str | None = None
        try:
            with self._instruments() as (sampler, meter), self._progress() as progress:
                profiler = Profiler(plan.settings, sampler, meter)
                idle = profiler.idle_power()
                trees = progress.add_task("trees", total=len(todo))
                nodes = progress.add_task("nodes", total=None)
                for model, batch, seq in todo:
                    current = f"{model} batch {batch} seq {seq}"
                    progress.update(nodes, description=f"{model} b{batch} s{seq}", completed=0, total=None)
                    traced = trace(
                        model, batch, seq, framework=plan.framework, device=plan.device, attention=plan.attention
                    )
                    progress.update(nodes, total=sum(1 for _ in traced.record.nodes()))
                    measured = profiler.profile(traced, on_node=lambda _n: progress.advance(nodes))
                    measured.device = label
                    measured.meta.update(
                        {"framework": plan.framework, "idle_power_w": idle, "meter_options": plan.meter_options}
                    )
                    (predicted,) = predictor.predict([measured])
                    append_record(plan.output, predicted)
                    self.finished.append(predicted)
                    progress.advance(trees)
                current = None
        except KeyboardInterrupt:
            self._stopped("interrupted", current)
            raise SystemExit(130) from None
        except IreneError as exc:  # a meter failure, or a model that does not trace at this size
            if not self.finished and current is None:
                raise
            raise IreneError(
                f"{exc} (while profiling {current}); {len(self.finished)} finished trees kept in {plan.output}; "
                f"fix the cause and rerun with --resume"
            ) from None
        for warning in sorted(set(profiler.warnings))[:10]:
            self.err.print(f"[yellow]warning:[/] {warning}")

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), console=self.err, transient=True,
        )

    def _stopped(self, why: str, current: str | None) -> None:
        where = f" while profiling {current}" if current else ""
        self.err.print(
            f"{why}{where}: {len(self.finished)} finished trees are in {self.plan.output}; "
            f"run the same command with --resume to continue"
        )
