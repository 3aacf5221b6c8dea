"""The core commands: the console script itself (version, --debug, an environment without a plugin) and
imports, evaluation and errors through its entry point in process."""

import json

from irene_core.tree.jsonl import load_records, write_records


def test_version(cli_run):
    assert cli_run("--version").stdout.startswith("irene, version ")


def test_import_then_evaluate(cli_main, device1_dir, tmp_path):
    data = tmp_path / "d1.jsonl"
    out = cli_main("import-csv", str(device1_dir), "-o", str(data), "--models", "distilgpt2,gpt2").stdout
    assert "55 trees" in out and "distilgpt2" in out
    records = load_records(data)
    assert {r.model_name for r in records} == {"distilgpt2", "gpt2"} and records[0].device == "device_1"
    for r in records:  # a prediction 10 % high on every node
        for n in r.nodes():
            n.predicted_energy = 1.1 * n.ground_truth_energy
    pred = tmp_path / "pred.jsonl"
    write_records(pred, records)
    report = json.loads(cli_main("evaluate", str(data), str(pred), "--json").stdout)
    assert set(report["models"]) == {"distilgpt2", "gpt2"}
    for level in ("ml", "module", "model"):
        assert abs(report["overall"][level] - 10.0) < 1e-9
    table = cli_main("evaluate", str(data), str(pred)).stdout
    assert "overall" in table and "10.00" in table


def test_errors_are_one_line_with_non_zero_exit(cli_main, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"model_name": "m"}\n')
    proc = cli_main("evaluate", str(bad), str(bad), check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: {bad}:1: missing field 'batch_size'"
    assert "Traceback" not in proc.stderr
    missing = cli_main("import-csv", str(tmp_path / "nope"), "-o", str(tmp_path / "x.jsonl"), check=False)
    assert missing.returncode == 1 and missing.stderr.strip() == f"error: {tmp_path / 'nope'}: not a directory"
    assert not (tmp_path / "x.jsonl").exists()


def test_debug_shows_traceback(cli_run, tmp_path):
    proc = cli_run("--debug", "evaluate", str(tmp_path / "none.jsonl"), str(tmp_path / "none.jsonl"), check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_usage_error_exit_code(cli_main):
    proc = cli_main("import-csv", check=False)
    assert proc.returncode == 2 and "Missing argument" in proc.stderr


def test_missing_meter_plugin_gets_the_install_hint(cli_run, tmp_path):
    import os

    without_emonpi = {**os.environ, "IRENE_LOAD_PLUGINS": "torch,rapl,nvml,resource,model,transformers"}
    for args in (("meter", "measure", "--meter", "emonpi", "--seconds", "1"),
                 ("run", "--meter", "emonpi", "--model", "bert-L2-H128", "-o", str(tmp_path / "run.jsonl"))):
        proc = cli_run(*args, check=False, env=without_emonpi)
        assert proc.returncode == 1, proc.stderr
        line = proc.stderr.strip()
        assert not (tmp_path / "run.jsonl").exists()
        assert "\n" not in line and "no meter named 'emonpi'" in line and "pip install irene-meter-emonpi" in line
