"""CLI command: ``irene trace``.

``irene trace MODEL`` asks a framework plugin for the model tree at each input size and prints it
with the model features of every node, or writes the records as JSON Lines (schema v2).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import click

from irene_core.cli import options
from irene_core.cli.console import console
from irene_core.tree.per_token import describe, per_token
from irene_core.tree.schema import Node, TreeRecord


def _count(node: Node) -> int:
    return sum(1 for _ in node.walk(include_synthetic=False))


def _rows(
    node: Node, depth: int, max_depth: int | None, parent_scope: str = ""
) -> Iterator[tuple[Node, int, str, int]]:
    """(node, depth, label, hidden descendants) in pre-order, down to ``max_depth``.

    The label is the node id with the parent's scope taken off (``attention.self:MatMul#2``
    under ``encoder.layer.0``), so the indented tree stays narrow.
    """
    prefix = f"{parent_scope}." if parent_scope else ""
    relative = node.scope[len(prefix):] if prefix and node.scope.startswith(prefix) else node.scope
    if depth and node.scope == parent_scope:
        relative = ""
    label = relative + node.id[len(node.scope):]
    if max_depth is not None and depth == max_depth:
        yield node, depth, label, _count(node) - 1
        return
    yield node, depth, label, 0
    for child in node.real_children():
        yield from _rows(child, depth + 1, max_depth, node.scope)


def _params(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.2f}{unit}"
    return f"{value:.0f}"


def print_tree(record: TreeRecord, max_depth: int | None) -> None:
    """The tree as an indented table: one row per node with flops, parameters and memory."""
    from rich.table import Table

    nodes = list(record.nodes())
    title = (
        f"{record.model_name} · batch {record.batch_size} · seq {record.seq_len} · {record.device} · "
        f"{len(nodes)} nodes · attention {record.attention} · {record.phase}"
        + (f" · context {record.context_len}" if record.context_len else "") + f" · {record.dtype}"
    )
    rows = []
    for node, depth, label, hidden in _rows(record.root, 0, max_depth):
        f = node.features
        rows.append((
            "  " * depth + label + (f" [dim](+{hidden} below)[/]" if hidden else ""),
            node.level,
            f"{f.get('flops', 0.0):,.2f}",
            _params(f.get("num_parameters", 0.0)),
            f"{f.get('mem_bytes', 0.0):,.2f}",
        ))
    widths = [
        max(len(name), *(len(r[i]) for r in rows)) for i, name in enumerate(("level", "MFLOPs", "params", "MiB"), 1)
    ]
    room = console.width - sum(widths) - 3 * (len(widths) + 1) - 1  # what the numbers leave to the names
    table = Table(title=title, pad_edge=False)
    table.add_column("node (scope:type, relative to its parent)", overflow="ellipsis", no_wrap=True,
                     max_width=max(room, 24))
    for i, (name, width) in enumerate(zip(("level", "MFLOPs", "params", "MiB"), widths, strict=True)):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=True, min_width=width)
    styles = {"model": "bold", "module": "cyan", "ml": ""}
    for row in rows:
        table.add_row(*row, style=styles[row[1]])
    console.print(table)
    levels = record.by_level()
    console.print(
        f"{len(levels['module'])} module nodes, {len(levels['ml'])} ml leaves; "
        f"total {record.root.features.get('flops', 0.0):,.1f} MFLOPs, "
        f"{record.root.features.get('mem_bytes', 0.0):,.1f} MiB (mem_bytes), "
        f"{_params(record.root.features.get('num_parameters', 0.0))} parameters",
        highlight=False,
    )
    console.print(f"per token: {describe(per_token(record))}", highlight=False)


@click.command("trace")
@click.argument("model", required=False)
@options.framework
@options.sizes
@options.device
@options.attention
@options.phases
@click.option("--meta", is_flag=True, help="Build on the meta device: structure and model features, no kernel runs.")
@click.option("--presets", "list_presets", is_flag=True, help="List the framework's model presets and exit.")
@click.option("--depth", type=click.IntRange(min=0), default=None, help="Print the tree down to this depth.")
@click.option("--json", "as_json", is_flag=True, help="Print each record as one JSON line (schema v2).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the records to this JSONL file (replaced atomically).")
def trace_cmd(
    model: str | None,
    framework: str,
    batch_sizes: tuple[int, ...],
    seq_lens: tuple[int, ...],
    device: str,
    attention: str,
    phase: str,
    contexts: tuple[int, ...] | None,
    dtype: str | None,
    logits: str,
    meta: bool,
    list_presets: bool,
    depth: int | None,
    as_json: bool,
    output: Path | None,
) -> None:
    """Trace MODEL at each input size: the model tree with flops, parameters and memory per node.

    MODEL is a preset (``irene trace --presets`` lists them), a config.json or model directory, or a
    hub id already in the local Hugging Face cache. ``--phase decode --context 1024`` traces one
    generated token per sequence after 1024 cached tokens (``--seq-len`` defaults to 1 there).
    """
    from irene_core.plugins import get_registry
    from irene_core.tracing.trace import trace
    from irene_core.tree.jsonl import record_to_line, write_records

    if list_presets:
        click.echo("\n".join(get_registry().get("framework", framework).presets()))
        return
    if model is None:
        raise click.UsageError("missing argument MODEL (or --presets)")
    seq_lens = options.phase_seq_lens(seq_lens, phase)
    records = [
        trace(model, b, s, framework=framework, device=device, attention=attention, meta=meta, phase=phase,
              context_len=c, dtype=dtype, logits=logits).record
        for b, s, c in itertools.product(batch_sizes, seq_lens, contexts or (None,))
    ]
    if output is not None:
        write_records(output, records)
    for record in records:
        if as_json:
            click.echo(record_to_line(record))
        else:
            print_tree(record, depth)
    if output is not None and not as_json:
        console.print(f"wrote {len(records)} record(s) → {output}", highlight=False)
