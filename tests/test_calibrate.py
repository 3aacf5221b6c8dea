"""``irene calibrate`` on a synthetic second device derived from device_1 (``benchmarks/synthetic_device.py``,
shared with the benchmark): per-kind energy factors, an idle power over shorter times, 3 % noise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.synthetic_device import DEVICE, synthetic_device
from irene_core.predictor import artifacts
from irene_core.predictor.predictor import Predictor
from irene_core.tree.jsonl import record_to_dict, write_records
from irene_core.tree.schema import TreeRecord
from irene_core.tree.table import TreeTable

MODELS = ("bert-base-uncased", "distilbert-base-uncased", "gpt2")


def errors(predictor: Predictor, records: list[TreeRecord]) -> dict[str, float]:
    """Mean % error per level over the nodes with ground truth."""
    table = TreeTable.from_records(records)
    energies, _ = predictor.predict_table(table)
    return {
        level: float(np.mean(np.abs(energies[rows] - table.truth[rows]) / table.truth[rows]) * 100)
        for level in ("ml", "module", "model")
        for rows in [(table.level == level) & (table.truth > 0)]
    }


@pytest.fixture(scope="module")
def setting(device1_records: list[TreeRecord], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A device_1 predictor (batch ≤ 16), the synthetic device's trees and a 2-tree target file."""
    models = [r for r in device1_records if r.model_name in MODELS and r.batch_size <= 24]
    base = tmp_path_factory.mktemp("calibrate")
    predictor = Predictor(features="model").fit([r for r in models if r.batch_size <= 16])
    predictor.save(base / "device_1")
    synthetic = synthetic_device(models)
    target, rest = [synthetic[0], synthetic[-1]], synthetic[1:-1]
    write_records(base / "target.jsonl", target)
    return {"base": base, "predictor": predictor, "target": target, "rest": rest}


def test_calibration_transfers_the_predictor_to_another_device(setting: dict, cli_main) -> None:
    base: Path = setting["base"]
    proc = cli_main("calibrate", str(base / "device_1"), str(base / "target.jsonl"), "-o", str(base / "new"))
    assert "calibrated predictor" in proc.stdout and "from 2 tree(s)" in proc.stdout
    before, calibrated = setting["predictor"], Predictor.load(base / "new")
    error_before, error_after = errors(before, setting["rest"]), errors(calibrated, setting["rest"])
    # measured: 44.7 / 44.4 / 44.2 % before, 4.3 / 5.0 / 2.5 % after (ml / module / model)
    for level in ("ml", "module", "model"):
        assert error_before[level] > 30
        assert error_after[level] < 8 and error_after[level] < error_before[level] / 5, (error_before, error_after)

    wide_before, wide_after = (
        {(i, n.id): abs(np.log(n.predicted_high / n.predicted_low))  # a negative OwnOps: high / low < 1
         for i, r in enumerate(p.predict(setting["rest"][:4]))
         for n in r.nodes(include_synthetic=True) if n.predicted_low}
        for p in (before, calibrated)
    )
    shared = wide_before.keys() & wide_after.keys()
    assert len(shared) > 500 and all(wide_after[k] > wide_before[k] for k in shared)

    report = json.loads((base / "new" / artifacts.MANIFEST).read_text())["training"]["calibration"]
    assert report["trees"] == [r.key.describe() for r in setting["target"]] and report["devices"] == [DEVICE]
    assert report["groups"]["MatMul"]["scale"] < 1 < report["groups"]["LayerNorm"]["scale"]
    assert calibrated.hardware.startswith(f"{DEVICE} (calibrated from")


def _strip_truth(records: list[TreeRecord]) -> list[TreeRecord]:
    out = [r.model_copy(deep=True) for r in records]
    for node in (n for r in out for n in r.nodes()):
        node.ground_truth_energy = None
    return out


def _strip_flops(records: list[TreeRecord]) -> list[TreeRecord]:
    out = [r.model_copy(deep=True) for r in records]
    for node in (n for r in out for n in r.nodes()):
        node.features.pop("flops", None)
    return out


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("newer schema", "schema_version 99 is not supported"),
        ("other features", "lacks the feature 'flops'"),
        ("no ground truth", "no measured energy"),
        ("no tree of the device", "no tree of device 'elsewhere'"),
    ],
)
def test_bad_targets_are_one_line_errors(setting: dict, cli_main, tmp_path: Path, case: str, expected: str) -> None:
    target, options = tmp_path / "target.jsonl", []
    if case == "newer schema":
        target.write_text(json.dumps({**record_to_dict(setting["target"][0]), "schema_version": 99}) + "\n")
    elif case == "other features":
        write_records(target, _strip_flops(setting["target"]))
    elif case == "no ground truth":
        write_records(target, _strip_truth(setting["target"]))
    else:
        target, options = setting["base"] / "target.jsonl", ["--device", "elsewhere"]
    proc = cli_main("calibrate", str(setting["base"] / "device_1"), str(target), "-o", str(tmp_path / "new"),
                    *options, check=False)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "new").exists()
