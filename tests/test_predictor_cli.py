"""``irene train``, ``irene predict`` and ``irene crossvalidate`` through the console script's entry point
(in process)."""

import json

import pytest

from irene_core.predictor.predictor import Predictor
from irene_core.tree.jsonl import load_records, write_records

GPT_FAMILY = ("gpt2", "distilgpt2", "openai-gpt")


@pytest.fixture(scope="module")
def data(device1_records, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "gpt.jsonl"
    write_records(path, [r for r in device1_records if r.model_name in GPT_FAMILY and r.batch_size in (8, 24)])
    return path


def test_crossvalidate_json_format(cli_main, data):
    proc = cli_main("crossvalidate", str(data), "--features", "model", "--models", ",".join(GPT_FAMILY), "--json")
    report = json.loads(proc.stdout)
    assert report["schema"] == 2 and len(report["splits"]) == 1
    split = report["splits"][0]
    assert set(split) == {"name", "features", "overall", "worst_model", "per_model", "per_type", "coverage", "seconds"}
    assert split["name"] == "model" and split["features"] == "model"
    assert list(split["per_model"]) == list(GPT_FAMILY)
    for errors in split["per_model"].values():
        assert set(errors) == {"ml", "module", "model"}
        assert all(isinstance(errors[k], float) and 0 <= errors[k] < 20 for k in ("ml", "module", "model"))
    for level in ("ml", "module", "model"):
        assert split["overall"][level] == pytest.approx(sum(e[level] for e in split["per_model"].values()) / 3)
    worst = max(split["per_model"], key=lambda m: split["per_model"][m]["model"])
    assert split["worst_model"] == {"name": worst, "error": split["per_model"][worst]["model"]}
    assert set(split["coverage"]) == {"ml", "module", "model"}
    assert 0 < split["seconds"] < 300


def test_crossvalidate_table_and_model_errors(cli_main, data):
    out = " ".join(
        cli_main(
            "crossvalidate", str(data), "--features", "model", "--models", ",".join(GPT_FAMILY), "--split", "twin-out"
        ).stdout.split()
    )
    assert "split 'twin-out'" in out and "overall (mean of test models)" in out and "worst test model" in out
    assert "twin left out" in out and "distilgpt2" in out
    bad = cli_main("crossvalidate", str(data), "--models", "gpt2,bert-base-uncased", check=False)
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("error: --models: no records for bert-base-uncased")


def test_bytes_moved_are_added_to_the_trees_a_command_uses_and_what_is_missing_is_said(cli_main, data, tmp_path):
    """``irene crossvalidate`` gives the tracer's bytes moved to the experiment's trees only: a tree of a
    model no framework builds, outside ``--models``, trains nothing and is no warning; ``irene predict``
    of it says why it lacks them and what that means before its one-line error."""
    records = load_records(data)
    stranger = records[0].model_copy(deep=True)
    stranger.model_name = "no-such-model-anywhere"
    for node in stranger.nodes():
        node.features.pop("mem_bytes_moved", None)
    both = tmp_path / "both.jsonl"
    write_records(both, [*records, stranger])
    proc = cli_main("crossvalidate", str(both), "--features", "model", "--models", ",".join(GPT_FAMILY),
                    "--split", "twin-out")
    assert "split 'twin-out'" in proc.stdout and "mem_bytes_moved" not in proc.stderr
    experiment = f"{GPT_FAMILY[0]},{stranger.model_name}"  # the stranger in it: every tree goes without bytes moved
    proc = cli_main("crossvalidate", str(both), "--features", "model", "--models", experiment, "--split", "model")
    assert ("a predictor trained on them counts the paper's mem_bytes as work instead, on every tree (irene "
            "import-csv --model-path MODEL=CONFIG traces a model from its config)") in " ".join(proc.stderr.split())
    alone = tmp_path / "stranger.jsonl"
    write_records(alone, [stranger])
    proc = cli_main("predict", str(alone), "-o", str(tmp_path / "out.jsonl"), check=False)
    stderr = " ".join(proc.stderr.split())
    assert proc.returncode == 1 and not (tmp_path / "out.jsonl").exists()
    assert ("mem_bytes_moved could not be added to 1 of 1 trees (e.g. no-such-model-anywhere 8×32: unknown model "
            "'no-such-model-anywhere'); this predictor needs it") in stderr
    error = "error: no-such-model-anywhere batch 8 seq 32: node ':GPT2Model' lacks the feature 'mem_bytes_moved'"
    assert error in stderr


def test_train_predict_evaluate(cli_main, data, tmp_path):
    predictor = tmp_path / "pred"
    out = " ".join(cli_main("train", str(data), "-o", str(predictor), "--features", "model").stdout.split())
    assert "Conv1D" in out and "generic fallback" in out and "hardware: device_1" in out
    assert "its intervals ×" in out  # the widening of a kind it has not seen
    # the trace that added the bytes moved found the GELUs (and dropouts) the release keeps in their parents
    assert "kept in their parents' own work by the training trees: Dropout, GELU" in out
    assert (predictor / "predictor.json").is_file() and (predictor / "arrays.npz").is_file()
    predicted = tmp_path / "out.jsonl"
    proc = cli_main("predict", str(data), "--predictor", str(predictor), "-o", str(predicted))
    assert "figures are for: device_1 (model features)" in " ".join(proc.stdout.split())
    records = load_records(predicted)
    assert all(n.predicted_energy is not None for r in records for n in r.root.walk())
    report = json.loads(cli_main("evaluate", str(data), str(predicted), "--json").stdout)
    assert report["overall"]["model"] < 10


def test_predict_defaults_to_the_reference_predictor(cli_main, data, tmp_path):
    predicted = tmp_path / "ref.jsonl"
    proc = cli_main("predict", str(data), "-o", str(predicted))
    stderr = " ".join(proc.stderr.split())
    assert "reference predictor" in stderr and "i9-7900X" in stderr
    assert "figures are for: device_1: i9-7900X + GTX 1080 Ti" in " ".join(proc.stdout.split())
    assert load_records(predicted)[0].root.predicted_energy > 0


def test_bad_config_and_predictor_are_one_line_errors(cli_main, data, tmp_path):
    proc = cli_main("train", str(data), "-o", str(tmp_path / "p"), "--config", str(tmp_path / "none.json"), check=False)
    assert proc.returncode == 1 and proc.stderr.strip().startswith(
        f"error: {tmp_path / 'none.json'}: no such config file"
    )
    assert not (tmp_path / "p").exists()
    proc = cli_main("predict", str(data), "--predictor", str(tmp_path), "-o", str(tmp_path / "o.jsonl"), check=False)
    assert (
        proc.returncode == 1
        and "predictor.json: missing" in " ".join(proc.stderr.split())
        and "Traceback" not in proc.stderr
    )
    assert not (tmp_path / "o.jsonl").exists()


def test_every_command_names_a_shipped_predictor_as_whatif_does(cli_main, data, tmp_path):
    """``all``, ``model`` or ``reference`` names a shipped predictor wherever a predictor is named (calibrating
    the shipped one to one's own device needs no path into the installed package); a name that is neither a
    shipped predictor nor a directory is one line naming the flag."""
    out = tmp_path / "all.jsonl"
    proc = cli_main("predict", str(data), "--predictor", "all", "-o", str(out))
    assert "(all features)" in " ".join(proc.stdout.split()) and "no --predictor" not in proc.stderr
    target = tmp_path / "target.jsonl"
    write_records(target, load_records(data)[:2])
    proc = cli_main("calibrate", "reference", str(target), "-o", str(tmp_path / "mine"))
    assert "calibrated predictor" in proc.stdout and Predictor.load(tmp_path / "mine").feature_set == "model"
    for command in (["predict", str(data), "--predictor", "nope", "-o", str(out)],
                    ["calibrate", "nope", str(target), "-o", str(tmp_path / "nope")]):
        proc = cli_main(*command, check=False)
        flag = "--predictor" if command[0] == "predict" else "PREDICTOR"
        assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        shipped = "(reference, all, model) nor a predictor directory"
        assert f"{flag} nope: neither a shipped predictor {shipped}" in proc.stderr
    assert not (tmp_path / "nope").exists()
