"""Where a model is traced: the framework plugin builds the tree, then every installed model-feature
extractor annotates it (``irene trace``, ``irene run`` and :func:`irene_core.trace` all come here)."""

from __future__ import annotations

from typing import Any

from irene_core.plugins import get_registry
from irene_core.tracing.framework import Framework, TracedModel
from irene_core.tree.features import ModelFeatureExtractor
from irene_core.tree.schema import TreeRecord


def annotate_model_features(record: TreeRecord) -> list[str]:
    """Run every installed :class:`ModelFeatureExtractor` on ``record`` (in name order); returns their names."""
    table = get_registry().contributions("features")
    names = sorted(name for name, c in table.items() if c.name == name and isinstance(c.obj, ModelFeatureExtractor))
    for name in names:
        table[name].obj.annotate(record)
    return names


def trace(
    model: str, batch_size: int = 8, seq_len: int = 128, *, framework: str = "torch", **options: Any
) -> TracedModel:
    """Trace ``model`` at (batch_size, seq_len) with the framework plugin ``framework``.

    ``options`` go to :meth:`Framework.trace` (``device``, ``attention``, ``meta``…).  The record
    carries the model features of the tracer and of every installed model-feature extractor.
    """
    plugin: Framework = get_registry().get("framework", framework)
    traced = plugin.trace(model, batch_size, seq_len, **options)
    annotate_model_features(traced.record)
    return traced
