"""CLI command: ``irene plugins`` (what is installed, and what is broken or in conflict)."""

from __future__ import annotations

import json

import click
from rich.markup import escape
from rich.table import Table

from irene_core.cli.console import console
from irene_core.plugins import get_registry

STYLES = {"ok": "green", "broken": "red", "conflict": "yellow", "skipped": "dim", "not installed": "dim"}


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins_cmd(as_json: bool) -> None:
    """List plugins: name, kinds, distribution, version, and status (ok, broken, conflict, skipped,
    not installed) with the reason."""
    rows = get_registry().listing()
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    table = Table(title="IrEne plugins")
    for col in ("name", "kind", "provides", "distribution", "version", "status"):
        table.add_column(col, no_wrap=col not in ("provides", "status"), overflow="fold")
    for r in rows:
        d = r.as_dict()
        status = escape(r.status if not r.error else f"{r.status}: {r.error}")
        names = [c.split(":", 1)[1] for c in r.contributes]
        provides = ", ".join(names) if len(names) <= 3 else f"{', '.join(names[:2])}, … ({len(names)} in all)"
        status_cell = f"[{STYLES[r.status]}]{status}[/]"
        table.add_row(r.name, ", ".join(d["kinds"]), provides, r.distribution, r.version, status_cell)
    console.print(table)
