"""CLI command: ``irene run`` — profile models on this hardware, measure, predict, compare."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import click

from irene_core.cli import options
from irene_core.cli.console import console, err_console
from irene_core.tree.schema import TreeRecord

DEFAULT_MODEL = "bert-L4-H256"
DEFAULT_OUTPUT = Path("runs/irene-run.jsonl")


@click.command("run")
@options.framework
@click.option("--model", "models", multiple=True, help=f"Model name (repeatable). Default: {DEFAULT_MODEL}.")
@options.sizes
@click.option(
    "--meter",
    default=None,
    help="Meter plugin for ground truth (emonpi, rapl, nvml…). Without: profile and predict only.",
)
@options.meter_options
@click.option("--sampler", default="resource", show_default=True, help="Resource-sampler plugin (kind features).")
@options.predictor
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=DEFAULT_OUTPUT,
    show_default=True,
    help="Dataset JSONL; each finished tree is appended at once.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Skip trees whose key (model, size, phase, dtype, attention, device) is in the output.",
)
@click.option(
    "--window-seconds",
    type=options.POSITIVE,
    default=None,
    help="Replay window per node and round (default 0.25 s without a meter, 2 s with one).",
)
@click.option("--rounds", type=int, default=None, help="Rounds per node (default 1 without a meter, 3 with one).")
@click.option(
    "--max-spread-pct",
    type=options.POSITIVE,
    default=5.0,
    show_default=True,
    help="Flag a node 'spread' when its energy varies more than this between rounds (CV, %).",
)
@click.option("--no-dedup", is_flag=True, help="Measure every node, not one per class of identical nodes.")
@click.option("--cooldown", type=options.NON_NEGATIVE, default=0.0, show_default=True, help="Pause between nodes (s).")
@click.option(
    "--idle-seconds",
    type=options.NON_NEGATIVE,
    default=3.0,
    show_default=True,
    help="Idle-power measurement before profiling (with a meter).",
)
@click.option(
    "--interval-ms", type=options.POSITIVE, default=170.0, show_default=True, help="Resource sampling interval."
)
@options.device
@options.attention
@options.phases
@click.option("--json", "as_json", is_flag=True,
              help="Print each finished tree's key and per-token figures as JSON lines.")
@click.option("--html", type=click.Path(path_type=Path), default=None, help="Also write a self-contained HTML report.")
@click.option("--depth", type=int, default=3, show_default=True, help="Depth of the printed energy tree.")
def run_cmd(framework: str, models: tuple[str, ...], batch_sizes: tuple[int, ...], seq_lens: tuple[int, ...],
            meter: str | None, meter_options: tuple[str, ...], sampler: str, predictor: str | None, output: Path,
            resume: bool, window_seconds: float | None, rounds: int | None, max_spread_pct: float, no_dedup: bool,
            cooldown: float,
            idle_seconds: float, interval_ms: float, device: str, attention: str, phase: str,
            contexts: tuple[int, ...] | None, dtype: str | None, logits: str, as_json: bool, html: Path | None,
            depth: int) -> None:
    """Profile a model on this hardware node by node, measure ground truth with a meter, predict, compare.

    Without --meter this profiles (latency, resource use) and predicts only. Every input is checked
    before the first node is profiled; Ctrl-C, SIGTERM or SIGHUP keep the finished trees (--resume).
    """
    from irene_core.metering.meter import parse_option_pairs
    from irene_core.profiling.profiler import RunSettings
    from irene_core.profiling.session import GridPoint, RunPlan, RunSession

    plan = RunPlan(
        framework=framework,
        grid=[GridPoint(*point) for point in itertools.product(
            models or [DEFAULT_MODEL], batch_sizes, options.phase_seq_lens(seq_lens, phase), contexts or (None,))],
        phase=phase,
        dtype=dtype,
        logits=logits,
        meter=meter,
        meter_options=parse_option_pairs(meter_options),
        predictor=predictor,
        output=output,
        resume=resume,
        interval_ms=interval_ms,
        device=device,
        attention=attention,
        sampler=sampler,
        html=html,
        settings=RunSettings(
            window_seconds=window_seconds if window_seconds is not None else (2.0 if meter else 0.25),
            rounds=rounds if rounds is not None else (3 if meter else 1),
            cooldown_seconds=cooldown,
            idle_seconds=idle_seconds,
            max_spread_pct=max_spread_pct,
            dedup=not no_dedup,
        ),
    )
    session = RunSession(plan, console, err_console)
    session.run()
    if session.finished and as_json:
        _json_lines(session.finished)
    elif session.finished:
        _summary(session.finished, plan.output, depth, measured=meter is not None, html=html)


def _summary(finished: list[TreeRecord], output: Path, depth: int, measured: bool, html: Path | None) -> None:
    """The last tree's energy tree and bottlenecks, measured vs predicted, the records' notices and the
    HTML report."""
    from irene_core.cli.views import bottleneck_table, energy_tree, error_table, print_notices
    from irene_core.predictor.evaluation import evaluate
    from irene_core.tree.per_token import describe, per_token

    print_notices(finished)
    for record in finished:
        counts = record.meta["profiling"]
        console.print(f"{record.key.describe()}: {counts['classes']} classes for {counts['nodes']} nodes"
                      + ("" if counts["dedup"] else " (--no-dedup: every node measured)"))
    for record in finished:
        console.print(f"per token, {record.key.describe()}: {describe(per_token(record))}", highlight=False)
    last = finished[-1]
    console.print(energy_tree(last, depth=depth))
    console.print(bottleneck_table(last))
    if measured:
        console.print(
            error_table(evaluate(finished, finished), "measured vs predicted: % error (mean of 100·|pred−gt|/gt)")
        )
    if html is not None:
        from irene_core.tree.atomic import atomic_write
        from irene_core.viz.report import render_html

        with atomic_write(html) as handle:
            handle.write(render_html(finished, title=f"IrEne run: {last.model_name}"))
        console.print(f"HTML report: {html}")
    console.print(f"{len(finished)} trees appended to {output}")


def _json_lines(finished: list[TreeRecord]) -> None:
    """One JSON line per finished tree: its key and per-token figures (the trees are in the output file)."""
    from irene_core.tree.per_token import per_token

    for record in finished:
        line = {"key": record.key._asdict(), "per_token": per_token(record).model_dump()}
        click.echo(json.dumps(line, separators=(",", ":")))
