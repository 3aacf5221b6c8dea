"""``irene trace --framework tensorflow`` through the core CLI's entry point (in process, on the tests'
one-thread TensorFlow), and the plugin's light entry point in fresh processes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from irene_core.tree.jsonl import load_records


@pytest.mark.usefixtures("keras_modules")
def test_irene_trace_prints_and_writes_a_tensorflow_record(cli_main, tmp_path):
    out = tmp_path / "trace.jsonl"
    proc = cli_main("trace", "--framework", "tensorflow", "bert-L2-H128", "-b", "2", "-s", "8", "--depth", "1",
                    "-o", str(out))
    assert "bert-L2-H128 · batch 2 · seq 8" in proc.stdout
    assert "transformer_layer_0:TransformerEncoder" in proc.stdout and "wrote 1 record" in proc.stdout
    (record,) = load_records(out)
    assert record.meta["framework"] == "tensorflow" and record.meta["model_class"] == "BertBackbone"
    levels = record.by_level()
    assert (len(levels["model"]), len(levels["module"]), len(levels["ml"])) == (1, 4, 35)
    assert record.root.find("transformer_layer_1.self_attention_layer", "MatMul") is not None


def test_irene_trace_reports_unknown_models_in_one_line(cli_main):
    bad = cli_main("trace", "--framework", "tensorflow", "bert-nope", check=False)
    assert bad.returncode == 1
    assert "unknown model 'bert-nope' for framework 'tensorflow'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_plugin_is_listed_and_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from irene_core.plugins import get_registry\n"
        "fw = get_registry().get('framework', 'tensorflow')\n"
        "print(len(fw.presets()), 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert proc.stdout.split() == ["29", "False", "False"]
    listing = subprocess.run(
        [sys.executable, "-m", "irene_core", "plugins", "--json"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    row = next(r for r in json.loads(listing.stdout) if r["name"] == "tensorflow")
    assert (row["status"], row["distribution"], row["contributes"]) == (
        "ok", "irene-framework-tensorflow", ["framework:tensorflow"]
    )
