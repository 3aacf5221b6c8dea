"""Dotted scopes of a Keras model's layers: the path of layer names from the model down, like torch's
``named_modules``.

Keras numbers auto-generated names across the whole process (``softmax``, ``softmax_1``, …), so the
same model built twice would get different scopes.  A name that is its class's auto-generated name
(``softmax_7`` for a ``Softmax``) is therefore replaced by the bare class name, numbered among its
siblings the way a fresh process would (``softmax``, ``softmax_1``); explicit names are kept.
"""

from __future__ import annotations

import re
from typing import Any


def child_layers(layer: Any) -> list[Any]:
    """The layers ``layer`` tracks directly, in tracking order, without Keras input placeholders."""
    from keras.layers import InputLayer

    return [c for c in layer._flatten_layers(include_self=False, recursive=False) if not isinstance(c, InputLayer)]


def is_auto_named(layer: Any) -> bool:
    from keras.src.utils.naming import to_snake_case

    return re.fullmatch(rf"{re.escape(to_snake_case(type(layer).__name__))}(_\d+)?", layer.name) is not None


def segment(layer: Any, taken: set[str]) -> str:
    """The scope segment of ``layer`` among siblings whose segments are in ``taken`` (updated)."""
    from keras.src.utils.naming import to_snake_case

    base = to_snake_case(type(layer).__name__) if is_auto_named(layer) else layer.name
    candidate, n = base, 0
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    taken.add(candidate)
    return candidate


def layer_scopes(model: Any) -> dict[int, str]:
    """``id(layer)`` → dotted scope for every layer reachable from ``model`` (``""`` for the model);
    a layer reachable along several paths keeps the first path found (parents before children)."""
    scopes = {id(model): ""}
    stack = [(model, "")]
    while stack:
        layer, prefix = stack.pop()
        taken: set[str] = set()
        found = []
        for child in child_layers(layer):
            name = segment(child, taken)
            if id(child) not in scopes:
                scopes[id(child)] = f"{prefix}.{name}" if prefix else name
                found.append((child, scopes[id(child)]))
        stack.extend(reversed(found))
    return scopes
