"""CLI command: ``irene run`` — profile models on this hardware, measure, predict, compare."""

from __future__ import annotations

import itertools
from pathlib import Path

import click

from irene_core.cli import cli, console, err_console

DEFAULT_MODEL = "bert-L4-H256"
DEFAULT_OUTPUT = Path("runs/irene-run.jsonl")


def int_list(value: str, flag: str) -> list[int]:
    try:
        items = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got '{value}'", param_hint=flag) from None
    if not items or any(i <= 0 for i in items):
        raise click.BadParameter(f"expected positive integers, got '{value}'", param_hint=flag)
    return items


@cli.command("run")
@click.option("--framework", default="torch", show_default=True, help="Framework plugin that traces the model.")
@click.option("--model", "models", multiple=True, help=f"Model name (repeatable). Default: {DEFAULT_MODEL}.")
@click.option("--batch-size", type=int, default=None, help="One batch size (default 8).")
@click.option("--seq-len", type=int, default=None, help="One sequence length (default 64).")
@click.option("--batch-sizes", default=None, help="Sweep: comma-separated batch sizes, e.g. 8,16,24,32.")
@click.option("--seq-lens", default=None, help="Sweep: comma-separated sequence lengths, e.g. 32,64,128.")
@click.option("--meter", default=None, help="Meter plugin for ground truth (emonpi, rapl, nvml…). Without: profile and predict only.")
@click.option("--option", "options", multiple=True, help="Meter option key=value (repeatable).")
@click.option("--predictor", type=click.Path(path_type=Path), default=None, help="Predictor directory (default: the shipped reference predictor, model features).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=DEFAULT_OUTPUT, show_default=True, help="Dataset JSONL; each finished tree is appended at once.")
@click.option("--resume", is_flag=True, help="Skip (model, batch, seq) already in the output.")
@click.option("--window-seconds", type=float, default=None, help="Replay window per node and round (default 0.25 s without a meter, 2 s with one).")
@click.option("--rounds", type=int, default=None, help="Rounds per node (default 1 without a meter, 3 with one).")
@click.option("--cooldown", type=float, default=0.0, show_default=True, help="Pause between nodes (s).")
@click.option("--idle-seconds", type=float, default=3.0, show_default=True, help="Idle-power measurement before profiling (with a meter).")
@click.option("--interval-ms", type=float, default=170.0, show_default=True, help="Resource sampling interval.")
@click.option("--device", default="cpu", show_default=True, help="Device to run on (cpu, cuda).")
@click.option("--attention", default="eager", show_default=True, help="Attention implementation (eager shows MatMul/Softmax).")
@click.option("--html", type=click.Path(path_type=Path), default=None, help="Also write a self-contained HTML report.")
@click.option("--depth", type=int, default=3, show_default=True, help="Depth of the printed energy tree.")
def run_cmd(framework: str, models: tuple[str, ...], batch_size: int | None, seq_len: int | None,
            batch_sizes: str | None, seq_lens: str | None, meter: str | None, options: tuple[str, ...],
            predictor: Path | None, output: Path, resume: bool, window_seconds: float | None,
            rounds: int | None, cooldown: float, idle_seconds: float, interval_ms: float, device: str,
            attention: str, html: Path | None, depth: int) -> None:
    """Profile a model on this hardware node by node, measure ground truth with a meter, predict, compare.

    Without --meter this profiles (latency, resource use) and predicts only.
    """
    from irene_core.meter import parse_option_pairs
    from irene_core.run import RunSettings
    from irene_core.run_session import RunPlan, RunSession

    if batch_size is not None and batch_sizes is not None:
        raise click.UsageError("give --batch-size or --batch-sizes, not both")
    if seq_len is not None and seq_lens is not None:
        raise click.UsageError("give --seq-len or --seq-lens, not both")
    batches = int_list(batch_sizes, "--batch-sizes") if batch_sizes else [batch_size or 8]
    seqs = int_list(seq_lens, "--seq-lens") if seq_lens else [seq_len or 64]
    plan = RunPlan(
        framework=framework,
        grid=[(m, b, s) for m, b, s in itertools.product(models or [DEFAULT_MODEL], batches, seqs)],
        meter=meter,
        meter_options=parse_option_pairs(options),
        predictor_dir=predictor,
        output=output,
        resume=resume,
        interval_ms=interval_ms,
        device=device,
        attention=attention,
        html=html,
        depth=depth,
        settings=RunSettings(
            window_seconds=window_seconds if window_seconds is not None else (2.0 if meter else 0.25),
            rounds=rounds if rounds is not None else (3 if meter else 1),
            cooldown_seconds=cooldown,
            idle_seconds=idle_seconds,
        ),
    )
    RunSession(plan, console, err_console).run()
