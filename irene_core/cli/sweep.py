"""CLI command: ``irene sweep`` — a grid of trees measured on a Ray cluster (``docs/sweep.md``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from irene_core.cli import options
from irene_core.cli.console import console, err_console
from irene_core.errors import IreneError

if TYPE_CHECKING:
    from irene_core.sweep.plan import SweepPlan

DEFAULT_OUTPUT = Path("runs/irene-sweep.jsonl")
#: The flags a plan file replaces (``--plan`` with any of them is refused).
PLAN_FLAGS = ("framework", "models", "batch_sizes", "seq_lens", "meter", "sampler", "predictor", "window_seconds",
              "rounds", "max_spread_pct", "no_dedup", "cooldown", "idle_seconds", "interval_ms", "device", "attention",
              "phase", "contexts", "dtype", "logits")


@click.command("sweep")
@click.option("--plan", "plan_file", type=click.Path(path_type=Path), default=None,
              help="Plan file (JSON or YAML; keys in docs/sweep.md) instead of the grid flags.")
@options.framework
@click.option("--model", "models", multiple=True, help="Model name (repeatable). Default: bert-L4-H256.")
@options.sizes
@click.option("--meter", default=None, help="Meter plugin; each node gives its options (IRENE_METER_OPTIONS).")
@click.option("--sampler", default="resource", show_default=True, help="Resource-sampler plugin (kind features).")
@click.option("--predictor", default=None,
              help=f"{options.PREDICTOR_NAMES.capitalize()}, readable on every node "
                   "(default: reference).")
@click.option("--window-seconds", type=options.POSITIVE, default=None,
              help="Replay window per node and round (default 0.25 s without a meter, 2 s with one).")
@click.option("--rounds", type=click.IntRange(min=1), default=None,
              help="Rounds per node (default 1 without a meter, 3 with one).")
@click.option("--max-spread-pct", type=options.POSITIVE, default=5.0, show_default=True,
              help="Flag a node 'spread' when its energy varies more than this between rounds (CV, %).")
@click.option("--no-dedup", is_flag=True, help="Measure every node, not one per class of identical nodes.")
@click.option("--cooldown", type=options.NON_NEGATIVE, default=0.0, show_default=True, help="Pause between nodes (s).")
@click.option("--idle-seconds", type=options.NON_NEGATIVE, default=3.0, show_default=True,
              help="Idle-power measurement on each node before it measures (with a meter).")
@click.option("--interval-ms", type=options.POSITIVE, default=170.0, show_default=True,
              help="Resource sampling interval.")
@click.option("--device", default="cpu", show_default=True, help="Kind of device: cpu or cuda (Ray assigns the GPU).")
@options.attention
@options.phases
@click.option("--cluster", default="local", show_default=True,
              help="'local' (start Ray here, on 127.0.0.1), 'auto' (the running cluster) or HOST:PORT.")
@click.option("--plan-only", is_flag=True, help="List the tasks and exit (no cluster).")
@click.option("--resume", is_flag=True,
              help="Skip tasks whose tree is in the output, measured on the same kind of device.")
@click.option("--retries", type=click.IntRange(min=0), default=2, show_default=True,
              help="Retries of a task whose worker dies or whose meter fails (on another node when one is up).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=DEFAULT_OUTPUT, show_default=True,
              help="Dataset JSONL; the driver appends each finished tree at once.")
def sweep_cmd(plan_file: Path | None, cluster: str, plan_only: bool, resume: bool, retries: int,
              output: Path, **grid: Any) -> None:
    """Measure a grid of models and sizes on a Ray cluster: one measuring actor per node and meter scope.

    Host-scoped meters (rapl, emonpi) take the node's one unit of irene_meter_host, GPU-scoped ones
    (nvml) one GPU, so no two measurements overlap on what one meter sees. Every input is checked
    before a task starts; Ctrl-C keeps the finished trees (--resume).
    """
    from irene_core.sweep.plan import load_plan

    if plan_file is not None:
        ctx = click.get_current_context()
        given = [p.opts[-1] for p in ctx.command.params
                 if p.name in PLAN_FLAGS and ctx.get_parameter_source(p.name) is ParameterSource.COMMANDLINE]
        if given:
            raise IreneError(f"--plan {plan_file} replaces the grid flags: drop {given[0]}")
        plan = load_plan(plan_file)
    else:
        plan = _plan_from_flags(grid)
    if plan_only:
        _list_tasks(plan)
        return
    _sweep(plan, cluster, output, resume=resume, retries=retries)


def _plan_from_flags(grid: dict[str, Any]) -> SweepPlan:
    """The plan the flags describe (one line on a bad value)."""
    from pydantic import ValidationError

    from irene_core.cli.run import DEFAULT_MODEL
    from irene_core.sweep.plan import SweepPlan, plan_problem

    models, phase, contexts, dtype, no_dedup = (grid.pop(k) for k in ("models", "phase", "contexts", "dtype",
                                                                      "no_dedup"))
    try:
        return SweepPlan(**grid, models=list(models or [DEFAULT_MODEL]), phases=[phase],
                         context_lens=list(contexts or []), dtypes=[dtype], dedup=not no_dedup)
    except ValidationError as exc:
        raise IreneError(plan_problem(exc)) from None


def _list_tasks(plan: SweepPlan) -> None:
    tasks = plan.tasks()
    for number, task in enumerate(tasks, 1):
        console.print(f"{number:>4}  {task.describe(plan.attention)}", highlight=False)
    console.print(f"{len(tasks)} tasks on {plan.device}" + (f", meter {plan.meter}" if plan.meter else ""))


def _sweep(plan: SweepPlan, cluster: str, output: Path, *, resume: bool, retries: int) -> None:
    from irene_core.sweep.cluster import connect, probe
    from irene_core.sweep.driver import SweepDriver, checked

    if cluster not in ("local", "auto"):
        probe(cluster)  # an unreachable address fails before the models are traced
    with checked(plan, output) as tasks:
        ray = connect(cluster)
        try:
            result = SweepDriver(ray, plan, output, resume=resume, retries=retries, err=err_console).run(tasks)
        finally:
            ray.shutdown()
    appended = sum(result.appended.values())
    where = ", ".join(f"{node} {count}" for node, count in sorted(result.appended.items()))
    console.print(f"{appended} trees appended to {output}" + (f" ({where})" if where else "")
                  + (f"; {result.skipped} already there" if result.skipped else ""), highlight=False)
    for why in result.refused.values():
        err_console.print(f"[yellow]node measured nothing:[/] {why}", highlight=False, soft_wrap=True)
    for task, why in result.failed:
        err_console.print(f"[red]failed:[/] {task}: {why}", highlight=False, soft_wrap=True)
    if result.failed:
        raise SystemExit(1)
