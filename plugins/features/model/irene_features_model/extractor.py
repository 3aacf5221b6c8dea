"""Model features that follow from the tree itself: input size on every node, and subtree sums.

Tracers measure flops, bytes and parameters where they are cheap to see (primitives and a module's
own ops); this extractor makes every node carry ``batch_size`` and ``seq_len`` and fills an inner
node's missing additive features with the sum over its children, so trees from any source (a
tracer, the CSV release, a hand-written file) end up with the same model features.
"""

from __future__ import annotations

from irene_core import ModelFeatureExtractor, Node, TreeRecord

ADDITIVE = ("flops", "mem_bytes", "num_parameters")


class TreeModelFeatures(ModelFeatureExtractor):
    name = "model"
    description = (
        "batch_size and seq_len on every node; flops, mem_bytes, num_parameters summed up the tree where missing"
    )
    feature_names = ("batch_size", "seq_len", *ADDITIVE)

    def annotate(self, record: TreeRecord) -> None:
        for node in record.root.walk(include_synthetic=False):
            node.features.setdefault("batch_size", float(record.batch_size))
            node.features.setdefault("seq_len", float(record.seq_len))
        self._fill(record.root)

    def _fill(self, node: Node) -> dict[str, float | None]:
        """Fill missing additive features bottom-up; returns this node's values (None = unknown)."""
        kids = [self._fill(c) for c in node.real_children()]
        values: dict[str, float | None] = {}
        for key in ADDITIVE:
            if key in node.features:
                values[key] = node.features[key]
            elif kids and all(k[key] is not None for k in kids):
                node.features[key] = values[key] = float(sum(k[key] for k in kids))  # type: ignore[misc]
            else:
                values[key] = None
        return values
