"""Where the energy goes: shares of module and primitive types in a predicted tree (the paper's
Tables 10 and 12), and the energy each node is shown with."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from irene_core.tree.schema import OWN_OPS_TYPE, Node, TreeRecord


def node_energy(node: Node, prefer: str = "predicted") -> float | None:
    """The node's predicted energy, else its measured one (``prefer="measured"`` flips the order)."""
    first, second = node.predicted_energy, node.ground_truth_energy
    if prefer == "measured":
        first, second = second, first
    return first if first is not None else second


@dataclass(frozen=True)
class Share:
    type: str
    level: str
    count: int
    energy_j: float
    share_pct: float


def type_shares(record: TreeRecord, level: str = "module", prefer: str = "predicted") -> list[Share]:
    """Energy of each node type at ``level`` as % of the model's, largest first.

    For modules, a node nested inside a node of the same type is not counted twice. For ``ml``, the
    OwnOps pseudo-children are included (as one type), so the leaf shares sum to 100 %.
    """
    total = node_energy(record.root, prefer)
    if not total:
        return []
    energy: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)

    def visit(node: Node, open_types: frozenset[str]) -> None:
        if node.level == level and node.type not in open_types:
            e = node_energy(node, prefer)
            if e is not None:
                energy[node.type] += e
                count[node.type] += 1
        inner = open_types | {node.type} if node.level == level else open_types
        for child in node.children:
            if child.synthetic and level != "ml":
                continue
            visit(child, inner)

    visit(record.root, frozenset())
    shares = [Share(t, level, count[t], e, 100.0 * e / total) for t, e in energy.items()]
    return sorted(shares, key=lambda s: (-s.energy_j, s.type))


def own_ops_share(record: TreeRecord, prefer: str = "predicted") -> float | None:
    """% of the model's energy spent in modules' own ops (beyond their children)."""
    total = node_energy(record.root, prefer)
    if not total:
        return None
    own = sum(node_energy(n, prefer) or 0.0 for n in record.root.walk() if n.synthetic and n.type == OWN_OPS_TYPE)
    return 100.0 * own / total
