"""The ``irene`` command line.  Plugins add commands through ``irene_register_commands``."""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections import Counter
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from irene_core import __version__
from irene_core.errors import IreneError
from irene_core.plugins import get_registry

# Piped output (CI logs, files) gets a wide page instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="irene")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
def cli(debug: bool) -> None:
    """IrEne: measure and predict the inference energy of transformer models, node by node."""


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins_cmd(as_json: bool) -> None:
    """List plugins: name, kinds, distribution, version, status."""
    rows = get_registry().listing()
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    table = Table(title="IrEne plugins")
    for col in ("name", "kind", "provides", "distribution", "version", "status"):
        table.add_column(col, no_wrap=col != "provides", overflow="fold")
    for r in rows:
        d = r.as_dict()
        status = r.status if not r.error else f"{r.status}: {r.error}"
        style = {"ok": "green", "broken": "red", "not installed": "dim"}.get(r.status, "yellow")
        names = [c.split(":", 1)[1] for c in r.contributes]
        provides = ", ".join(names) if len(names) <= 3 else f"{', '.join(names[:2])}, … ({len(names)} in all)"
        table.add_row(r.name, ", ".join(d["kinds"]), provides, r.distribution, r.version, f"[{style}]{status}[/]")
    console.print(table)


@cli.command("import-csv")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Output JSONL.")
@click.option("--device", default=None, help="Hardware label (default: the directory name).")
@click.option("--models", default=None, help="Comma-separated model names to keep (default: all).")
def import_csv_cmd(directory: Path, output: Path, device: str | None, models: str | None) -> None:
    """Rebuild one tree per (model, batch, seq) from the paper's four CSV levels."""
    from irene_core.csv_import import import_csv_dir
    from irene_core.dataset import write_records

    records = import_csv_dir(directory, device=device, models=models.split(",") if models else None)
    write_records(output, records)
    table = Table(title=f"{len(records)} trees → {output}")
    for col in ("model", "trees", "model nodes", "module nodes", "ml nodes"):
        table.add_column(col, justify="right" if col != "model" else "left")
    counts: dict[str, Counter] = {}
    for r in records:
        c = counts.setdefault(r.model_name, Counter())
        c["trees"] += 1
        for n in r.nodes():
            c[n.level] += 1
    for model, c in sorted(counts.items()):
        table.add_row(model, str(c["trees"]), str(c["model"]), str(c["module"]), str(c["ml"]))
    console.print(table)


@cli.command("evaluate")
@click.argument("truth", type=click.Path(path_type=Path))
@click.argument("pred", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def evaluate_cmd(truth: Path, pred: Path, as_json: bool) -> None:
    """Mean percentage error 100·|pred−gt|/gt per level, per model and overall."""
    from irene_core.dataset import read_records
    from irene_core.energy_view import error_table
    from irene_core.evaluate import evaluate

    report = evaluate(read_records(truth), read_records(pred))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    console.print(error_table(report))


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """Warnings as one ``warning: …`` line on stderr (no source line)."""
    err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def _add_plugin_commands() -> None:
    registry = get_registry()
    registry.pm.hook.irene_register_commands(cli=cli)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: one-line errors, non-zero exit, tracebacks only with --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("IRENE_DEBUG") == "1"
    if not debug:
        warnings.showwarning = _show_warning
    try:
        _add_plugin_commands()
        cli.main(args=args, prog_name="irene", standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except IreneError as exc:
        if debug:
            raise
        err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return 0



# Command groups that live in their own modules register themselves on ``cli`` when imported.
from irene_core import cli_meter, cli_predictor, cli_run, cli_serve, cli_trace  # noqa: E402,F401
