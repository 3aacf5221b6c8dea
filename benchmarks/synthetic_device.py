"""A synthetic second device derived from device_1, for ``irene calibrate`` (its test and its benchmark).

The synthetic device spends ``s_kind·E + P_idle·t`` on a leaf (per-kind scale factors, an idle
power over its 0.7× shorter time, 3 % noise); an inner node its children's new energy plus its own
work scaled by a module factor plus the idle power over its own time, so trees still add up.
"""

from __future__ import annotations

import numpy as np

from irene_core.tree.schema import Node, TreeRecord

SCALE = {"Linear": 1.8, "Conv1D": 1.8, "MatMul": 0.6, "LayerNorm": 2.5, "Softmax": 0.8, "Embedding": 1.3}
OTHER_KINDS, MODULE_SCALE, IDLE_W, TIME_SCALE, NOISE = 1.2, 1.5, 40.0, 0.7, 0.03
DEVICE = "synthetic"


def _moved(node: Node, rng: np.random.Generator) -> tuple[float, float]:
    """Give ``node`` and its subtree the synthetic device's energy and time; returns the old ``(energy, time)``."""
    energy, time = node.ground_truth_energy or 0.0, node.features["times_mean"]
    if node.children:
        old = [_moved(child, rng) for child in node.children]
        own_energy, own_time = energy - sum(e for e, _ in old), time - sum(t for _, t in old)
        children = sum(c.ground_truth_energy or 0.0 for c in node.children)
        new = children + MODULE_SCALE * own_energy + IDLE_W * TIME_SCALE * own_time
        node.ground_truth_energy = max(new, 0.5 * children)
    else:
        new = SCALE.get(node.type, OTHER_KINDS) * energy + IDLE_W * TIME_SCALE * time
        node.ground_truth_energy = new * float(np.exp(NOISE * rng.standard_normal()))
    node.features["times_mean"] = TIME_SCALE * time
    return energy, time


def synthetic_device(records: list[TreeRecord]) -> list[TreeRecord]:
    """Copies of ``records`` as measured on the synthetic device (deterministic)."""
    rng = np.random.default_rng(13)
    out = []
    for record in records:
        copy = record.model_copy(deep=True)
        copy.device = DEVICE
        _moved(copy.root, rng)
        out.append(copy)
    return out
