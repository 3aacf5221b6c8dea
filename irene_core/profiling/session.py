"""One ``irene run``: every input checked first (:mod:`.run_checks`), then the grid profiled tree by tree,
each tree predicted and appended durably, and a summary printed.

The run holds the dataset lock throughout. Ctrl-C, SIGTERM and SIGHUP stop it like a meter failure:
every finished tree is kept, the tree in progress is discarded, and the message says to rerun with
``--resume`` (exit 130, 143, 129: 128 + the signal). Printing the trees and rendering the HTML report
are the CLI's job (:mod:`irene_core.cli.run`), on :attr:`RunSession.finished`."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NamedTuple

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from irene_core.errors import IreneError
from irene_core.metering.gpus import hardware_info
from irene_core.profiling.profiler import Profiler, RunSettings, host_label, overload_warning, run_conditions
from irene_core.profiling.run_checks import RUN_RULES, RunContext
from irene_core.tracing.framework import TracedModel
from irene_core.tracing.trace import trace
from irene_core.tree.jsonl import append_record, read_records, repair_tail
from irene_core.tree.schema import Node, RecordKey, TreeRecord

if TYPE_CHECKING:
    from irene_core.predictor.predictor import Predictor

#: Signals that end a run like Ctrl-C (SIGINT); the exit status is 128 + the signal's number.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class GridPoint(NamedTuple):
    """One tree of a run's grid: a model at a batch size and sequence length (and, in decode, a context)."""

    model: str
    batch_size: int
    seq_len: int
    context_len: int | None = None

    def describe(self) -> str:
        return f"{self.model} batch {self.batch_size} seq {self.seq_len}" + (
            f" context {self.context_len}" if self.context_len else "")


@dataclass
class RunPlan:
    """What ``irene run`` does: the grid of trees, in one phase and dtype (``None``: the framework's
    default for each model), and how they are measured."""

    framework: str
    grid: list[GridPoint]
    meter: str | None
    meter_options: dict[str, str]
    predictor: str | None
    output: Path
    resume: bool
    interval_ms: float
    device: str
    attention: str
    settings: RunSettings
    sampler: str = "resource"
    html: Path | None = None
    phase: str = "forward"
    dtype: str | None = None
    logits: str = "last"

    def __post_init__(self) -> None:
        self.grid = [GridPoint(*point) for point in self.grid]

    def trace_options(self, context_len: int | None) -> dict[str, Any]:
        """The options of :func:`~irene_core.tracing.trace.trace` for a grid point with this context (not ``meta``)."""
        return {"framework": self.framework, "device": self.device, "attention": self.attention,
                "phase": self.phase, "context_len": context_len, "dtype": self.dtype, "logits": self.logits}

    def key(self, point: GridPoint, dtype: str) -> RecordKey:
        """The key the tree of one grid point will have, its model traced in ``dtype`` (what ``--resume``
        compares)."""
        return RecordKey(point.model, point.batch_size, point.seq_len, self.phase, point.context_len, dtype,
                         self.attention, host_label(self.device))


def done_keys(path: Path) -> set[RecordKey]:
    return {r.key for r in read_records(path)} if path.exists() else set()


class Stopped(KeyboardInterrupt):
    """A stop signal arrived; ``status`` is the exit status it asks for."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.status = 128 + signum


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP raise :class:`Stopped` in the main thread, except inside
    :meth:`deferred` (a tree being appended), after which they take effect.  ``last`` remembers the
    stop: raised inside code whose cleanup is not interrupt-safe (transformers' ``no_init_weights``,
    Ray's ``wait``), it may surface as another exception."""

    def __init__(self) -> None:
        self._deferring = False
        self._pending: int | None = None
        self._previous: dict[int, object] = {}
        self.last: Stopped | None = None

    def stop_of(self, exc: BaseException) -> tuple[str, int] | None:
        """(why, exit status) when ``exc`` is a stop: any exception once a stop signal arrived, or a
        KeyboardInterrupt before the handlers were set; None otherwise."""
        if self.last is not None:
            return f"stopped by {self.last}", self.last.status
        return ("interrupted", 130) if isinstance(exc, KeyboardInterrupt) else None

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.last = Stopped(signum)
        if self._deferring:
            self._pending = signum
        else:
            raise Stopped(signum)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        if self._pending is not None:
            raise Stopped(self._pending)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]  # what signal.signal returned



def measure_tree(
    point: GridPoint, options: dict[str, Any], profiler: Profiler, predictor: Predictor, device: str,
    meta: dict[str, Any], on_traced: Callable[[TracedModel], None] | None = None,
    on_node: Callable[[Node], None] | None = None,
) -> TreeRecord:
    """One tree of ``irene run`` (and of each ``irene sweep`` task): ``point`` traced with the trace
    ``options``, measured node by node, labelled with ``device`` and ``meta``, then predicted."""
    traced = trace(point.model, point.batch_size, point.seq_len, **options)
    if on_traced is not None:
        on_traced(traced)
    measured = profiler.profile(traced, on_node=on_node)
    measured.device = device
    measured.meta.update(meta)
    (predicted,) = predictor.predict([measured])
    return predicted

class RunSession:
    def __init__(self, plan: RunPlan, console: Console, err_console: Console):
        self.plan = plan
        self.console = console
        self.err = err_console
        self.finished: list[TreeRecord] = []
        self.current: str | None = None  # the tree being profiled

    def _todo(self, context: RunContext) -> list[GridPoint]:
        if self.plan.resume:
            cut = repair_tail(self.plan.output)
            if cut:
                self.err.print(f"repaired {self.plan.output}: removed a truncated last line ({cut} bytes)")
        done = done_keys(self.plan.output)
        keys = {point: self.plan.key(point, context.traces[point.model].dtype) for point in self.plan.grid}
        if done & set(keys.values()) and not self.plan.resume:
            raise IreneError(
                f"{self.plan.output} already holds trees of this grid; pass --resume to skip them or -o another file"
            )
        todo = [point for point in self.plan.grid if keys[point] not in done]
        if len(todo) < len(self.plan.grid):
            self.err.print(
                f"resuming: {len(self.plan.grid) - len(todo)} of {len(self.plan.grid)} trees "
                f"already in {self.plan.output}"
            )
        return todo

    def run(self) -> None:
        """Check everything, then profile, predict and append every tree still to do."""
        signals = StopSignals()
        try:
            with signals, RunContext(self.plan) as context:
                RUN_RULES.run(context)
                todo = self._todo(context)
                if not todo:
                    self.console.print(f"nothing to do: every tree of the grid is already in {self.plan.output}")
                    return
                profiler = Profiler(self.plan.settings, context.sampler, context.meter)
                with self._progress() as progress:
                    self._profile(todo, context, profiler, signals, progress)
        except (KeyboardInterrupt, Exception) as exc:
            stop = signals.stop_of(exc)
            if stop is not None:
                self._stopped(stop[0])
                raise SystemExit(stop[1]) from None
            if not isinstance(exc, IreneError) or self.current is None:  # before the first node: nothing measured
                raise
            # a meter failure, or a model that does not trace at this size
            raise IreneError(
                f"{exc} (while profiling {self.current}; that tree was discarded); {len(self.finished)} finished "
                f"trees kept in {self.plan.output}; fix the cause and rerun with --resume"
            ) from None
        for warning in sorted(set(profiler.warnings))[:10]:
            self.err.print(f"[yellow]warning:[/] {warning}")
        if self.plan.meter:
            self.err.print(flag_summary(self.finished, self.plan.settings.max_spread_pct))

    def _profile(self, todo: list[GridPoint], context: RunContext, profiler: Profiler,
                 signals: StopSignals, progress: Progress) -> None:
        """Profile, predict and append each tree of ``todo`` (``current`` names the one in progress)."""
        plan = self.plan
        predictor = context.predictor
        assert predictor is not None  # the "predictor" rule loaded it
        self.err.print(f"predictor: {plan.predictor or 'shipped reference (model features)'} "
                       f"— figures stand for {predictor.hardware}")
        if plan.meter:
            overloaded = overload_warning(run_conditions())
            if overloaded:
                self.err.print(f"[yellow]warning:[/] {overloaded}")
        idle = profiler.idle_power()
        hardware = hardware_info(context.gpus)
        trees = progress.add_task("trees", total=len(todo))
        nodes = progress.add_task("nodes", total=None)
        for point in todo:
            self.current = point.describe()
            progress.update(nodes, description=self.current, completed=0, total=None)
            predicted = measure_tree(
                point, plan.trace_options(point.context_len), profiler, predictor, host_label(plan.device),
                {"framework": plan.framework, "idle_power_w": idle, "meter_options": plan.meter_options,
                 "hardware": hardware},
                on_traced=lambda traced: progress.update(nodes, total=sum(1 for _ in traced.record.nodes())),
                on_node=lambda _n: progress.advance(nodes),
            )
            with signals.deferred():  # a tree is appended whole, then a pending signal stops the run
                append_record(plan.output, predicted)
                self.finished.append(predicted)
                self.current = None
            progress.advance(trees)

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), console=self.err, transient=True,
            disable=not self.err.is_terminal,
        )

    def _stopped(self, why: str) -> None:
        where = f" while profiling {self.current} (that tree was discarded)" if self.current else ""
        self.err.print(
            f"{why}{where}: {len(self.finished)} finished trees are in {self.plan.output}; "
            f"run the same command with --resume to continue"
        )


def flag_summary(records: list[TreeRecord], max_spread_pct: float) -> str:
    """One line: how many measured nodes carry each flag."""
    nodes = [n for r in records for n in r.nodes() if n.ground_truth_energy is not None]
    counts = Counter(flag for n in nodes for flag in n.flags)
    flagged = sum(1 for n in nodes if n.flags)
    if not flagged:
        return f"flags: none of {len(nodes)} measured nodes flagged (spread ≤ {max_spread_pct:g} %, none below idle)"
    detail = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
    return f"flags: {flagged} of {len(nodes)} measured nodes flagged ({detail}; see each node's flags)"
