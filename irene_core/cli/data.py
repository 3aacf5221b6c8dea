"""CLI commands on datasets: ``irene import-csv``, ``irene export`` and ``irene evaluate``."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import click
from rich.table import Table

from irene_core.cli.console import console, err_console
from irene_core.tree.schema import TreeRecord

#: ``irene export --format`` values: the original IrEne code's layout, and ours (schema v2).
EXPORT_FORMATS = ("irene", "v2")


#: What a tree left without ``mem_bytes_moved`` means where trees are trained on.
FOR_TRAINING = "a predictor trained on them counts the paper's mem_bytes as work instead, on every tree"


#: How to give the tracer a model it does not know by name.
MODEL_PATH_HINT = "irene import-csv --model-path MODEL=CONFIG traces a model from its config"


def fill_bytes_moved(
    records: list[TreeRecord], consequence: str = FOR_TRAINING, paths: dict[str, str] | None = None
) -> None:
    """Give records that lack it the tracer's ``mem_bytes_moved`` (a meta trace per tree size; ``paths``:
    the config of a model by name) and say on stderr what could not be filled in, and its
    ``consequence`` for the command."""
    from irene_core.tracing.bytes_moved import add_bytes_moved, lacks_bytes_moved

    lacking = [r for r in records if lacks_bytes_moved(r)]
    if not lacking:
        return
    with err_console.status(f"adding mem_bytes_moved to {len(lacking)} trees (a meta trace each)…"):
        report = add_bytes_moved(lacking, paths=paths)
    if report.skipped:
        label, why = next(iter(report.skipped.items()))
        err_console.print(
            f"warning: mem_bytes_moved could not be added to {len(report.skipped)} of {len(records)} trees "
            f"(e.g. {label}: {why.split(': ')[0]}); {consequence} ({MODEL_PATH_HINT})",
            soft_wrap=True, markup=False, highlight=False,
        )


def _pairs(values: tuple[str, ...], what: str, check: Callable[[str], str | None]) -> dict[str, str]:
    """``MODEL=<what>`` flag values as a dict; ``check`` says what is wrong with a value (None: nothing)."""
    out = {}
    for value in values:
        model, sep, given = value.rpartition("=")
        wrong = "expected MODEL=" + what if not sep or not model else check(given)
        if wrong:
            raise click.BadParameter(f"'{value}': {wrong}")
        out[model] = given
    return out


def _families(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """``--family MODEL=FAMILY`` values (one-line error naming the flag on a bad one)."""
    from irene_core.tree.schema import MODEL_FAMILIES

    return _pairs(values, "FAMILY", lambda family: None if family in MODEL_FAMILIES else
                  f"FAMILY must be one of {', '.join(MODEL_FAMILIES)}")


def _model_paths(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """``--model-path MODEL=CONFIG`` values (one-line error naming the flag on a path that does not exist)."""
    return _pairs(values, "CONFIG", lambda path: None if Path(path).expanduser().exists() else f"no such path: {path}")


@click.command("import-csv")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Output JSONL.")
@click.option("--device", default=None, help="Hardware label (default: the directory name).")
@click.option("--models", default=None, help="Comma-separated model names to keep (default: all).")
@click.option(
    "--bytes-moved/--no-bytes-moved",
    default=True,
    show_default=True,
    help="Add the tracer's mem_bytes_moved to every node (one meta trace per tree size).",
)
@click.option("--family", "families", multiple=True, metavar="MODEL=FAMILY", callback=_families,
              help="meta.family (encoder, decoder, encoder-decoder) of a model the importer does not know "
                   "(the paper's are known; adding mem_bytes_moved names that of any model the tracer builds). "
                   "Repeatable.")
@click.option("--model-path", "paths", multiple=True, metavar="MODEL=CONFIG", callback=_model_paths,
              help="Trace MODEL from a config.json or a model directory holding one, to add its mem_bytes_moved "
                   "and family (a model the tracer knows by name, or finds in the local Hugging Face cache, "
                   "needs none). Repeatable.")
def import_csv_cmd(
    directory: Path, output: Path, device: str | None, models: str | None, bytes_moved: bool,
    families: dict[str, str], paths: dict[str, str],
) -> None:
    """Rebuild one tree per (model, batch, seq) from the paper's four CSV levels."""
    from irene_core.errors import IreneError
    from irene_core.tree.jsonl import write_records
    from irene_core.tree.paper_csv import import_csv_dir

    records = import_csv_dir(directory, device=device, models=models.split(",") if models else None,
                             families=families)
    imported = {r.model_name for r in records}
    for flag, named in (("--family", families), ("--model-path", paths)):
        if absent := sorted(set(named) - imported):
            raise IreneError(f"{flag}: no trees of {', '.join(absent)} imported from {directory}")
    if bytes_moved:
        fill_bytes_moved(records, paths=paths)
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
