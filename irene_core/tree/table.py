"""Model trees flattened into arrays: one row per real node of many records.

Training and prediction work on a :class:`TreeTable` (parent index, depth, level, type, feature
matrix, ground truth) instead of walking pydantic nodes, so that a whole dataset is handled with a
few vectorised numpy operations.  Synthetic ``OwnOps`` nodes of the input are ignored: the
predictor recreates them.  A node without ``batch_size``/``seq_len`` features takes its record's.
A node whose ground truth was measured on other work (:meth:`TreeRecord.borrowed`) has none in
``truth`` (NaN) and is marked in ``borrowed``: nothing is fitted to it or scored against it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from irene_core.tree.schema import MODEL_FEATURES, RESOURCE_FEATURES, Node, TreeRecord

#: The feature columns a table holds (missing values are NaN): the model features, the tracer's
#: ``mem_bytes_moved`` (one byte count for every primitive, see :mod:`irene_core.tracing.bytes_moved`)
#: and the resource features.
TABLE_FEATURES: tuple[str, ...] = (*MODEL_FEATURES, "mem_bytes_moved", *RESOURCE_FEATURES)


def preorder(root: Node) -> Iterator[tuple[Node, Node | None, int]]:
    """(node, parent, depth) for the real nodes under ``root``, parents before children — the
    row order of a :class:`TreeTable`."""
    stack: list[tuple[Node, Node | None, int]] = [(root, None, 0)]
    while stack:
        node, parent, depth = stack.pop()
        yield node, parent, depth
        stack.extend((c, node, depth + 1) for c in reversed(node.children) if not c.synthetic)


@dataclass
class TreeTable:
    """Real nodes of ``records`` in pre-order (parents before children), as arrays."""

    records: list[TreeRecord]
    nodes: list[Node]
    record_index: np.ndarray
    parent: np.ndarray
    depth: np.ndarray
    level: np.ndarray
    type: np.ndarray
    features: np.ndarray
    truth: np.ndarray
    borrowed: np.ndarray  # bool: the node's ground truth is another computation's measurement
    feature_names: tuple[str, ...] = field(default=TABLE_FEATURES)

    @classmethod
    def from_records(cls, records: Sequence[TreeRecord]) -> TreeTable:
        nodes: list[Node] = []
        rec, parent, depth, borrowed = [], [], [], []
        for r, record in enumerate(records):
            position: dict[int, int] = {}
            others = record.borrowed()
            for node, up, d in preorder(record.root):
                borrowed.append(node.id in others)
                position[id(node)] = len(nodes)
                parent.append(-1 if up is None else position[id(up)])
                nodes.append(node)
                rec.append(r)
                depth.append(d)
        n = len(nodes)
        features = np.full((n, len(TABLE_FEATURES)), np.nan)
        for i, node in enumerate(nodes):
            values = node.features
            for j, name in enumerate(TABLE_FEATURES):
                value = values.get(name)
                if value is not None:
                    features[i, j] = value
        rec_arr = np.asarray(rec, dtype=np.int64)
        for j, attr in (
            (TABLE_FEATURES.index("batch_size"), "batch_size"),
            (TABLE_FEATURES.index("seq_len"), "seq_len"),
        ):
            per_record = np.array([getattr(r, attr) for r in records], dtype=float)
            missing = np.isnan(features[:, j])
            features[missing, j] = per_record[rec_arr[missing]] if len(per_record) else np.nan
        borrowed_arr = np.asarray(borrowed, dtype=bool)
        truth = np.array(
            [np.nan if x.ground_truth_energy is None else x.ground_truth_energy for x in nodes], dtype=float
        )
        truth[borrowed_arr] = np.nan
        return cls(
            records=list(records),
            nodes=nodes,
            record_index=rec_arr,
            parent=np.asarray(parent, dtype=np.int64),
            depth=np.asarray(depth, dtype=np.int64),
            level=np.array([x.level for x in nodes], dtype=object),
            type=np.array([x.type for x in nodes], dtype=object),
            features=features,
            truth=truth,
            borrowed=borrowed_arr,
        )

    def __len__(self) -> int:
        return len(self.nodes)

    def column(self, name: str) -> np.ndarray:
        return self.features[:, self.feature_names.index(name)]

    @cached_property
    def n_children(self) -> np.ndarray:
        has_parent = self.parent >= 0
        return np.bincount(self.parent[has_parent], minlength=len(self))

    @cached_property
    def is_leaf(self) -> np.ndarray:
        leaf: np.ndarray = self.n_children == 0
        return leaf

    @cached_property
    def model_name(self) -> np.ndarray:
        """The record's model name for every node (the cross-validation group)."""
        names = np.array([r.model_name for r in self.records], dtype=object)
        return names[self.record_index] if len(names) else np.array([], dtype=object)

    @cached_property
    def family(self) -> np.ndarray:
        """The record's model family (None where unknown) for every node."""
        families = np.array([r.family for r in self.records], dtype=object)
        return families[self.record_index] if len(families) else np.array([], dtype=object)

    @cached_property
    def inner_by_depth(self) -> list[np.ndarray]:
        """Indices of inner nodes per depth, deepest first (the bottom-up order)."""
        inner = ~self.is_leaf
        return [np.flatnonzero(inner & (self.depth == d)) for d in range(int(self.depth.max(initial=0)), -1, -1)]

    @cached_property
    def _children(self) -> tuple[np.ndarray, np.ndarray]:
        """The nodes that have a parent, and their parents (what :meth:`children_sum` adds up)."""
        rows = np.flatnonzero(self.parent >= 0)
        return rows, self.parent[rows]

    def children_sum(self, values: np.ndarray) -> np.ndarray:
        """Σ of ``values`` over each node's children (0 for leaves)."""
        rows, parents = self._children
        sums: np.ndarray = np.bincount(parents, weights=values[rows], minlength=len(self))
        return sums

    def per_record_count(self, mask: np.ndarray) -> np.ndarray:
        """For every node: how many nodes of its record satisfy ``mask``."""
        counts = np.bincount(self.record_index[mask], minlength=len(self.records))
        per_node: np.ndarray = counts[self.record_index]
        return per_node

    def standing_in(self, leaf_estimates: np.ndarray) -> TreeTable:
        """The table with each borrowed leaf's ``leaf_estimates`` value as its truth: what an
        aggregator learns its children's sums from (at prediction every leaf is an estimate)."""
        return replace(self, truth=np.where(self.borrowed & self.is_leaf, leaf_estimates, self.truth))

    def subset(self, keep_records: np.ndarray) -> TreeTable:
        """The table of the records where ``keep_records`` (bool per record) is true."""
        keep = keep_records[self.record_index]
        new_index = np.cumsum(keep) - 1
        new_record = np.cumsum(keep_records) - 1
        parent = self.parent[keep]
        parent = np.where(parent >= 0, new_index[np.maximum(parent, 0)], -1)
        idx = np.flatnonzero(keep)
        return TreeTable(
            records=[r for r, k in zip(self.records, keep_records, strict=True) if k],
            nodes=[self.nodes[i] for i in idx],
            record_index=new_record[self.record_index[keep]],
            parent=parent,
            depth=self.depth[keep],
            level=self.level[keep],
            type=self.type[keep],
            features=self.features[keep],
            truth=self.truth[keep],
            borrowed=self.borrowed[keep],
            feature_names=self.feature_names,
        )
