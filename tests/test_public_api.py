"""The public Python API: docs/python-api.md runs, ``import irene_core`` and ``irene --help`` stay light,
every exported name resolves, ``predict`` and ``to_pandas`` on a real traced model."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import irene_core
import irene_core.plugin_api
from irene_core import IreneError, TracedModel, TreeRecord
from irene_meter_rapl.testing import PowercapTree

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"
HEAVY = ("numpy", "scipy", "sklearn", "pandas", "torch", "transformers", "tensorflow")

#: Runs in a fresh interpreter: ``import irene_core`` (no argument) or the ``irene`` console script with
#: the given arguments; prints JSON: the exit code, each heavy module imported with the chain of
#: (non-stdlib) import lines that first imported it, and the ``irene`` plugin entry-point modules loaded.
PROBE = """
import importlib.abc, json, os, sys, sysconfig, traceback
from importlib.metadata import entry_points
HEAVY = set(sys.argv[1].split(","))
STDLIB = sysconfig.get_paths()["stdlib"] + os.sep
first_import = {}
class Spy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in HEAVY and name not in first_import:
            frames = traceback.extract_stack()[:-1]
            first_import[name] = " > ".join(f"{f.filename}:{f.lineno}" for f in frames
                                            if not f.filename.startswith(("<", STDLIB)))
sys.meta_path.insert(0, Spy())
code = 0
if len(sys.argv) == 2:
    import irene_core
else:
    (script,) = entry_points(group="console_scripts", name="irene")
    sys.argv = ["irene", *sys.argv[2:]]
    try:
        code = script.load()()
    except SystemExit as exc:
        code = exc.code
loaded = sorted(ep.module for ep in entry_points(group="irene") if ep.module in sys.modules)
heavy = {name: first_import.get(name, "?") for name in sorted(HEAVY & set(sys.modules))}
print(json.dumps({"code": code, "heavy": heavy, "plugins": loaded}))
"""


def python_blocks(text: str) -> list[str]:
    """The code of every fenced ``python`` block of a markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```$", text, re.S | re.M)


def probe(*argv: str) -> tuple[str, dict[str, Any]]:
    """Run :data:`PROBE` in a subprocess with every installed plugin; (stdout before the JSON, the JSON)."""
    env = {k: v for k, v in os.environ.items() if k != "IRENE_LOAD_PLUGINS"}
    proc = subprocess.run([sys.executable, "-c", PROBE, ",".join(HEAVY), *argv], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    *output, result = proc.stdout.splitlines()
    return "\n".join(output), json.loads(result)


@pytest.fixture(scope="module")
def traced() -> TracedModel:
    return irene_core.trace("bert-L2-H128", batch_size=2, seq_len=16)


@pytest.fixture(scope="module")
def measured_and_predicted(traced: TracedModel) -> TreeRecord:
    """The traced model predicted, with made-up ground truth (2 × predicted) on the real nodes."""
    (record,) = irene_core.predict(traced.record)
    for node in record.nodes():
        node.ground_truth_energy = 2 * node.predicted_energy
    return record


@pytest.fixture
def rapl_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``IRENE_RAPL_ROOT``: an emulated powercap tree whose package counter advances at 20 W."""
    with PowercapTree(tmp_path / "powercap", {"package-0": 20.0}) as tree:
        monkeypatch.setenv("IRENE_RAPL_ROOT", str(tree.root))
        yield tree.root


# -- the documentation --------------------------------------------------------------------------------
def test_every_python_block_of_the_api_page_runs(rapl_root, tmp_path, monkeypatch):
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    for i, block in enumerate(blocks, 1):
        exec(compile(block, f"{DOC.name} block {i}", "exec"), namespace)
    assert namespace["w"].measurement.energy_j > 0
    assert namespace["predicted"].root.predicted_energy > 0
    assert not namespace["top"].empty
    assert (tmp_path / "bert-L2-H128.jsonl").is_file()


def test_the_api_page_lists_exactly_the_exported_names():
    exports = DOC.read_text(encoding="utf-8").split("## What `irene_core` exports", 1)[1]
    sections = exports.split("`irene_core.plugin_api.__all__`")
    assert len(sections) == 2
    listed = [set(re.findall(r"`(\w+)`", "\n".join(re.findall(r"^- .*$", part, re.M)))) for part in sections]
    assert listed == [set(irene_core.__all__), set(irene_core.plugin_api.__all__)]


# -- import cost ----------------------------------------------------------------------------------------
def test_import_irene_core_loads_nothing_heavy():
    _, result = probe()
    assert result["heavy"] == {}


@pytest.mark.parametrize(("args", "expected"), [(["--version"], f"irene, version {irene_core.__version__}"),
                                                (["--help"], "Usage: irene")])
def test_the_console_script_loads_plugins_but_nothing_heavy(args, expected):
    output, result = probe(*args)
    assert result["code"] == 0 and expected in output
    assert len(result["plugins"]) >= 2  # first-party plugins are installed and were loaded
    assert result["heavy"] == {}, f"imported at `irene {' '.join(args)}`: {result['heavy']}"


# -- exported names -------------------------------------------------------------------------------------
def test_public_names_resolve_and_are_listed():
    from irene_core import Node, Predictor, TreeRecord, hookimpl, open_meter  # noqa: F401

    for module in (irene_core, irene_core.plugin_api):
        assert module.__all__
        for name in module.__all__:
            assert getattr(module, name) is not None, name
        assert set(module.__all__) - set(dir(module)) == set()
        with pytest.raises(AttributeError, match="no_such_name"):
            module.no_such_name  # noqa: B018


# -- predict --------------------------------------------------------------------------------------------
def test_predict_accepts_a_record_records_or_a_traced_model(traced):
    by_record = irene_core.predict(traced.record)
    assert by_record == irene_core.predict(traced)
    assert by_record == irene_core.predict(r for r in [traced.record])
    assert by_record == irene_core.load_reference_predictor("model").predict([traced.record])
    assert len(irene_core.predict([traced.record, traced.record])) == 2


def test_predict_uses_the_given_predictor(traced):
    class Echo:
        def predict(self, records: list[TreeRecord]) -> list[TreeRecord]:
            return records

    assert irene_core.predict(traced, Echo()) == [traced.record]


# -- to_pandas ------------------------------------------------------------------------------------------
def test_to_pandas_has_one_row_per_node_with_the_record_s_values(measured_and_predicted):
    record = measured_and_predicted
    frame = record.to_pandas()
    nodes = list(record.nodes(include_synthetic=True))
    assert len(frame) == len(nodes) > len(list(record.nodes()))
    assert frame.synthetic.sum() == sum(n.synthetic for n in nodes) > 0
    assert list(frame.id) == [n.id for n in nodes]
    assert list(frame.type[frame.synthetic].unique()) == [irene_core.OWN_OPS_TYPE]
    roots = frame[frame.parent_id.isna()]
    assert list(roots.id) == [record.root.id] and list(roots.depth) == [0]
    assert set(frame.parent_id.dropna()) <= set(frame.id)
    parents = frame.set_index("id").loc[frame.parent_id.dropna()]
    assert (frame.depth[frame.parent_id.notna()].to_numpy() == parents.depth.to_numpy() + 1).all()
    assert list(frame.predicted_energy) == [n.predicted_energy for n in nodes]
    assert list(frame.predicted_low) == [n.predicted_low for n in nodes]
    assert list(frame.predicted_high) == [n.predicted_high for n in nodes]
    assert ((frame.predicted_low <= frame.predicted_energy) & (frame.predicted_energy <= frame.predicted_high)).all()
    assert list(frame.extrapolated) == [n.extrapolated for n in nodes] and frame.extrapolated.any()
    truth = [math.nan if n.ground_truth_energy is None else n.ground_truth_energy for n in nodes]
    assert frame.ground_truth_energy.tolist() == pytest.approx(truth, nan_ok=True)
    for name in irene_core.MODEL_FEATURES:
        assert frame[f"features.{name}"].tolist() == pytest.approx([n.features.get(name, math.nan) for n in nodes],
                                                                     nan_ok=True)
    key = record.key
    assert (frame.model == key.model).all() and (frame.batch_size == 2).all() and (frame.seq_len == 16).all()
    assert (frame.phase == key.phase).all() and (frame.device == key.device).all()
    assert frame.context_len.isna().all() and (frame.level == [n.level for n in nodes]).all()


def test_to_pandas_of_several_records_and_of_none(measured_and_predicted):
    one = irene_core.to_pandas(measured_and_predicted)
    two = irene_core.to_pandas([measured_and_predicted, measured_and_predicted])
    assert len(two) == 2 * len(one) and list(two.columns) == list(one.columns)
    assert list(irene_core.to_pandas([]).columns[-5:]) == [
        "ground_truth_energy", "predicted_energy", "predicted_low", "predicted_high", "extrapolated"]


def test_to_pandas_without_pandas_says_how_to_install_it(measured_and_predicted, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(IreneError, match=r"^to_pandas needs pandas: pip install 'irene\[pandas\]'$"):
        measured_and_predicted.to_pandas()
