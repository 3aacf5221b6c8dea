"""CLI commands: ``irene train``, ``irene predict``, ``irene crossvalidate``.

Heavy imports (numpy, the predictor) happen inside the commands so that ``irene --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from irene_core.cli import options
from irene_core.cli.console import console, err_console
from irene_core.cli.data import fill_bytes_moved
from irene_core.cli.views import fmt_pct, noise_floor_text
from irene_core.predictor.splits import BUILTIN_SPLITS
from irene_core.tree.schema import LEVELS

if TYPE_CHECKING:
    from rich.progress import TaskID

FEATURE_CHOICES = click.Choice(["all", "model", "no-gpu-energy", "resource"])
_CONFIG_HELP = "Predictor config: a JSON file, or a preset ('default', 'paper', 'log-ridge'). See docs/predictor.md."
_FEATURES_HELP = "Feature set (overrides the config): all, model (no run needed), no-gpu-energy, resource."


@click.command("train")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Predictor directory to write.")
@click.option("--config", "config", default=None, help=_CONFIG_HELP)
@click.option("--features", type=FEATURE_CHOICES, default=None, help=_FEATURES_HELP)
@click.option("--hardware", default=None, help="What DATA was measured on (default: the records' device).")
def train_cmd(data: Path, output: Path, config: str | None, features: str | None, hardware: str | None) -> None:
    """Train a predictor on measured trees (JSONL) and save it to a directory."""
    from irene_core.predictor.predictor import Predictor
    from irene_core.tree.jsonl import load_records

    records = load_records(data)
    fill_bytes_moved(records)
    predictor = Predictor(config, features=features, hardware=hardware)
    with err_console.status(f"training on {len(records)} trees…"):
        predictor.fit(records)
    predictor.save(output)
    report = predictor.training_
    table = Table(title=f"primitive regressors ({predictor.feature_set} features)")
    for col in ("primitive", "rows", "model"):
        table.add_column(col, justify="right" if col == "rows" else "left")
    for name, info in report["leaves"]["primitives"].items():
        table.add_row(name, str(info["rows"]), info["model"])
    widening = math.exp(report["intervals"]["unseen_kind_widening"])
    table.add_row("(generic fallback)", "", f"{report['leaves']['generic']}; its intervals ×{widening:.3g} each way",
                  style="dim")
    console.print(table)
    if report["intervals"]["measurement_noise"]:
        console.print(f"no interval narrower than {noise_floor_text(report['intervals']['measurement_noise'])}",
                      highlight=False)
    if report["absorbed_kinds"]:
        console.print(f"kept in their parents' own work by the training trees: {', '.join(report['absorbed_kinds'])}")
    for name, rows in report["leaves"]["skipped"].items():
        err_console.print(
            f"[yellow]skipped:[/] primitive '{name}': only {rows} training leaves (< min_rows); "
            "the generic regressor predicts it"
        )
    for name, count in report["skipped_nodes"].items():
        if count:
            err_console.print(f"[yellow]skipped:[/] {count} node(s) with {name}")
    for name, count in report["dropped_features"].items():
        err_console.print(f"[yellow]dropped feature:[/] '{name}' is missing on {count} node(s)")
    console.print(
        f"predictor → {output} (features: {', '.join(predictor.feature_names_)}; hardware: {predictor.hardware})"
    )


@click.command("predict")
@click.argument("data", type=click.Path(path_type=Path))
@options.predictor
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), required=True, help="Output JSONL with predicted energies."
)
def predict_cmd(data: Path, predictor: str | None, output: Path) -> None:
    """Predict the energy of every node of the trees in DATA (with a 90 % interval and extrapolation marks)."""
    from irene_core.cli.views import print_notices
    from irene_core.predictor.predictor import load_predictor
    from irene_core.tree.jsonl import load_records, write_records

    records = load_records(data)
    model = load_predictor(predictor)
    if predictor is None:
        err_console.print(
            "no --predictor: using the reference predictor (model features), "
            f"a what-if estimate for {model.hardware}"
        )
    if "mem_bytes_moved" in model.feature_names_:
        fill_bytes_moved(records, "this predictor needs it")
    predicted = model.predict(records)
    write_records(output, predicted)
    print_notices(predicted)
    table = Table(title=f"predicted energy per call → {output}")
    for col in ("model", "batch", "seq", "predicted J", "90 % interval J", "extrapolated", "measured J",
                "OwnOps % (all levels)"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for record in predicted:
        root = record.root
        own = root.own_ops()
        measured = "—" if root.ground_truth_energy is None else f"{root.ground_truth_energy:.4g}"
        synthetic = sum(n.predicted_energy for n in root.walk() if n.synthetic and n.predicted_energy is not None)
        share = 100 * synthetic / root.predicted_energy if root.predicted_energy else 0.0
        table.add_row(
            record.model_name,
            str(record.batch_size),
            str(record.seq_len),
            f"{root.predicted_energy:.4g}",
            "—" if root.predicted_low is None or root.predicted_high is None
            else f"{root.predicted_low:.4g}–{root.predicted_high:.4g}",
            "yes" if root.extrapolated else "no",
            measured,
            f"{share:.1f}" if own else "—",
        )
    console.print(table)
    console.print(f"figures are for: {model.hardware} ({model.feature_set} features)")


@click.command("crossvalidate")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--config", "config", default=None, help=_CONFIG_HELP)
@click.option("--features", type=FEATURE_CHOICES, default=None, help=_FEATURES_HELP)
@click.option("--models", default=None, help="Comma-separated models of the experiment (default: the paper's six).")
@click.option(
    "--split",
    "splits",
    multiple=True,
    type=click.Choice([*BUILTIN_SPLITS, "all"]),
    help="Built-in split (repeatable; default: model = leave-one-model-out; all = every built-in the data allows, "
    "the others skipped with a warning).",
)
@click.option(
    "--split-file",
    "split_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="JSON file of further splits (repeatable; see docs/predictor.md).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Folds trained side by side, each in a worker process with one BLAS thread (up to one per core).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def crossvalidate_cmd(
    data: Path,
    config: str | None,
    features: str | None,
    models: str | None,
    splits: tuple[str, ...],
    split_files: tuple[Path, ...],
    jobs: int,
    as_json: bool,
) -> None:
    """Cross-validation over splits (default: leave one model out): % error per level per test model."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from irene_core.errors import IreneError
    from irene_core.predictor.config import load_config
    from irene_core.predictor.crossvalidation import crossvalidate, experiment_models
    from irene_core.predictor.splits import plan_folds, resolve_splits
    from irene_core.predictor.workers import fold_workers
    from irene_core.tree.jsonl import load_records

    chosen_splits = resolve_splits(splits, split_files)
    records = load_records(data)
    chosen = experiment_models(records, [m.strip() for m in models.split(",") if m.strip()] if models else None)
    records = [r for r in records if r.model_name in chosen]  # the experiment's trees only: those it trains on
    fill_bytes_moved(records)  # a model's trace may also give its family
    # every split's folds before any trains: bad input stops before minutes are spent; of the built-ins that
    # only `all` asked for, one the data cannot make (another grid of sizes, one family) is skipped and said
    named = {BUILTIN_SPLITS[s] for s in splits if s != "all"}
    optional = set(BUILTIN_SPLITS.values()) - named if "all" in splits else set()
    skipped: dict[str, str] = {}
    for split in chosen_splits:
        try:
            plan_folds(split, records, chosen)
        except IreneError as exc:
            if split not in optional:
                raise
            skipped[split.name] = str(exc)
            err_console.print(f"warning: {exc} (skipped by --split all)", soft_wrap=True, markup=False,
                              highlight=False)
    chosen_splits = [s for s in chosen_splits if s.name not in skipped]
    if not chosen_splits:
        raise IreneError("--split all: the data allows no built-in split (see the warnings above)")
    cfg = load_config(config, features=features)
    results = []
    with fold_workers(jobs) if jobs > 1 else contextlib.nullcontext() as workers, Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} folds"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    ) as bar:
        for split in chosen_splits:
            task = bar.add_task(split.name, total=None)

            def progress(done: int, total: int, label: str, task: TaskID = task, name: str = split.name) -> None:
                bar.update(task, total=total, completed=done, description=f"{name}: {label or 'done'}")

            results.append(crossvalidate(records, cfg, chosen, progress, split, executor=workers))
    if as_json:
        document = {"schema": 2, "splits": [r.as_json() for r in results], **({"skipped": skipped} if skipped else {})}
        click.echo(json.dumps(document, indent=2))
        return
    for result in results:
        twins = bool(result.twins)
        table = Table(title=f"split '{result.split.name}': % error ({cfg.features} features, {cfg.aggregator})")
        for col in ("test model", *(["twin left out"] if twins else []), "ml", "module", "model"):
            table.add_column(col, justify="right" if col in LEVELS else "left")
        for fold in result.folds:
            twin = [result.twins.get(fold.left_out, "")] if twins else []
            table.add_row(fold.left_out, *twin, *(fmt_pct(fold.errors[lv]) for lv in LEVELS))
        overall = result.overall
        table.add_row(
            "overall (mean of test models)", *([""] if twins else []), *(fmt_pct(overall[lv]) for lv in LEVELS),
            style="bold",
        )
        console.print(table)
        coverage = result.coverage
        covered = (
            "no intervals"
            if all(v is None for v in coverage.values())
            else ", ".join(f"{lv} {fmt_pct(None if v is None else 100 * v)} %" for lv, v in coverage.items())
        )
        console.print(
            f"worst test model (model level): {fmt_pct(result.worst_model)} %; "
            f"90 % interval coverage: {covered}; {result.seconds:.1f} s"
        )
