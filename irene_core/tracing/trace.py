"""Where a model is traced: the framework plugin builds the tree, then every installed model-feature
extractor annotates it (``irene trace``, ``irene run`` and :func:`irene_core.trace` all come here)."""

from __future__ import annotations

import inspect
from typing import Any

from irene_core.errors import IreneError
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


#: The phase options of :meth:`Framework.trace` and the architecture overrides (``config``), with their
#: defaults (what a plugin written before them does).
PHASE_DEFAULTS: dict[str, Any] = {"phase": "forward", "context_len": None, "dtype": None, "logits": "last",
                                  "config": None}
#: The command-line flag of each such option, for messages.
PHASE_FLAGS = {"phase": "--phase", "context_len": "--context", "dtype": "--dtype", "logits": "--logits",
               "config": "--vary"}


def phase_options(plugin: Framework, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for ``plugin.trace``: phase options at their defaults dropped (plugins written before
    them keep working); a phase the plugin does not declare in ``phases``, or an option its ``trace``
    does not take, refused in one line."""
    phases: tuple[str, ...] = getattr(plugin, "phases", ("forward",))
    phase = options.get("phase", "forward")
    if phase not in phases:
        raise IreneError(f"--phase {phase}: framework '{plugin.name}' traces {', '.join(phases)} only")
    kept = {k: v for k, v in options.items() if k not in PHASE_DEFAULTS or v != PHASE_DEFAULTS[k]}
    parameters = inspect.signature(plugin.trace).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    for key in kept:
        if key in PHASE_DEFAULTS and key not in parameters and not takes_any:
            raise IreneError(f"{PHASE_FLAGS[key]}: framework '{plugin.name}' does not take this option")
    return kept


def trace(
    model: str, batch_size: int = 8, seq_len: int = 128, *, framework: str = "torch", **options: Any
) -> TracedModel:
    """Trace ``model`` at (batch_size, seq_len) with the framework plugin ``framework``.

    ``options`` go to :meth:`Framework.trace` (``device``, ``attention``, ``meta``, ``phase``,
    ``context_len``, ``dtype``, ``logits``, ``config`` — passed only when given…).  The record carries
    the model features of the tracer and of every installed model-feature extractor.
    """
    plugin: Framework = get_registry().get("framework", framework)
    traced = plugin.trace(model, batch_size, seq_len, **phase_options(plugin, options))
    annotate_model_features(traced.record)
    return traced


def check_resources(model: str, batch_size: int, seq_len: int, *, framework: str = "torch", **options: Any) -> None:
    """Ask the framework plugin whether tracing this (not on meta) can work here: one-line IreneError if not
    (plugins without :meth:`Framework.check_resources` check nothing)."""
    plugin: Framework = get_registry().get("framework", framework)
    check = getattr(plugin, "check_resources", None)
    if check is not None:
        check(model, batch_size, seq_len, **phase_options(plugin, options))
