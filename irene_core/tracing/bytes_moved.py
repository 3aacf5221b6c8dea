"""Give imported trees the tracer's ``mem_bytes_moved``, so that every tree has one byte feature.

The paper's ``mem_bytes`` is a byte model of torch 1.7's calls: it charges the same 768×768 product
3.75 MiB as GPT-2's ``Conv1D`` and 21 MiB as BERT's ``Linear`` (a 3-D input counted the weight once
per batch element).  ``mem_bytes_moved`` (what the kernels read and write) is the same for both, and
the tracer computes it for every node.  A record that lacks it (the paper's release, another tool's
data) gets it here: its model is traced on the meta device at the record's size (no kernel runs,
no weights are allocated) through the framework registry, and each node takes the bytes of the
traced node at the same place: a module by its scope, a leaf by scope, type and order among
same-named siblings.  A model the framework does not know by name is traced from the config a
``paths`` entry names (``irene import-csv --model-path``).  A record whose model no framework builds,
or whose nodes do not all match, is left as it was and reported.

The trace also shows the leaves the record lacks: the paper's trees have no ``GELU`` or ``Dropout``
leaves, whose work (none for dropout in inference) their parents' own measured energy holds.  Their
types are recorded in ``meta.absorbed_leaves``; a predictor trained on such trees predicts these
kinds inside their parents' own work without calling them unseen, and every other kind its
training lacks as unseen (see ``Predictor``'s ``extrapolated``).  A record without a ``meta.family``
(a model the importer does not know, found in the local Hugging Face cache) takes its trace's.

Today's library may run a node differently from the code that was measured (transformers 4.2.2's
DistilBERT looked up a position per token of the batch, today's one per position).  The tracer
also computes the paper's byte model (``mem_bytes``) for its nodes; where a leaf's disagrees with
the record's own ``mem_bytes`` by more than :data:`AGREEMENT`, the leaf's traced bytes moved are
scaled by the ratio of the two (the measured call moved proportionally more or less), each of its
ancestors takes the same difference, and the leaf is counted in the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from irene_core.errors import IreneError
from irene_core.tracing.trace import trace
from irene_core.tree.schema import ABSORBED_LEAVES, Node, TreeRecord

#: The feature this module fills in.
BYTES_MOVED = "mem_bytes_moved"
#: Relative difference of the paper's byte model (record vs trace) above which bytes moved are rescaled.
AGREEMENT = 0.01


@dataclass
class BytesMovedReport:
    """What :func:`add_bytes_moved` did: records filled in, and records left as they were (with why)."""

    added: int = 0
    rescaled: int = 0  # nodes whose traced call differs from the measured one (see the module docstring)
    skipped: dict[str, str] = field(default_factory=dict)  # "model b×s" -> reason


def lacks_bytes_moved(record: TreeRecord) -> bool:
    """Whether some real node of ``record`` has no ``mem_bytes_moved``."""
    return any(BYTES_MOVED not in n.features for n in record.root.walk(include_synthetic=False))


def _place(node: Node, seen: dict[tuple[str, str], int]) -> tuple[str, str, int]:
    """Where a node sits: modules by scope alone (class names differ between library versions),
    leaves by scope, type and order among leaves of that scope and type."""
    if node.children:
        return (node.scope, "", 0)
    key = (node.scope, node.type)
    seen[key] = seen.get(key, 0) + 1
    return (node.scope, node.type, seen[key])


def _places(root: Node) -> list[tuple[tuple[str, str, int], Node]]:
    seen: dict[tuple[str, str], int] = {}
    return [(_place(n, seen), n) for n in root.walk(include_synthetic=False)]


def _fill(node: Node, traced: dict[tuple[str, str, int], tuple[float, float | None]],
          seen: dict[tuple[str, str], int]) -> tuple[float, int]:
    """Set bytes moved on ``node``'s subtree (pre-order, as :func:`_places`); returns the bytes its
    rescaled leaves added and how many leaves were rescaled."""
    moved, paper_bytes = traced[_place(node, seen)]
    if not node.children:
        scaled = moved * _scale(node.features.get("mem_bytes"), paper_bytes)
        node.features[BYTES_MOVED] = scaled
        return scaled - moved, int(scaled != moved)
    added, rescaled = 0.0, 0
    for child in node.children:
        if not child.synthetic:
            child_added, child_rescaled = _fill(child, traced, seen)
            added, rescaled = added + child_added, rescaled + child_rescaled
    node.features[BYTES_MOVED] = moved + added
    return added, rescaled


class _Traced(NamedTuple):
    """What a meta trace of a record's model gives it: per place, (bytes moved, the paper's byte model);
    and the model's family."""

    places: dict[tuple[str, str, int], tuple[float, float | None]]
    family: str | None


@lru_cache(maxsize=512)
def _traced(framework: str, model: str, batch_size: int, seq_len: int) -> _Traced:
    """:class:`_Traced` of ``model`` traced on meta at (batch_size, seq_len)."""
    record = trace(model, batch_size, seq_len, framework=framework, meta=True, attention="eager").record
    places = {
        place: (n.features[BYTES_MOVED], n.features.get("mem_bytes"))
        for place, n in _places(record.root)
        if BYTES_MOVED in n.features
    }
    return _Traced(places, record.family)


def _scale(record_bytes: float | None, traced_bytes: float | None) -> float:
    """How much more the measured call moved than the traced one, by the paper's byte model (1: the same)."""
    if record_bytes is None or not traced_bytes or abs(record_bytes / traced_bytes - 1) <= AGREEMENT:
        return 1.0
    return record_bytes / traced_bytes


def add_bytes_moved(
    records: Sequence[TreeRecord], framework: str = "torch", paths: Mapping[str, str] | None = None
) -> BytesMovedReport:
    """Fill in ``mem_bytes_moved`` on every node of the records that lack it (in place); ``paths``: per
    model name, the config (a config.json or a model directory) to trace it from, for a model the
    framework does not know by that name."""
    report = BytesMovedReport()
    for record in records:
        if not lacks_bytes_moved(record):
            continue
        label = f"{record.model_name} {record.batch_size}×{record.seq_len}"
        try:
            source = (paths or {}).get(record.model_name, record.model_name)
            found = _traced(framework, source, record.batch_size, record.seq_len)
        except IreneError as exc:
            report.skipped[label] = str(exc)
            continue
        traced = found.places
        places = _places(record.root)
        missing = [n.id for place, n in places if place not in traced]
        if missing:
            report.skipped[label] = f"{len(missing)} node(s) have no traced counterpart, e.g. '{missing[0]}'"
            continue
        report.rescaled += _fill(record.root, traced, {})[1]
        report.added += 1
        have = {place for place, _ in places}
        absorbed = sorted({leaf_type for place in traced if (leaf_type := place[1]) and place not in have})
        if absorbed:
            record.meta[ABSORBED_LEAVES] = absorbed
        if record.family is None and found.family is not None:
            record.meta["family"] = found.family
    return report
