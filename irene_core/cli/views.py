"""Terminal views of an energy tree: the tree coloured by share, the bottleneck table, the
measured-vs-predicted summary."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from rich.table import Table
from rich.tree import Tree

from irene_core.cli.console import err_console
from irene_core.tree.bottlenecks import node_energy, own_ops_share, type_shares
from irene_core.tree.per_token import describe, per_token
from irene_core.tree.schema import LEVELS, Node, TreeRecord

#: The mark of a node predicted outside the predictor's training data.
EXTRAPOLATED = "⚠ extrapolated"


def _colour(share: float) -> str:
    if share >= 20:
        return "bold red"
    if share >= 5:
        return "yellow"
    return "green"


def _label(node: Node, model_energy: float, parent_energy: float | None) -> str:
    e = node_energy(node)
    name = node.type if not node.scope or node.synthetic else f"{node.type} [dim]{node.scope}[/]"
    if e is None:
        return name
    share = 100.0 * e / model_energy if model_energy else 0.0
    of_parent = f" · {100.0 * e / parent_energy:.1f} % of parent" if parent_energy else ""
    measured = node.ground_truth_energy
    gt = (
        f" [cyan](measured {1e3 * measured:.3f} mJ)[/]"
        if measured is not None and node.predicted_energy is not None
        else ""
    )
    return (
        f"{name}  [{_colour(share)}]{1e3 * e:.3f} mJ · {share:.1f} % of model[/]{interval_text(node)}{of_parent}{gt}"
        + (f" [magenta]{EXTRAPOLATED}[/]" if node.extrapolated else "")
    )


def interval_text(node: Node) -> str:
    """`` [90 %: 1.200–1.500 mJ]`` for a node with a predicted interval, else ``""``."""
    if node.predicted_low is None or node.predicted_high is None:
        return ""
    return f" [dim][90 %: {1e3 * node.predicted_low:.3f}–{1e3 * node.predicted_high:.3f} mJ][/]"


def noise_floor_text(noise: Mapping[str, float], what: str = "the nodes' round-to-round spread") -> str:
    """``×1.17 / ×1.16 / ×1.12 (ml / module / model) each way (…spread: 9.5 / 8.9 / 6.8 %)``: the least
    widening of a 90 % interval that a level's measurement ``noise`` (relative, per level), ``what`` it is, sets."""
    from irene_core.predictor.uncertainty import Z90  # lazily: scipy stays out of `irene --help`

    widening = " / ".join(f"×{math.exp(Z90 * noise.get(lv, 0.0)):.2f}" for lv in LEVELS)
    spread = " / ".join(f"{100 * noise.get(lv, 0.0):.1f}" for lv in LEVELS)
    return f"{widening} (ml / module / model) each way ({what}: {spread} %)"


def notice_lines(records: Iterable[TreeRecord]) -> list[str]:
    """One line per distinct notice of ``records`` (``source: message``), in first-seen order."""
    return list(dict.fromkeys(f"{n.source}: {n.message}" for r in records for n in r.notices))


def print_notices(records: Iterable[TreeRecord]) -> None:
    """Print the records' notices on stderr, one line each, deduplicated."""
    for line in notice_lines(records):
        err_console.print(f"[yellow]notice:[/] {line}", highlight=False)


def energy_tree(record: TreeRecord, depth: int = 3) -> Tree:
    """A rich Tree down to ``depth`` levels, children sorted by energy; the title has the record's key
    and its per-token figures."""
    total = node_energy(record.root) or 0.0
    title = f"{record.key.describe()} · {describe(per_token(record))}"
    tree = Tree(f"[bold]{title}[/]  {_label(record.root, total, None)}")

    def add(branch: Tree, node: Node, level: int) -> None:
        if level >= depth:
            return
        parent_e = node_energy(node)
        for child in sorted(node.children, key=lambda c: -(node_energy(c) or 0.0)):
            add(branch.add(_label(child, total, parent_e)), child, level + 1)

    add(tree, record.root, 0)
    return tree


def bottleneck_table(record: TreeRecord, top: int = 10) -> Table:
    """Module and primitive types by share of the model's energy."""
    table = Table(title=f"Energy bottlenecks: {record.model_name} b{record.batch_size} s{record.seq_len}")
    for col in ("level", "type", "nodes", "energy (mJ)", "share of model"):
        table.add_column(col, justify="right" if col in ("nodes", "energy (mJ)", "share of model") else "left")
    for level in ("module", "ml"):
        for s in type_shares(record, level)[:top]:
            table.add_row(level, s.type, str(s.count), f"{1e3 * s.energy_j:.3f}", f"{s.share_pct:.1f} %")
    own = own_ops_share(record)
    if own is not None:
        table.caption = f"modules' own ops (beyond their children): {own:.1f} % of the model"
    return table


def fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def error_table(report: dict[str, Any], title: str = "% error (mean of 100·|pred−gt|/gt)") -> Table:
    """The per-model / overall table of an :func:`irene_core.predictor.evaluation.evaluate` report."""
    table = Table(title=title)
    for col in ("model", "trees", "ml", "module", "model level"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for model, m in sorted(report["models"].items()):
        table.add_row(model, str(m["trees"]), fmt_pct(m["ml"]), fmt_pct(m["module"]), fmt_pct(m["model"]))
    if len(report["models"]) > 1:
        o = report["overall"]
        table.add_row("overall (mean of models)", "", fmt_pct(o.get("ml")), fmt_pct(o.get("module")),
                      fmt_pct(o.get("model")), style="bold")
    return table
