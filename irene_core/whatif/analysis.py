"""What the what-if says about its points: energy per module type, the Pareto front, the answers."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from irene_core.tree.schema import Node, TreeRecord
from irene_core.whatif.schema import Answer, TypeEnergy, WhatIfPoint


def _sum(values: Sequence[float | None]) -> float | None:
    return None if any(v is None for v in values) else math.fsum(v for v in values if v is not None)


def per_type(record: TreeRecord) -> list[TypeEnergy]:
    """The predicted energy of ``record`` by the type of the module that owns it, most energy first.

    Every leaf (primitive ops and the synthetic OwnOps children alike) belongs to its parent module, so
    the types partition the root's energy exactly (a predicted tree adds up); a type that owns only
    0 J, bounds included, is left out.  The model's own type holds the root's own ops, which may be
    below 0 (training measured models below their modules: docs/predictor.md).  A type's ``low``/``high``
    sum its nodes' 90 % bounds: conservative, wider than the sum's own interval unless errors move together.
    """
    leaves: dict[str, list[Node]] = defaultdict(list)
    owners: dict[str, set[str]] = defaultdict(set)
    for parent in record.root.walk():
        for leaf in parent.children:
            if not leaf.children:
                leaves[parent.type].append(leaf)
                owners[parent.type].add(parent.id)
    shares = []
    for kind, owned in leaves.items():
        energy, high = _sum([leaf.predicted_energy for leaf in owned]), _sum([leaf.predicted_high for leaf in owned])
        if energy is None or (energy == 0 and not high):
            continue
        shares.append(TypeEnergy(type=kind, count=len(owners[kind]), energy=energy,
                                 low=_sum([leaf.predicted_low for leaf in owned]), high=high))
    return sorted(shares, key=lambda s: (-s.energy, s.type))


def pareto_front(energy: Sequence[float], accuracy: Sequence[float]) -> np.ndarray:
    """Which points no other point beats: another one dominates a point with no more energy, no less
    accuracy and strictly better in one of them (equal points are all on the front)."""
    e, a = np.asarray(energy, dtype=float), np.asarray(accuracy, dtype=float)
    no_worse = (e[:, None] <= e[None, :]) & (a[:, None] >= a[None, :])  # [i, j]: i is no worse than j
    better = (e[:, None] < e[None, :]) | (a[:, None] > a[None, :])
    return np.asarray(~(no_worse & better).any(axis=0))


def _fmt(joules: float) -> str:
    return f"{joules:.4g} J"


def _answer(question: str, chosen: WhatIfPoint | None, notes: list[str]) -> Answer:
    if chosen is not None and chosen.extrapolated:
        notes.append("it is extrapolated (outside the predictor's training data)")
    return Answer(question=question, model=None if chosen is None else chosen.model,
                  energy=None if chosen is None else chosen.energy,
                  accuracy=None if chosen is None else chosen.accuracy, note="; ".join(notes))


def best_within(points: Sequence[WhatIfPoint], budget_j: float) -> Answer:
    """The most accurate point predicted within ``budget_j`` (the least energy among equals); notes when
    its interval reaches above the budget, or a more accurate point's interval reaches below it."""
    question = f"best accuracy within {budget_j:g} J"
    scored = [p for p in points if p.accuracy is not None]
    fitting = sorted((p for p in scored if p.energy <= budget_j), key=lambda p: (-(p.accuracy or 0.0), p.energy))
    if not fitting:
        least = min(scored, key=lambda p: p.energy, default=None)
        why = "" if least is None else f": the least is {least.model} at {_fmt(least.energy)}"
        return _answer(question, None, [f"no point with an accuracy is predicted within {budget_j:g} J{why}"])
    chosen, notes = fitting[0], []
    if chosen.high is not None and chosen.high > budget_j:
        notes.append(f"its 90 % interval reaches {_fmt(chosen.high)}, above the budget")
    maybe = [p for p in scored if p.energy > budget_j and p.low is not None and p.low <= budget_j
             and (p.accuracy or 0.0) > (chosen.accuracy or 0.0)]
    notes += [f"{p.model} (accuracy {p.accuracy:g}, {_fmt(p.energy)}) may fit too: its interval starts at "
              f"{_fmt(p.low or 0.0)}" for p in maybe]
    return _answer(question, chosen, notes)


def least_energy_for(points: Sequence[WhatIfPoint], min_accuracy: float) -> Answer:
    """The point of least predicted energy with an accuracy of at least ``min_accuracy`` (the more accurate
    among equals); notes when the next qualifying point's interval overlaps its own."""
    question = f"least energy for accuracy >= {min_accuracy:g}"
    qualifying = sorted((p for p in points if p.accuracy is not None and p.accuracy >= min_accuracy),
                        key=lambda p: (p.energy, -(p.accuracy or 0.0)))
    if not qualifying:
        best = max((p.accuracy for p in points if p.accuracy is not None), default=None)
        why = "" if best is None else f": the best is {best:g}"
        return _answer(question, None, [f"no point reaches an accuracy of {min_accuracy:g}{why}"])
    chosen, notes = qualifying[0], []
    if len(qualifying) > 1:
        runner = qualifying[1]
        if chosen.high is not None and runner.low is not None and runner.low <= chosen.high:
            notes.append(f"its 90 % interval ({_fmt(chosen.low or 0.0)}–{_fmt(chosen.high)}) overlaps that of "
                         f"{runner.model} ({_fmt(runner.low)}–{_fmt(runner.high or 0.0)}), so the order may differ")
    return _answer(question, chosen, notes)
