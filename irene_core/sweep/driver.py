"""The sweep's driver: the one writer of the dataset, and the one who hands out tasks.

Before anything is submitted: the plan, ``irene run``'s rules that need no node (grid, framework,
predictor, every model traced on the meta device, the output and its lock), the cluster's resources.
Then each live node gets its measuring actor(s) (:mod:`.cluster`, :mod:`.actors`), checked for nodes
joining every :data:`NODE_SCAN_S`; an idle actor gets the next task, one at a time, and each finished
tree is appended at once with the crash-safe writer, under the dataset lock held all along.

``--resume`` skips a task when the output holds its key measured on the same kind of device as the
actor's (:func:`~irene_core.sweep.plan.device_kind`). A task whose actor dies (a node lost, a worker
crash) or whose meter fails is retried, on another node when one is eligible, up to ``retries`` times;
then it is reported in the summary. Ctrl-C (or SIGTERM, SIGHUP) cancels what is in flight, ends the
actors and keeps every finished tree.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from irene_core.errors import IreneError
from irene_core.profiling.run_checks import RUN_RULES, RunContext
from irene_core.profiling.session import StopSignals
from irene_core.sweep.actors import MeasuringActor, subset
from irene_core.sweep.cluster import Slot, check_offered, meter_scope, slots
from irene_core.sweep.plan import SweepPlan, SweepTask, device_kind
from irene_core.tree.jsonl import append_record, parse_line, parse_lines, record_from_dict, record_key_of, repair_tail
from irene_core.tree.schema import RecordKey

#: ``irene run``'s rules that need the measuring node (its device's memory, GPUs, sampler and meter): each
#: actor checks them.
NODE_ONLY = frozenset({"resources", "gpus", "sampler", "meter", "sampler-starts", "meter-reads",
                       "predictor-features"})
#: ``irene run``'s other rules, checked by the driver before anything is submitted.
DRIVER_RULES = subset(RUN_RULES, "sweep", NODE_ONLY)
#: Seconds between looks at the cluster's nodes (a node that joins gets an actor).
NODE_SCAN_S = 1.0
#: Seconds a sweep waits for a node that can run it when none is left, before it gives up.
NO_NODE_TIMEOUT_S = 120.0
#: A node is given up after this many dead actors, or meter failures in a row.
NODE_STRIKES = 2


@dataclass
class Pending:
    """A task still to finish, and its failures so far."""

    task: SweepTask
    attempts: int = 0
    failed_on: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


@dataclass
class Worker:
    """One measuring actor and what it does now."""

    slot: Slot
    handle: Any
    kind: str | None = None
    prepared: bool = False
    strikes: int = 0


@dataclass
class Call:
    """A call in flight: which actor, what for, and for which task."""

    worker: Worker
    what: str  # describe, prepare, measure
    pending: Pending | None = None
    started: float = field(default_factory=time.perf_counter)


@dataclass
class SweepResult:
    """What a sweep did: trees appended (by node), skipped (already there), failed (with why)."""

    appended: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # node → why it measures nothing
    overheads_s: list[float] = field(default_factory=list)  # per tree: wall − the actor's own time


class SweepDriver:
    """One sweep: check, connect (``ray`` is the connected module), dispatch, append, summarise."""

    def __init__(self, ray: Any, plan: SweepPlan, output: Path, *, resume: bool, retries: int, err: Console):
        self.ray = ray
        self.plan = plan
        self.output = output
        self.resume = resume
        self.retries = retries
        self.err = err
        self.scope = meter_scope(plan.meter)
        self.result = SweepResult()
        self.queue: deque[Pending] = deque()
        self.workers: dict[Slot, Worker] = {}
        self.calls: dict[Any, Call] = {}
        self.deaths: Counter[str] = Counter()
        self.done: dict[RecordKey, set[str | None]] = {}
        self._remote = ray.remote(MeasuringActor)
        self._plan_json = plan.model_dump_json()

    def run(self, tasks: list[SweepTask]) -> SweepResult:
        """Measure every task not yet done (``tasks`` from :func:`checked`, which holds the dataset lock)."""
        check_offered(self.ray, self.scope)
        self.queue.extend(Pending(t) for t in self._todo(tasks))
        signals = StopSignals()
        with signals, self._progress() as progress:
            bar = progress.add_task("trees", total=len(self.queue))
            try:
                self._loop(signals, progress, bar)
            except (KeyboardInterrupt, Exception) as exc:
                stop = signals.stop_of(exc)
                if stop is None:
                    raise
                self._cancel()
                self.err.print(f"{stop[0]}: {sum(self.result.appended.values())} finished trees are in "
                               f"{self.output}; run the same command with --resume to continue")
                raise SystemExit(stop[1]) from None
            finally:
                self._end_actors()
        for pending in self.queue:  # left when no node could take them
            self._fail(pending, "no node left that can measure it")
        return self.result

    def _todo(self, tasks: list[SweepTask]) -> list[SweepTask]:
        """The tasks; a clash with the output's trees is refused without ``--resume`` (with it, the kind
        of device decides at dispatch)."""
        if self.output.exists():
            cut = repair_tail(self.output) if self.resume else 0
            if cut:
                self.err.print(f"repaired {self.output}: removed a truncated last line ({cut} bytes)")
            for _, data in parse_lines(self.output):
                key = record_key_of(data)
                self.done.setdefault(key._replace(device=None), set()).add(device_kind(key.device))
        clash = [t for t in tasks if t.key(self.plan.attention) in self.done]
        if clash and not self.resume:
            raise IreneError(f"{self.output} already holds trees of this plan ({clash[0].describe(self.plan.attention)}"
                             f"…); pass --resume to skip them or -o another file")
        return tasks

    def _loop(self, signals: StopSignals, progress: Progress, bar: Any) -> None:
        scanned = 0.0
        waiting_since: float | None = None
        while self.queue or any(c.what == "measure" for c in self.calls.values()):
            if time.monotonic() - scanned >= NODE_SCAN_S:
                self._place_actors()
                scanned = time.monotonic()
            skipped = self._dispatch()
            if skipped:
                progress.advance(bar, skipped)
            if not self.calls:  # no actor alive or starting: wait for a node, then give up
                waiting_since = waiting_since or time.monotonic()
                if time.monotonic() - waiting_since > NO_NODE_TIMEOUT_S or not self._candidates():
                    return
                time.sleep(NODE_SCAN_S)
                continue
            waiting_since = None
            ready, _ = self.ray.wait(list(self.calls), num_returns=1, timeout=NODE_SCAN_S)
            for ref in ready:
                call = self.calls.pop(ref)
                if self._finish(ref, call, signals):
                    progress.advance(bar)
                    progress.update(bar, description=f"trees ({len(self.workers)} actors)")

    def _candidates(self) -> bool:
        """Whether a live node could still get an actor (a starting node has no actor yet)."""
        return any(self._eligible(slot) for node in self.ray.nodes() for slot in slots(node, self.scope))

    def _eligible(self, slot: Slot) -> bool:
        return slot.node_id not in self.result.refused and self.deaths[slot.node_id] < NODE_STRIKES

    def _place_actors(self) -> None:
        """An actor for every slot of every live node that has none (nodes that joined included)."""
        for node in self.ray.nodes():
            for slot in slots(node, self.scope):
                if slot in self.workers or not self._eligible(slot):
                    continue
                handle = self._remote.options(**slot.options).remote(
                    self._plan_json, str(self.output), int(slot.options["num_cpus"]))
                worker = self.workers[slot] = Worker(slot, handle)
                self.calls[handle.describe.remote()] = Call(worker, "describe")

    def _busy(self, worker: Worker) -> bool:
        return any(c.worker is worker for c in self.calls.values())

    def _dispatch(self) -> int:
        """Give each idle actor its next task; returns how many tasks were skipped as done (--resume)."""
        skipped = 0
        for worker in list(self.workers.values()):
            if worker.kind is None or self._busy(worker):
                continue
            pending, skips = self._next_for(worker)
            skipped += skips
            if pending is None:
                continue
            if not worker.prepared:
                self.queue.appendleft(pending)  # it waits for this actor's preparation
                self.calls[worker.handle.prepare.remote()] = Call(worker, "prepare")
                continue
            ref = worker.handle.measure.remote(json.dumps(pending.task), pending.attempts, worker.slot.node_id)
            self.calls[ref] = Call(worker, "measure", pending)
        return skipped

    def _next_for(self, worker: Worker) -> tuple[Pending | None, int]:
        """The first task this actor should take: done ones (same kind of device) are dropped; a task
        that failed on this node waits for another node while one is up."""
        others = {w.slot.node_id for w in self.workers.values() if w.kind is not None}
        skipped = 0
        for pending in list(self.queue):
            if self.resume and worker.kind in self.done.get(pending.task.key(self.plan.attention), ()):
                self.queue.remove(pending)
                self.result.skipped += 1
                skipped += 1
                continue
            if worker.slot.node_id in pending.failed_on and others - pending.failed_on:
                continue
            self.queue.remove(pending)
            return pending, skipped
        return None, skipped

    def _finish(self, ref: Any, call: Call, signals: StopSignals) -> bool:
        """Handle a finished call; True when a tree was appended."""
        worker = call.worker
        try:
            answer = json.loads(self.ray.get(ref))
        except self.ray.exceptions.RayActorError as exc:
            self.deaths[worker.slot.node_id] += 1
            self.workers.pop(worker.slot, None)
            self._retry(call.pending, worker, f"its actor died ({_first_line(exc)})")
            return False
        except self.ray.exceptions.RayError as exc:
            answer = {"error": _first_line(exc), "kind": "meter"}
        if "error" in answer:
            return self._failed(call, answer["error"], answer["kind"])
        if call.what == "describe":
            worker.kind = answer["kind"]
        elif call.what == "prepare":
            worker.prepared = True
        else:
            assert call.pending is not None
            record = record_from_dict(parse_line(answer["tree"].encode("utf-8")))
            with signals.deferred():  # a tree is appended whole, then a pending signal stops the sweep
                append_record(self.output, record)
            worker.strikes = 0
            self.result.appended[worker.slot.name] += 1
            self.result.overheads_s.append(time.perf_counter() - call.started - answer["seconds"])
            return True
        return False

    def _failed(self, call: Call, error: str, kind: str) -> bool:
        """An actor answered an error: a node that cannot measure is given up; a task is retried or failed."""
        worker = call.worker
        if call.what != "measure":
            self.result.refused[worker.slot.node_id] = f"{worker.slot.name}: {error}"
            self._retire(worker)
            return False
        assert call.pending is not None
        if kind == "input":  # the model or size fails anywhere: no retry
            self._fail(call.pending, error)
            return False
        worker.strikes += 1
        if worker.strikes >= NODE_STRIKES:
            self.result.refused[worker.slot.node_id] = f"{worker.slot.name}: {NODE_STRIKES} meter failures in a row"
            self._retire(worker)
        self._retry(call.pending, worker, error)
        return False

    def _retry(self, pending: Pending | None, worker: Worker, error: str) -> None:
        """Back to the front of the queue for another node, or failed after ``retries`` retries."""
        if pending is None:  # an actor died before measuring: the node is tried again while it is up
            return
        pending.attempts += 1
        pending.failed_on.add(worker.slot.node_id)
        pending.errors.append(f"{worker.slot.name}: {error}")
        if pending.attempts > self.retries:
            self._fail(pending, f"{pending.attempts} attempts failed; last on {pending.errors[-1]}")
        else:
            self.queue.appendleft(pending)

    def _fail(self, pending: Pending, why: str) -> None:
        self.result.failed.append((pending.task.describe(self.plan.attention), why))

    def _retire(self, worker: Worker) -> None:
        with contextlib.suppress(Exception):  # already dead
            self.ray.kill(worker.handle)
        self.workers.pop(worker.slot, None)
        for ref in [r for r, c in self.calls.items() if c.worker is worker]:
            self.calls.pop(ref)

    def _cancel(self) -> None:
        """Ctrl-C: cancel what is in flight (the actors discard their open windows), then end the actors."""
        measuring = [r for r, c in self.calls.items() if c.what == "measure"]
        for ref in measuring:
            with contextlib.suppress(Exception):
                self.ray.cancel(ref)
        with contextlib.suppress(Exception):
            self.ray.wait(measuring, num_returns=len(measuring), timeout=2.0)
        self.calls.clear()

    def _end_actors(self) -> None:
        for worker in list(self.workers.values()):
            self._retire(worker)

    def _progress(self) -> Progress:
        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("ETA"), TimeRemainingColumn(), console=self.err, transient=True,
                        disable=not self.err.is_terminal)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


@contextlib.contextmanager
def checked(plan: SweepPlan, output: Path) -> Iterator[list[SweepTask]]:
    """``irene run``'s node-free rules (:data:`DRIVER_RULES`) for each (phase, dtype) group of the plan,
    on the driver; yields the tasks with their dtypes resolved, while the dataset lock is held."""
    if plan.meter is not None:
        meter_scope(plan.meter)  # an unknown meter names the plugins installed
    resolved: dict[tuple[str, str | None, str], str] = {}
    with contextlib.ExitStack() as stack:
        for group in plan.groups():
            context = stack.enter_context(RunContext(plan.run_plan(group, output, {})))
            DRIVER_RULES.run(context)
            resolved.update({(*group, model): traced.dtype for model, traced in context.traces.items()})
        yield [t._replace(dtype=resolved[(*t.group, t.model)]) for t in plan.tasks()]
