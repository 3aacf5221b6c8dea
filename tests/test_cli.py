"""The core commands: the console script itself (version, --debug, an environment without a plugin) and
imports, evaluation and errors through its entry point in process."""

import csv
import json

from irene_core.tree.jsonl import load_records, write_records
from irene_core.tree.paper_csv import LEVEL_FILES


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


def test_import_names_the_family_of_a_model_it_does_not_know(cli_main, device1_dir, tmp_path):
    data = tmp_path / "d1.jsonl"
    cli_main("import-csv", str(device1_dir), "-o", str(data), "--models", "distilgpt2", "--no-bytes-moved",
             "--family", "distilgpt2=encoder-decoder")
    assert {r.family for r in load_records(data)} == {"encoder-decoder"}
    out = tmp_path / "bad.jsonl"
    for flag, code, message in (
        ("distilgpt2=decoding", 2, "Invalid value for '--family': 'distilgpt2=decoding': FAMILY must be one of "
                                   "encoder, decoder, encoder-decoder"),
        ("distilgpt2", 2, "Invalid value for '--family': 'distilgpt2': expected MODEL=FAMILY"),
        ("gpt2=decoder", 1, f"error: --family: no trees of gpt2 imported from {device1_dir}"),
    ):
        proc = cli_main("import-csv", str(device1_dir), "-o", str(out), "--models", "distilgpt2", "--no-bytes-moved",
                        "--family", flag, check=False)
        assert proc.returncode == code and message in proc.stderr and proc.stderr.count("\n") == 1
        assert not out.exists()


def _one_tree_csvs(device1_dir, directory, model, name):
    """The release's four CSVs cut to ``model``'s tree at 8×32, the model renamed ``name``."""
    directory.mkdir()
    for level in LEVEL_FILES.values():
        with open(device1_dir / level, newline="") as source, open(directory / level, "w", newline="") as out:
            reader = csv.DictReader(source)
            writer = csv.DictWriter(out, reader.fieldnames)
            writer.writeheader()
            for row in reader:
                if row["model_name"] == model and float(row["batch_size"]) == 8 and float(row["seq_len"]) == 32:
                    writer.writerow({**row, "model_name": name})


def test_import_traces_a_model_it_does_not_know_from_its_config(cli_main, device1_dir, tmp_path):
    from transformers import AutoConfig

    _one_tree_csvs(device1_dir, tmp_path / "csv", "distilgpt2", "my-gpt")
    AutoConfig.for_model("gpt2", n_layer=6).save_pretrained(tmp_path / "my-gpt")
    data, known = tmp_path / "mine.jsonl", tmp_path / "known.jsonl"
    unknown = cli_main("import-csv", str(tmp_path / "csv"), "-o", str(data))
    assert "unknown model 'my-gpt'" in unknown.stderr and "--model-path MODEL=CONFIG" in unknown.stderr
    assert "mem_bytes_moved" not in load_records(data)[0].root.features and load_records(data)[0].family is None
    cli_main("import-csv", str(tmp_path / "csv"), "-o", str(data), "--model-path", f"my-gpt={tmp_path / 'my-gpt'}")
    cli_main("import-csv", str(device1_dir), "-o", str(known), "--models", "distilgpt2")
    mine = load_records(data)[0]
    reference = next(r for r in load_records(known) if (r.batch_size, r.seq_len) == (8, 32))
    assert mine.family == "decoder" and mine.meta["absorbed_leaves"] == reference.meta["absorbed_leaves"]
    assert [n.features["mem_bytes_moved"] for n in mine.nodes()] == [
        n.features["mem_bytes_moved"] for n in reference.nodes()]
    bad = cli_main("import-csv", str(tmp_path / "csv"), "-o", str(tmp_path / "bad.jsonl"), "--model-path",
                   f"my-gpt={tmp_path / 'nowhere'}", check=False)
    assert bad.returncode == 2 and f"'--model-path': 'my-gpt={tmp_path / 'nowhere'}': no such path" in bad.stderr


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
