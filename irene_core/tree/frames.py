"""Model trees as a pandas DataFrame, one row per node (needs ``irene[pandas]``).

>>> frame = to_pandas(records)                                              # doctest: +SKIP
>>> frame[frame.level == "ml"].nlargest(5, "predicted_energy")              # doctest: +SKIP

Columns: the record key (``model``, ``batch_size``, ``seq_len``, ``phase``, ``context_len``,
``dtype``, ``attention``, ``device``), the node (``id``, ``parent_id`` — missing for the root —,
``scope``, ``type``, ``level``, ``depth`` — 0 for the root —, ``synthetic``), one ``features.<name>``
column per feature found on any node (NaN where a node lacks it; the prefix keeps the node's
``features.batch_size`` apart from the record's ``batch_size``), then ``ground_truth_energy``
(measured), ``predicted_energy`` and its 90 % interval ``predicted_low``, ``predicted_high`` in J per
call (NaN where absent), and ``extrapolated`` (the node or a descendant lies outside the predictor's
training data).  Nodes are listed record by record, depth first, parents before children; synthetic
``OwnOps`` nodes are included.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from irene_core.errors import IreneError
from irene_core.tree.schema import MODEL_FEATURES, RESOURCE_FEATURES, RecordKey, TreeRecord

if TYPE_CHECKING:
    import pandas as pd

#: Columns of every frame, before the feature columns.
KEY_COLUMNS: tuple[str, ...] = RecordKey._fields
NODE_COLUMNS: tuple[str, ...] = ("id", "parent_id", "scope", "type", "level", "depth", "synthetic")
ENERGY_COLUMNS: tuple[str, ...] = ("ground_truth_energy", "predicted_energy", "predicted_low", "predicted_high")
FEATURE_PREFIX = "features."

_FEATURE_ORDER = {name: i for i, name in enumerate(MODEL_FEATURES + RESOURCE_FEATURES)}


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else value


def _rows(record: TreeRecord) -> Iterator[dict[str, Any]]:
    key = record.key._asdict()
    depth: dict[str, int] = {}
    for parent, node in record.root.walk_with_parent():
        depth[node.id] = 0 if parent is None else depth[parent.id] + 1
        yield {
            **key,
            "id": node.id,
            "parent_id": None if parent is None else parent.id,
            "scope": node.scope,
            "type": node.type,
            "level": node.level,
            "depth": depth[node.id],
            "synthetic": node.synthetic,
            **{FEATURE_PREFIX + name: value for name, value in node.features.items()},
            **{name: _nan_if_none(getattr(node, name)) for name in ENERGY_COLUMNS},
            "extrapolated": node.extrapolated,
        }


def to_pandas(records: TreeRecord | Iterable[TreeRecord]) -> pd.DataFrame:
    """One row per node of ``records`` (one record or several), columns as in the module doc."""
    try:
        import pandas as pd
    except ImportError:
        raise IreneError("to_pandas needs pandas: pip install 'irene[pandas]'") from None
    rows = [row for record in ([records] if isinstance(records, TreeRecord) else records) for row in _rows(record)]
    names = {name for row in rows for name in row if name.startswith(FEATURE_PREFIX)}
    features = sorted(names, key=lambda n: (_FEATURE_ORDER.get(n[len(FEATURE_PREFIX):], len(_FEATURE_ORDER)), n))
    frame = pd.DataFrame.from_records(
        rows, columns=[*KEY_COLUMNS, *NODE_COLUMNS, *features, *ENERGY_COLUMNS, "extrapolated"])
    return frame.astype(
        {"batch_size": "int64", "seq_len": "int64", "context_len": "Int64", "depth": "int64", "synthetic": "bool",
         "extrapolated": "bool"}
        | {name: "float64" for name in [*features, *ENERGY_COLUMNS]}
    )
