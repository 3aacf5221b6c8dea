"""Rebuild model trees from the paper's original CSV release (four levels, one row per node).

Rules (see docs/data-format.md):
- ``model_level_features.csv`` gives the root (scope ``''``); ``module_level_features.csv`` the
  modules; ``ml1_level_features.csv`` (module primitives) and ``ml2_level_features.csv`` (functional
  ops, named after the module that calls them) the leaves.
- A module or ml1 leaf hangs under the module with the longest *proper* scope prefix that has a row;
  an ml2 op hangs under the module whose scope it carries (or, failing that, the longest prefix).
  ModuleList containers have no rows, so ``encoder.layer.3`` attaches to ``encoder``; a node with
  no module ancestor attaches to the root.
- Identical repeated rows (the two MatMuls of one attention block) are kept as separate leaves with
  ids ``scope:MatMul`` and ``scope:MatMul#2``.
- The release's measuring code cached by (type, flops, ``mem_bytes``): a node whose type, those two
  features and energy equal an earlier node's (pre-order) of its tree carries that node's
  measurement and says so with ``measured_as`` (its id).  Identical layers do the same work; the two
  matmuls of an attention do not (:meth:`~irene_core.tree.schema.TreeRecord.borrowed`).
- A module row with no rows below it (tiny-ctrl's ReLU, which its measuring code listed with the
  modules) is a leaf: level ``ml``.  No module of the paper's six models is one.
- ``energy_mean`` becomes ``ground_truth_energy``; the other numeric columns become features.  The
  release has no parameter counts and none are made up: no node gets ``num_parameters`` (``irene
  export --format irene`` writes 0 where the original code needs one).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from irene_core.errors import IreneError, os_error_message
from irene_core.tree.schema import MODEL_FEATURES, RESOURCE_FEATURES, Node, TreeRecord, unique_id

LEVEL_FILES = {
    "model": "model_level_features.csv",
    "module": "module_level_features.csv",
    "ml1": "ml1_level_features.csv",
    "ml2": "ml2_level_features.csv",
}
#: The CSVs' feature columns: every model feature but num_parameters (the release has none), every resource feature.
FEATURE_COLUMNS = tuple(f for f in MODEL_FEATURES if f != "num_parameters") + RESOURCE_FEATURES
REQUIRED_COLUMNS = (*FEATURE_COLUMNS, "energy_mean", "level_name", "model_name")

#: transformers class names of the paper's models (their roots in the CSVs are named by model).
PAPER_MODEL_CLASSES = {
    "bert-base-uncased": "BertModel",
    "distilbert-base-uncased": "DistilBertModel",
    "roberta-base": "RobertaModel",
    "gpt2": "GPT2Model",
    "distilgpt2": "GPT2Model",
    "openai-gpt": "OpenAIGPTModel",
    "sshleifer/tiny-ctrl": "CTRLModel",
}
#: ``meta["family"]`` of the paper's models (the ``family`` split of ``irene crossvalidate``).
PAPER_MODEL_FAMILIES = {
    "bert-base-uncased": "encoder",
    "distilbert-base-uncased": "encoder",
    "roberta-base": "encoder",
    "gpt2": "decoder",
    "distilgpt2": "decoder",
    "openai-gpt": "decoder",
    "sshleifer/tiny-ctrl": "decoder",
}
PAPER_MODELS = ("bert-base-uncased", "distilbert-base-uncased", "roberta-base", "gpt2", "distilgpt2", "openai-gpt")


@dataclass
class _Row:
    level: str
    scope: str
    type: str
    features: dict[str, float]
    energy: float
    where: str


def _read_level(path: Path, level: str) -> dict[tuple[str, int, int], list[_Row]]:
    if not path.is_file():
        raise IreneError(f"{path}: missing (expected the {level} level of the CSV release)")
    out: dict[tuple[str, int, int], list[_Row]] = defaultdict(list)
    reader: csv.DictReader[str] | None = None
    try:
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
            reader = csv.DictReader(handle)
            _check_utf8(reader.fieldnames or [], f"{path}:1")
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise IreneError(f"{path}: missing columns: {', '.join(missing)}")
            for lineno, raw in enumerate(reader, 2):
                _add_row(out, raw, level, f"{path}:{lineno}")
    except csv.Error as exc:
        raise IreneError(f"{path}:{(reader.line_num if reader else 0) + 1}: not valid CSV ({exc})") from None
    except OSError as exc:
        raise IreneError(os_error_message(exc, path)) from None
    return out


def _check_utf8(fields: Iterable[object], where: str) -> None:
    """Refuse undecodable bytes (read as surrogates, so the error names the right line)."""
    try:
        "".join(f for f in fields if isinstance(f, str)).encode("utf-8")
    except UnicodeEncodeError:
        raise IreneError(f"{where}: not UTF-8") from None


def _add_row(out: dict[tuple[str, int, int], list[_Row]], raw: dict[str, str], level: str, where: str) -> None:
    _check_utf8(raw.values(), where)
    try:
        features = {c: float(raw[c]) for c in FEATURE_COLUMNS}
        energy = float(raw["energy_mean"])
    except (TypeError, ValueError) as exc:
        raise IreneError(f"{where}: not a number ({exc})") from None
    bad = [c for c, v in features.items() if not math.isfinite(v)]
    if bad or not math.isfinite(energy) or energy < 0:
        raise IreneError(f"{where}: non-finite or negative value in {', '.join(bad) or 'energy_mean'}")
    if raw["level_name"] is None or raw["model_name"] is None:
        raise IreneError(f"{where}: missing values (fewer fields than columns)")
    name = raw["level_name"]
    scope, _, type_ = name.rpartition(":") if level != "model" else ("", "", name)
    key = (raw["model_name"], int(features["batch_size"]), int(features["seq_len"]))
    out[key].append(_Row(level, scope, type_, features, energy, where))


def _parent_scope(scope: str, modules: set[str], inclusive: bool) -> str:
    """Longest scope prefix (dot boundary) that is a module; ``''`` (the root) if none."""
    if inclusive and scope in modules:
        return scope
    parts = scope.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in modules:
            return prefix
    return ""


def _node(row: _Row, level: str, taken: set[str]) -> Node:
    return Node(
        id=unique_id(row.scope, row.type, taken),
        scope=row.scope,
        type=row.type,
        level=level,
        features=row.features,
        ground_truth_energy=row.energy,
    )


def _build(
    model: str, model_row: _Row, modules: list[_Row], ml1: list[_Row], ml2: list[_Row], device: str | None,
    family: str | None,
) -> TreeRecord:
    taken: set[str] = set()
    root = Node(
        id=unique_id("", PAPER_MODEL_CLASSES.get(model, model), taken),
        scope="",
        type=PAPER_MODEL_CLASSES.get(model, model),
        level="model",
        features=model_row.features,
        ground_truth_energy=model_row.energy,
    )
    by_scope: dict[str, Node] = {"": root}
    for row in modules:
        if row.scope in by_scope:
            raise IreneError(f"{row.where}: module scope '{row.scope}' appears twice for {model}")
        by_scope[row.scope] = _node(row, "module", taken)
    module_scopes = set(by_scope) - {""}
    for row in sorted(modules, key=lambda r: r.scope.count(".")):
        by_scope[_parent_scope(row.scope, module_scopes, inclusive=False)].children.append(by_scope[row.scope])
    for rows, inclusive in ((ml1, False), (ml2, True)):
        for row in rows:
            parent = by_scope[_parent_scope(row.scope, module_scopes, inclusive)]
            parent.children.append(_node(row, "ml", taken))
    for scope, node in by_scope.items():
        if scope and not node.children:
            node.level = "ml"
    record = TreeRecord(
        model_name=model,
        batch_size=int(model_row.features["batch_size"]),
        seq_len=int(model_row.features["seq_len"]),
        device=device,
        meta={} if family is None else {"family": family},
        root=root,
    )
    record.check()
    _mark_cached_copies(record)
    return record


def _mark_cached_copies(record: TreeRecord) -> None:
    """Set ``measured_as`` on every node that carries an earlier node's cached measurement."""
    first: dict[tuple[str, float, float, float], str] = {}
    for node in record.nodes():
        if node.ground_truth_energy is None or not {"flops", "mem_bytes"} <= node.features.keys():
            continue
        key = (node.type, node.features["flops"], node.features["mem_bytes"], node.ground_truth_energy)
        if key in first:
            node.measured_as = first[key]
        else:
            first[key] = node.id


def import_csv_dir(
    directory: str | Path, device: str | None = None, models: list[str] | None = None,
    families: Mapping[str, str] | None = None,
) -> list[TreeRecord]:
    """One tree per (model, batch, seq) found in the model-level CSV of ``directory``; ``meta.family``
    from ``families`` (model name → family), else that of a paper model, else none (adding
    ``mem_bytes_moved`` takes the family of a model the tracer builds)."""
    base = Path(directory)
    if not base.is_dir():
        raise IreneError(f"{base}: not a directory")
    families = {**PAPER_MODEL_FAMILIES, **(families or {})}
    levels = {level: _read_level(base / name, level) for level, name in LEVEL_FILES.items()}
    device = device or base.name
    records = []
    for key, model_rows in levels["model"].items():
        model = key[0]
        if models is not None and model not in models:
            continue
        if len(model_rows) != 1:
            raise IreneError(f"{model_rows[1].where}: a second model-level row for {key}")
        records.append(
            _build(
                model, model_rows[0], levels["module"].get(key, []), levels["ml1"].get(key, []),
                levels["ml2"].get(key, []), device, families.get(model),
            )
        )
    return records
