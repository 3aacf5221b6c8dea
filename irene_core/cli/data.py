"""CLI commands on datasets: ``irene import-csv``, ``irene export`` and ``irene evaluate``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import click
from rich.table import Table

from irene_core.cli.console import console, err_console

#: ``irene export --format`` values: the original IrEne code's layout, and ours (schema v2).
EXPORT_FORMATS = ("irene", "v2")


@click.command("import-csv")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Output JSONL.")
@click.option("--device", default=None, help="Hardware label (default: the directory name).")
@click.option("--models", default=None, help="Comma-separated model names to keep (default: all).")
def import_csv_cmd(directory: Path, output: Path, device: str | None, models: str | None) -> None:
    """Rebuild one tree per (model, batch, seq) from the paper's four CSV levels."""
    from irene_core.tree.jsonl import write_records
    from irene_core.tree.paper_csv import import_csv_dir

    records = import_csv_dir(directory, device=device, models=models.split(",") if models else None)
    write_records(output, records)
    table = Table(title=f"{len(records)} trees → {output}")
    for col in ("model", "trees", "model nodes", "module nodes", "ml nodes"):
        table.add_column(col, justify="right" if col != "model" else "left")
    counts: dict[str, Counter[str]] = {}
    for r in records:
        c = counts.setdefault(r.model_name, Counter())
        c["trees"] += 1
        for n in r.nodes():
            c[n.level] += 1
    for model, c in sorted(counts.items()):
        table.add_row(model, str(c["trees"]), str(c["model"]), str(c["module"]), str(c["ml"]))
    console.print(table)


@click.command("export")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Output JSONL.")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), required=True,
              help="irene: the original IrEne code's layout; v2: ours.")
def export_cmd(data: Path, output: Path, fmt: str) -> None:
    """Write a dataset for another client: ``irene`` (the original IrEne code's layout) or ``v2`` (ours)."""
    from irene_core.tree.irene_format import OriginalExport
    from irene_core.tree.jsonl import read_records, write_records

    if fmt == "v2":
        count = write_records(output, read_records(data))
        console.print(f"{count} trees → {output} (schema v2)", highlight=False, soft_wrap=True)
        return
    export = OriginalExport()
    export.write(output, read_records(data))
    console.print(
        f"{export.records} trees → {output} (the original IrEne layout; {export.dropped_synthetic} OwnOps "
        f"pseudo-nodes dropped, {export.leaves_typed_ml} childless nodes typed ml)",
        highlight=False,
        soft_wrap=True,
    )
    for note in export.notes():
        err_console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)


@click.command("evaluate")
@click.argument("truth", type=click.Path(path_type=Path))
@click.argument("pred", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def evaluate_cmd(truth: Path, pred: Path, as_json: bool) -> None:
    """Mean percentage error 100·|pred−gt|/gt per level, per model and overall."""
    from irene_core.cli.views import error_table
    from irene_core.predictor.evaluation import evaluate
    from irene_core.tree.jsonl import read_records

    report = evaluate(read_records(truth), read_records(pred))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    console.print(error_table(report))
