"""Cross-validation splits: which trees train a predictor and which test it.

A :class:`Split` has a training side and a test side, each a :class:`Side` that selects trees by
``models``, ``batch_size``, ``seq_len`` and ``tokens`` (= batch × seq; ranges inclusive, ``None`` =
open; a key may hold several ranges, any of which selects: train on batch ≤ 8 and ≥ 32, test 16 to
24, between the training sizes), and a way to make folds (``hold_out``):

- ``"none"``: one fold, the training side against the test side;
- ``"model"`` (``leave_one_model_out`` in a split file): one fold per test model, with that model
  removed from training (and, with ``twin_out``, its twin too);
- ``"family"``: one fold per model family (``meta.family`` of the records: encoder, decoder,
  encoder-decoder), trained on the other families.

A model's **twin** is the other model sharing most ml-node shapes (type, batch, seq, flops,
mem_bytes) with it, ties broken by name.  Bad input (unknown keys, a side that selects no trees,
reversed ranges, a tree on both sides of a fold) raises a one-line :class:`IreneError` naming the
split and the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from irene_core.errors import IreneError
from irene_core.tree.schema import TreeRecord

if TYPE_CHECKING:  # numpy is imported where folds are planned: the CLI lists the splits without it
    import numpy as np

Range = tuple[float | None, float | None]
#: One range, or several of which any selects.
Span = Range | tuple[Range, ...]
HoldOut = Literal["none", "model", "family"]
RANGE_KEYS = ("batch_size", "seq_len", "tokens")
SIDE_KEYS = ("models", *RANGE_KEYS)
SPLIT_KEYS = ("name", "leave_one_model_out", "train", "test")


@dataclass(frozen=True)
class Side:
    """Trees selected by model name and inclusive ranges of batch, sequence length and tokens (a key of
    several ranges: any of them)."""

    models: tuple[str, ...] | None = None
    batch_size: Span | None = None
    seq_len: Span | None = None
    tokens: Span | None = None

    def matches(self, record: TreeRecord) -> bool:
        if self.models is not None and record.model_name not in self.models:
            return False
        batch, seq = record.batch_size, record.seq_len
        values = {"batch_size": batch, "seq_len": seq, "tokens": batch * seq}
        for key, value in values.items():
            span: Span | None = getattr(self, key)
            if span is not None and not any(
                (low is None or value >= low) and (high is None or value <= high) for low, high in _ranges(span)
            ):
                return False
        return True


def _ranges(span: Span) -> tuple[Range, ...]:
    """The ranges of a span (one range: itself)."""
    return span if isinstance(span[0], tuple) else (span,)


@dataclass(frozen=True)
class Split:
    """A named train/test split and how its folds are made (see the module docstring)."""

    name: str
    train: Side = field(default_factory=Side)
    test: Side = field(default_factory=Side)
    hold_out: HoldOut = "none"
    twin_out: bool = False


@dataclass
class FoldPlan:
    """One fold: which records train, which are tested (bool per record), and the removed twins."""

    label: str
    train: np.ndarray
    test: np.ndarray
    twins: dict[str, str] = field(default_factory=dict)


BUILTIN_SPLITS: dict[str, Split] = {
    split.name: split
    for split in (
        Split("model", hold_out="model"),
        Split("twin-out", hold_out="model", twin_out=True),
        Split("family", hold_out="family"),
        Split("extrapolate-batch", Side(batch_size=(None, 16)), Side(batch_size=(24, None)), "model"),
        Split("extrapolate-seq", Side(seq_len=(None, 128)), Side(seq_len=(256, None)), "model"),
        Split(
            "extrapolate-both",
            Side(batch_size=(None, 16), seq_len=(None, 128)),
            Side(batch_size=(24, None), seq_len=(160, None)),
            "model",
        ),
    )
}


def resolve_splits(names: Sequence[str] = (), files: Sequence[str | Path] = ()) -> list[Split]:
    """Built-in splits by name (``all`` = every built-in) followed by the splits of each file;
    ``model`` alone when neither is given."""
    out: list[Split] = []
    for name in names or ([] if files else ["model"]):
        if name == "all":
            out += BUILTIN_SPLITS.values()
        elif name in BUILTIN_SPLITS:
            out.append(BUILTIN_SPLITS[name])
        else:
            raise IreneError(f"--split {name}: unknown split (choose from: {', '.join(BUILTIN_SPLITS)}, all)")
    for path in files:
        out += load_split_file(path)
    return list(dict.fromkeys(out))


def load_split_file(path: str | Path) -> list[Split]:
    """The splits of a JSON file ``{"splits": [{"name", "leave_one_model_out"?, "train", "test"}, …]}``."""
    import json

    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise IreneError(f"{path}: cannot read the split file ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise IreneError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(document, dict) or set(document) != {"splits"} or not isinstance(document["splits"], list):
        raise IreneError(f'{path}: a split file is an object with one key, "splits": a list of splits')
    if not document["splits"]:
        raise IreneError(f"{path}: splits: the list is empty")
    return [parse_split(entry, f"{path}: split {i + 1}") for i, entry in enumerate(document["splits"])]


def parse_split(entry: Any, where: str = "split") -> Split:
    """One split-file entry → :class:`Split`; ``where`` names it in errors until its name is known."""
    if not isinstance(entry, dict):
        raise IreneError(f"{where}: a split must be a JSON object")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise IreneError(f"{where}: name: a split needs a non-empty string name")
    where = f"split '{name}'"
    _unknown(entry, SPLIT_KEYS, where)
    lomo = entry.get("leave_one_model_out", False)
    if not isinstance(lomo, bool):
        raise IreneError(f"{where}: leave_one_model_out: must be true or false")
    sides = {}
    for side in ("train", "test"):
        if side not in entry:
            raise IreneError(f"{where}: {side}: missing (an object; {{}} selects every tree)")
        sides[side] = _parse_side(entry[side], f"{where}: {side}")
    return Split(name, sides["train"], sides["test"], "model" if lomo else "none")


def _unknown(entry: dict[str, Any], allowed: Sequence[str], where: str) -> None:
    unknown = sorted(set(entry) - set(allowed))
    if unknown:
        raise IreneError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(allowed)})")


def _parse_side(entry: Any, where: str) -> Side:
    if not isinstance(entry, dict):
        raise IreneError(f"{where}: must be an object with keys {', '.join(SIDE_KEYS)}")
    _unknown(entry, SIDE_KEYS, where)
    models = entry.get("models")
    if models is not None and (
        not isinstance(models, list) or not models or not all(isinstance(m, str) and m for m in models)
    ):
        raise IreneError(f"{where}.models: must be a non-empty list of model names")
    ranges = {key: _parse_span(entry[key], f"{where}.{key}") for key in RANGE_KEYS if key in entry}
    return Side(tuple(models) if models is not None else None, **ranges)


def _parse_span(value: Any, where: str) -> Span:
    """``[low, high]``, or a non-empty list of such ranges (any of them selects)."""
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return tuple(_parse_range(v, f"{where}[{i}]") for i, v in enumerate(value))
    return _parse_range(value, where)


def _parse_range(value: Any, where: str) -> Range:
    if not isinstance(value, list) or len(value) != 2:
        raise IreneError(f"{where}: must be [low, high] (inclusive; null = open) or a list of such ranges")
    for bound in value:
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float)) or bound < 0):
            raise IreneError(f"{where}: bounds must be numbers >= 0 or null, got {bound!r}")
    low, high = value
    if low is not None and high is not None and low > high:
        raise IreneError(f"{where}: range [{low}, {high}] is reversed")
    return (low, high)


# -- folds ----------------------------------------------------------------------------------------
def ml_shapes(records: Sequence[TreeRecord]) -> dict[str, set[tuple[Any, ...]]]:
    """Per model: the set of its ml-node shapes (type, batch, seq, flops, mem_bytes)."""
    out: dict[str, set[tuple[Any, ...]]] = {}
    for record in records:
        shapes = out.setdefault(record.model_name, set())
        for node in record.nodes():
            if node.level == "ml" and not node.synthetic:
                f = node.features
                shapes.add(
                    (
                        node.type,
                        f.get("batch_size", record.batch_size),
                        f.get("seq_len", record.seq_len),
                        f.get("flops"),
                        f.get("mem_bytes"),
                    )
                )
    return out


def twin_of(model: str, candidates: Sequence[str], shapes: dict[str, set[tuple[Any, ...]]]) -> str:
    """The candidate sharing most ml-node shapes with ``model`` (ties: the first name in order)."""
    return min(candidates, key=lambda other: (-len(shapes[model] & shapes[other]), other))


def _families(split: Split, records: Sequence[TreeRecord], names: np.ndarray) -> np.ndarray:
    import numpy as np

    families = np.array([r.family for r in records], dtype=object)
    for model in dict.fromkeys(names):
        found = set(families[names == model])
        if None in found or len(found) != 1:
            raise IreneError(
                f"split '{split.name}': meta.family: "
                + ("missing on trees" if None in found else f"differs ({', '.join(sorted(found))}) between trees")
                + f" of {model} (trace them again, or import them with --family {model}=FAMILY)"
            )
    if len(set(families)) < 2:
        raise IreneError(f"split '{split.name}': meta.family: the experiment has one family only ({families[0]})")
    return families


def plan_folds(split: Split, records: Sequence[TreeRecord], models: Sequence[str]) -> list[FoldPlan]:
    """The folds of ``split`` over the experiment's ``records`` (of ``models``, in that order)."""
    import numpy as np

    where = f"split '{split.name}'"
    names = np.array([r.model_name for r in records], dtype=object)
    for side, sel in (("train", split.train), ("test", split.test)):
        absent = [m for m in sel.models or () if m not in models]
        if absent:
            raise IreneError(f"{where}: {side}.models: {', '.join(absent)} not in the experiment ({', '.join(models)})")
    train = np.array([split.train.matches(r) for r in records], dtype=bool)
    test = np.array([split.test.matches(r) for r in records], dtype=bool)
    for side, mask in (("train", train), ("test", test)):
        if not mask.any():
            raise IreneError(f"{where}: {side}: selects no trees of {', '.join(models)}")
    if split.hold_out == "none":
        folds = [FoldPlan(split.name, train, test)]
    elif split.hold_out == "family":
        families = _families(split, records, names)
        order = dict.fromkeys(families[test])
        folds = [FoldPlan(f"testing the {f} family", train & (families != f), test & (families == f)) for f in order]
    else:
        shapes = ml_shapes(records) if split.twin_out else {}
        folds = []
        for model in (m for m in models if (test & (names == m)).any()):
            fold = FoldPlan(f"leaving out {model}", train & (names != model), test & (names == model))
            if split.twin_out:
                twin = twin_of(model, [m for m in models if m != model], shapes)
                fold.twins[model] = twin
                fold.train &= names != twin
                fold.label += f" and its twin {twin}"
            folds.append(fold)
    for fold in folds:
        if not fold.train.any():
            raise IreneError(f"{where}: train: no trees left to train on when {fold.label}")
        both = np.flatnonzero(fold.train & fold.test)
        if len(both):
            r = records[both[0]]
            raise IreneError(
                f"{where}: train/test: {len(both)} tree(s) on both sides (leakage), e.g. {r.model_name} "
                f"batch {r.batch_size} seq {r.seq_len}"
            )
    return folds
