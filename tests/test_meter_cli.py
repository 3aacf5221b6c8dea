"""``irene meter list``, ``irene meter measure`` and ``irene sample`` end to end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from irene_core.cli.app import main
from irene_core.metering.meter import open_meter
from irene_meter_emonpi.testing import EmonPiEmulator
from irene_meter_nvml.testing import SimulatedGpu, patch_nvml
from irene_meter_rapl.testing import PowercapTree

FIELDS = {"meter", "energy_j", "duration_s", "mean_power_w", "samples", "domains", "warnings", "valid", "t_begin",
          "t_end"}


def _measure_json(capsys, *args: str) -> dict:
    """``irene meter measure ... --json``, checked for what holds whatever the meter: the fields and
    their consistency (J over s in W)."""
    assert main(["meter", "measure", *args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == FIELDS and report["valid"] is True
    assert report["duration_s"] == pytest.approx(report["t_end"] - report["t_begin"], abs=1e-6)
    assert report["mean_power_w"] == pytest.approx(report["energy_j"] / report["duration_s"])
    return report


def test_meter_measure_json_on_a_powercap_tree(tmp_path, capsys):
    with PowercapTree(tmp_path, {"package-0": 30.0, "package-0/dram": 5.0}) as tree:
        report = _measure_json(capsys, "--meter", "rapl", "--option", f"root={tmp_path}", "--seconds", "0.5")
        counted = {label: tree.counted_energy_j(label, report["t_begin"], report["t_end"]) for label in tree.zones}
    assert report["meter"] == "rapl" and report["warnings"] == []
    assert report["samples"] in (2, 3)  # counters read at the window's edges (and maybe once by the keep-alive)
    assert 0.5 <= report["duration_s"] < 0.7
    assert set(report["domains"]) == set(counted)
    for label, (low, high) in counted.items():  # joules, as the zone's counter advanced over the window
        assert low - 1e-6 <= report["domains"][label] <= high + 1e-6, (label, report["domains"][label], low, high)
    assert report["energy_j"] == pytest.approx(sum(report["domains"].values()))  # package + DRAM


def test_meter_measure_json_on_an_emonpi_emulator(capsys):
    with EmonPiEmulator("170ms", power_w=120.0) as emulator:
        report = _measure_json(capsys, "--meter", "emonpi", "--option", f"port={emulator.port}", "--seconds", "1")
        expected = emulator.energy_j(report["t_begin"], report["t_end"])
    assert report["meter"] == "emonpi" and report["domains"] == {} and report["samples"] >= 5
    assert report["duration_s"] == pytest.approx(1.0, abs=0.1)
    assert report["energy_j"] == pytest.approx(expected, rel=0.02)  # power1,12000 lines are W×100
    assert report["mean_power_w"] == pytest.approx(120.0, rel=0.02)
    (warning,) = report["warnings"]
    assert re.match(r"the sample interval \(0\.1\d* s\) is coarse for a 1(\.\d+)? s window", warning), warning


def test_meter_measure_text(tmp_path, capsys):
    with PowercapTree(tmp_path, {"package-0": 30.0}) as tree:
        before = time.monotonic()
        assert main(["meter", "measure", "--meter", "rapl", "--option", f"root={tmp_path}", "--seconds", "0.2"]) == 0
        _, most = tree.counted_energy_j("package-0", before, time.monotonic())  # the reads lie in between
    head, domain = capsys.readouterr().out.splitlines()
    found = re.fullmatch(r"rapl: ([\d.]+) J over ([\d.]+) s = ([\d.]+) W mean \((\d+) samples\)", head)
    assert found, head
    energy, duration, power, _ = map(float, found.groups())
    assert 0 < energy <= most + 1e-3 and energy == pytest.approx(power * duration, rel=0.01)
    assert 0.2 <= duration < 0.4
    assert domain == f"  package-0: {energy:.3f} J ({power:.2f} W)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--meter", "rapl", "--option", "rooot=/x"],
         "meter 'rapl': unknown option 'rooot' (options: root, domains, max_power_w)"),
        (["--meter", "rapl", "--option", "root"], "--meter-option 'root': expected key=value"),
        (["--meter", "emonpi", "--option", "baud=x"], "meter 'emonpi': option baud='x': expected a positive integer"),
        (["--meter", "rapl", "--option", "root=/nonexistent"],
         "meter 'rapl' is not usable here: no RAPL zones under /nonexistent"),
        (["--meter", "nope"], "no meter named 'nope' is installed (installed: emonpi, nvml, rapl)"),
    ],
)
def test_meter_measure_errors_are_one_line(args, message, capsys):
    assert main(["meter", "measure", *args, "--seconds", "0.1"]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_uninstalled_meter_is_listed_and_gets_the_install_hint():
    env = {**os.environ, "IRENE_LOAD_PLUGINS": "rapl"}  # as if irene-meter-emonpi were not installed
    code = ("from irene_core.cli.app import main; main(['meter', 'list', '--json']); "
            "raise SystemExit(main(['meter', 'measure', '--meter', 'emonpi']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60,
                            check=False)
    assert result.returncode == 1
    assert "install it with: pip install irene-meter-emonpi" in result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["emonpi"] == {"name": "emonpi", "distribution": "irene-meter-emonpi", "installed": False,
                              "usable": False, "reason": "not installed: pip install irene-meter-emonpi", "options": []}
    assert rows["rapl"]["installed"] and rows["rapl"]["options"] == ["root", "domains", "max_power_w"]


def test_meter_list_json(monkeypatch, capsys):
    patch_nvml(monkeypatch, [SimulatedGpu(name="NVIDIA Listed GPU")])
    assert main(["meter", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {name: (r["distribution"], r["installed"], r["options"]) for name, r in rows.items()} == {
        "emonpi": ("irene-meter-emonpi", True, ["port", "baud", "channel", "node", "timeout", "max_power_w"]),
        "nvml": ("irene-meter-nvml", True, ["gpus", "mode", "interval_ms", "max_power_w", "allow_mig"]),
        "rapl": ("irene-meter-rapl", True, ["root", "domains", "max_power_w"]),
    }
    assert rows["nvml"]["usable"] and rows["nvml"]["reason"].startswith("GPU 0 (NVIDIA Listed GPU)")
    for name in ("emonpi", "rapl"):  # usable here or not as the meter itself says, with its reason
        assert (rows[name]["usable"], rows[name]["reason"]) == open_meter(name).available()


def test_sample_json(capsys):
    # 30 ticks in 0.6 s; a loaded machine starves the sampler of some (9 of 15 in 0.3 s seen in a test run)
    assert main(["sample", "--seconds", "0.6", "--interval-ms", "20", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["interval_ms"] == 20.0 and 10 <= report["samples"] <= report["seconds"] / 0.02 + 2, report
    assert {"cpu", "mem"} <= set(report["features"]) and 0 <= report["features"]["cpu"] <= 100, report


def test_sample_refuses_intervals_below_10_ms(capsys):
    assert main(["sample", "--seconds", "0.1", "--interval-ms", "5"]) == 1
    assert capsys.readouterr().err == "error: resource sampler: interval 5 ms is below the 10 ms minimum\n"


def test_meter_measure_without_a_model_says_it_measures_every_gpu(monkeypatch, capsys):
    patch_nvml(monkeypatch, [SimulatedGpu(power_w=80.0), SimulatedGpu(power_w=40.0)])
    assert main(["meter", "measure", "--meter", "nvml", "--seconds", "0.3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["warnings"][0].startswith("no model: measuring every GPU (GPU 0 (NVIDIA Simulated GPU), GPU 1")
    assert report["mean_power_w"] == pytest.approx(120.0, rel=0.1)
    assert main(["meter", "measure", "--meter", "nvml", "--seconds", "0.3", "--meter-option", "gpus=1", "--json"]) == 0
    assert not any("no model" in w for w in json.loads(capsys.readouterr().out)["warnings"])
