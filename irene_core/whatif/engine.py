"""The architecture what-if: trace every point on meta, predict it, say where its energy goes, compare."""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from irene_core.errors import IreneError, os_error_message
from irene_core.tracing.trace import trace
from irene_core.tree.schema import TreeRecord
from irene_core.whatif.analysis import best_within, least_energy_for, pareto_front, per_type
from irene_core.whatif.schema import MAX_POINTS, Answer, WhatIfPoint, WhatIfQuery, WhatIfResult

if TYPE_CHECKING:
    from irene_core.predictor.predictor import Predictor

_BRACES = re.compile(r"\{([^{}]*)\}")
#: Commas that separate models (not those inside a brace pattern).
_TOP_LEVEL_COMMA = re.compile(r",(?![^{]*\})")
#: How many names a notice lists before "…".
_NAMES_SHOWN = 6
TraceKey = tuple[str, str, tuple[tuple[str, int], ...], int, int]


@dataclass(frozen=True)
class PointSpec:
    """A point to trace: the model, the settings varied on it, its display name."""

    model: str
    settings: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """``bert-L4-H256``, or ``bert-base-uncased[layers=4,hidden=256]`` (as the torch tracer names it)."""
        if not self.settings:
            return self.model
        return f"{self.model}[{','.join(f'{k}={v}' for k, v in self.settings.items())}]"


def expand_models(text: str) -> list[str]:
    """``gpt2,bert-L{2,4}-H{128,256}`` → the models it names, in order, without repeats (brace patterns
    expand as in a shell; commas inside braces separate choices)."""
    if set("{}") & set(_BRACES.sub("", text)):
        raise IreneError(f"--models {text}: unbalanced braces (write a pattern as bert-L{{2,4}}-H{{128,256}})")
    names: list[str] = []
    for item in (part.strip() for part in _TOP_LEVEL_COMMA.split(text)):
        parts = _BRACES.split(item)
        choices = [[p] if i % 2 == 0 else [c.strip() for c in p.split(",")] for i, p in enumerate(parts)]
        names.extend("".join(combo) for combo in itertools.product(*choices))
    return [n for n in dict.fromkeys(names) if n]


def plan(query: WhatIfQuery) -> list[PointSpec]:
    """The points of ``query`` in order: its models, or the cartesian product of ``vary`` on ``base``."""
    if bool(query.models) == (query.base is not None):
        raise IreneError("--models: give either a MODEL to vary or --models, not both" if query.models
                         else "MODEL: give a model to vary (with --vary), or --models")
    if query.models:
        if query.vary:
            raise IreneError("--vary: varies one MODEL; with --models, list the variants as models")
        specs = [PointSpec(name) for name in expand_models(",".join(query.models))]
        flag = "--models"
    else:
        empty = [key for key, values in query.vary.items() if not values]
        if empty:
            raise IreneError(f"--vary {empty[0]}: no values (write {empty[0]}=2,4,6)")
        keys = list(query.vary)
        combos = itertools.product(*(dict.fromkeys(v) for v in query.vary.values()))
        specs = [PointSpec(query.base or "", dict(zip(keys, combo, strict=True))) for combo in combos]
        flag = "--vary"
    if not specs:
        raise IreneError("--models: names no model")
    if len(specs) > MAX_POINTS:
        raise IreneError(f"{flag}: {len(specs)} points, more than the {MAX_POINTS} one what-if traces")
    return specs


def _check_questions(query: WhatIfQuery) -> None:
    asked = [flag for flag, value in (("--budget-j", query.budget_j), ("--min-accuracy", query.min_accuracy))
             if value is not None]
    if asked and not query.accuracy:
        raise IreneError(f"{asked[0]}: needs --accuracy (the scores to compare)")
    bad = [name for name, score in query.accuracy.items() if not math.isfinite(score)]
    if bad:
        raise IreneError(f"--accuracy: the score of {bad[0]} is not a finite number")


def _traced(spec: PointSpec, query: WhatIfQuery, cache: MutableMapping[Any, TreeRecord] | None) -> TreeRecord:
    key: TraceKey = (query.framework, spec.model, tuple(spec.settings.items()), query.batch_size, query.seq_len)
    if cache is not None and key in cache:
        return cache[key]
    record = trace(spec.model, query.batch_size, query.seq_len, framework=query.framework, meta=True,
                   config=spec.settings or None).record
    record.model_name = spec.name
    if cache is not None:
        cache[key] = record
    return record


def _point(spec: PointSpec, record: TreeRecord, accuracy: float | None) -> WhatIfPoint:
    root = record.root
    return WhatIfPoint(
        model=spec.name, settings=spec.settings, parameters=int(root.features.get("num_parameters", 0)),
        flops=root.features.get("flops", 0.0), energy=root.predicted_energy or 0.0, low=root.predicted_low,
        high=root.predicted_high, extrapolated=root.extrapolated,
        notices=list(dict.fromkeys(f"{n.source}: {n.message}" for n in record.notices)),
        per_type=per_type(record), accuracy=accuracy, pareto=False,
    )


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_NAMES_SHOWN])
    return shown + (f", … ({len(names)} in all)" if len(names) > _NAMES_SHOWN else "")


def _notices(query: WhatIfQuery, points: Sequence[WhatIfPoint]) -> list[str]:
    notices = []
    extrapolated = [p.model for p in points if p.extrapolated]
    if extrapolated:
        notices.append(f"{len(extrapolated)} of {len(points)} points are extrapolated (outside the predictor's "
                       f"training data; intervals widened): {_names(extrapolated)}")
    if query.accuracy:
        known = {p.model for p in points}
        unmatched = [name for name in query.accuracy if name not in known]
        if unmatched:
            notices.append(f"--accuracy: {len(unmatched)} name(s) match no point: {_names(unmatched)}")
        unscored = [p.model for p in points if p.accuracy is None]
        if unscored:
            notices.append(f"--accuracy: no score for {len(unscored)} point(s), left off the Pareto front and the "
                           f"answers: {_names(unscored)}")
    return notices


def whatif(
    query: WhatIfQuery, *, predictor: Predictor | None = None,
    trace_cache: MutableMapping[Any, TreeRecord] | None = None,
) -> WhatIfResult:
    """Trace every point of ``query`` on meta, predict it, group its energy per module type, mark the
    energy-vs-accuracy Pareto front and answer the budget / min-accuracy questions.

    ``predictor``: a loaded one (a warm server's), else ``query.predictor`` is loaded; ``trace_cache``
    keeps meta traces between calls (keyed by framework, model, settings, batch size and sequence length).
    Bad input raises a one-line :class:`~irene_core.errors.IreneError` naming the flag.
    """
    from irene_core.predictor.predictor import load_predictor

    specs = plan(query)
    _check_questions(query)
    records = [_traced(spec, query, trace_cache) for spec in specs]
    model = predictor if predictor is not None else load_predictor(query.predictor)
    predicted = model.predict(records)
    points = [_point(s, r, query.accuracy.get(s.name)) for s, r in zip(specs, predicted, strict=True)]
    scored = [p for p in points if p.accuracy is not None]
    for point, on_front in zip(scored, pareto_front([p.energy for p in scored], [p.accuracy or 0.0 for p in scored]),
                               strict=True):
        point.pareto = bool(on_front)
    answers: list[Answer] = []
    if query.budget_j is not None:
        answers.append(best_within(points, query.budget_j))
    if query.min_accuracy is not None:
        answers.append(least_energy_for(points, query.min_accuracy))
    return WhatIfResult(batch_size=query.batch_size, seq_len=query.seq_len, predictor=query.predictor,
                        device=model.hardware, points=points, answers=answers, notices=_notices(query, points))


def read_accuracy(path: Path) -> dict[str, float]:
    """``model,score`` rows of a CSV file (a header row is optional; higher is better) as a mapping;
    a bad row raises a one-line IreneError ``FILE:LINE: …``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise IreneError(os_error_message(exc, path)) from None
    except UnicodeDecodeError:
        raise IreneError(f"{path}: not UTF-8 text") from None
    scores: dict[str, float] = {}
    lines: dict[str, int] = {}
    rows = csv.reader(io.StringIO(text))
    first = True
    for row in rows:
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        where = f"{path}:{rows.line_num}"
        if len(cells) != 2:
            raise IreneError(f"{where}: expected model,score, got {len(cells)} field(s)")
        name, raw = cells
        try:
            score = float(raw)
        except ValueError:
            if first:  # the header
                first = False
                continue
            raise IreneError(f"{where}: score {raw!r} is not a number") from None
        first = False
        if not name or not math.isfinite(score):
            raise IreneError(f"{where}: {'empty model name' if not name else f'score {raw} is not finite'}")
        if name in scores:
            raise IreneError(f"{where}: {name} is listed twice (first on line {lines[name]})")
        scores[name], lines[name] = score, rows.line_num
    if not scores:
        raise IreneError(f"{path}: no model,score rows")
    return scores
