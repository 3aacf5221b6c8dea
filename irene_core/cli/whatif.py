"""CLI command ``irene whatif``: the predicted energy of architecture variants, or of a list of models, per
module type and against accuracy (the Pareto front, a budget, a minimum accuracy).

The what-if engine (torch, the predictor) is imported inside the command so that ``irene --help`` stays fast.
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape
from rich.table import Table

from irene_core.cli import options
from irene_core.cli.console import console, err_console
from irene_core.errors import IreneError

if TYPE_CHECKING:
    from irene_core.whatif import WhatIfResult

_VARY = re.compile(r"^\s*([A-Za-z_]\w*)\s*=\s*(\d+(?:\s*,\s*\d+)*)\s*$")
#: Module types named in the table's "where it goes" column.
_TOP_TYPES = 2


def parse_vary(items: tuple[str, ...]) -> dict[str, list[int]]:
    """``("layers=2,4", "hidden=256")`` → ``{"layers": [2, 4], "hidden": [256]}`` (one-line errors)."""
    vary: dict[str, list[int]] = {}
    for item in items:
        match = _VARY.match(item)
        if match is None:
            raise IreneError(f"--vary {item}: expected KEY=N[,N…] such as layers=2,4,6")
        key, values = match.group(1), [int(v) for v in match.group(2).split(",")]
        if key in vary:
            raise IreneError(f"--vary {key}: given twice (list its values once: {key}=2,4,6)")
        vary[key] = values
    return vary


def _interval(low: float | None, high: float | None) -> str:
    return "—" if low is None or high is None else f"{low:.4g}–{high:.4g}"


def _table(result: WhatIfResult) -> Table:
    scored = any(p.accuracy is not None for p in result.points)
    table = Table(title=f"what-if: predicted energy per call, whole batch ({result.batch_size} × {result.seq_len} "
                  "tokens)")
    columns = ["model", "parameters (M)", "GFLOPs", "energy J", "90 % interval J", "extrapolated",
               "where it goes", *(["accuracy", "Pareto"] if scored else [])]
    for col in columns:
        table.add_column(col, justify="left" if col in ("model", "where it goes") else "right",
                         no_wrap=col != "where it goes")
    for p in result.points:
        where = " · ".join(f"{t.type} {100 * t.energy / p.energy:.0f} %" for t in p.per_type[:_TOP_TYPES]) \
            if p.energy else "—"
        accuracy = ["—" if p.accuracy is None else f"{p.accuracy:g}", "★" if p.pareto else ""] if scored else []
        table.add_row(escape(p.model), f"{p.parameters / 1e6:.1f}", f"{p.flops / 1e3:.4g}", f"{p.energy:.4g}",
                      _interval(p.low, p.high), "yes" if p.extrapolated else "no", where, *accuracy)
    return table


def _csv(result: WhatIfResult) -> str:
    """One row per point, units in the headers; one ``<type> (J)`` column per module type (largest first)."""
    totals: dict[str, float] = {}
    for p in result.points:
        for t in p.per_type:
            totals[t.type] = totals.get(t.type, 0.0) + t.energy
    types = sorted(totals, key=lambda t: (-totals[t], t))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["model", "settings", "parameters", "flops (MFLOPs)", "energy (J)", "low (J)", "high (J)",
                     "extrapolated", "accuracy", "pareto", *(f"{t} (J)" for t in types)])
    for p in result.points:
        energy = {t.type: t.energy for t in p.per_type}
        writer.writerow([p.model, ";".join(f"{k}={v}" for k, v in p.settings.items()), p.parameters, p.flops,
                         p.energy, "" if p.low is None else p.low, "" if p.high is None else p.high, p.extrapolated,
                         "" if p.accuracy is None else p.accuracy, p.pareto, *(energy.get(t, "") for t in types)])
    return out.getvalue()


def _print_answers(result: WhatIfResult, to_stderr: bool) -> None:
    where = err_console if to_stderr else console
    for answer in result.answers:
        found = "none qualifies" if answer.model is None else (
            f"{escape(answer.model)} ({answer.energy:.4g} J, accuracy {answer.accuracy:g})")
        note = f" [dim]— {escape(answer.note)}[/]" if answer.note else ""
        where.print(f"[bold]{answer.question}:[/] {found}{note}", highlight=False, soft_wrap=True)


@click.command("whatif")
@click.argument("model", required=False)
@click.option("--vary", "vary", multiple=True, metavar="KEY=N[,N…]",
              help="Vary MODEL's layers, hidden, heads, intermediate or an integer config attribute (repeatable; "
                   "points are the cartesian product).")
@click.option("--models", default=None,
              help="Comma-separated models instead of MODEL; brace patterns expand: bert-L{2,4,6}-H{128,256}.")
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=16, show_default=True, help="Batch size.")
@click.option("-s", "--seq-len", type=click.IntRange(min=1), default=128, show_default=True,
              help="Sequence length.")
@click.option("--accuracy", "accuracy_file", type=click.Path(path_type=Path), default=None,
              help="CSV of model,score (higher is better; header optional): the Pareto front and the answers.")
@click.option("--budget-j", type=options.POSITIVE, default=None, help="Ask: the best accuracy within this many J.")
@click.option("--min-accuracy", type=options.FiniteFloat(-math.inf), default=None,
              help="Ask: the least energy for an accuracy of at least this.")
@click.option("--predictor", default="model", show_default=True,
              help=f"{options.PREDICTOR_NAMES.capitalize()}.")
@options.framework
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print one CSV row per point (units in the headers).")
def whatif_cmd(
    model: str | None, vary: tuple[str, ...], models: str | None, batch_size: int, seq_len: int,
    accuracy_file: Path | None, budget_j: float | None, min_accuracy: float | None, predictor: str,
    framework: str, as_json: bool, as_csv: bool,
) -> None:
    """Predicted energy of MODEL's architecture variants (--vary) or of --models, per module type, with
    the energy-vs-accuracy Pareto front and budget answers (J per call for the whole batch). See docs/whatif.md."""
    from irene_core.whatif import WhatIfQuery, plan, read_accuracy, whatif

    if as_json and as_csv:
        raise IreneError("--json, --csv: choose one")
    query = WhatIfQuery(
        models=[models] if models else [], base=model, vary=parse_vary(vary), batch_size=batch_size,
        seq_len=seq_len, framework=framework, predictor=predictor,
        accuracy=read_accuracy(accuracy_file) if accuracy_file else {}, budget_j=budget_j, min_accuracy=min_accuracy,
    )
    with err_console.status(f"tracing and predicting {len(plan(query))} point(s)…"):
        result = whatif(query)
    for line in result.notices:
        err_console.print(f"[yellow]notice:[/] {escape(line)}", highlight=False, soft_wrap=True)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    elif as_csv:
        click.echo(_csv(result), nl=False)
        _print_answers(result, to_stderr=True)
    else:
        console.print(_table(result))
        _print_answers(result, to_stderr=False)
        console.print(f"figures are for: {result.device} (predictor {result.predictor}); {result.unit}",
                      highlight=False, soft_wrap=True, markup=False)
