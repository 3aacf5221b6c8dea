"""``irene meter list``, ``irene meter measure`` and ``irene sample`` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from irene_core.cli.app import main
from irene_meter_rapl.testing import PowercapTree


def test_meter_measure_json_on_a_powercap_tree(tmp_path, capsys):
    with PowercapTree(tmp_path, {"package-0": 30.0, "package-0/dram": 5.0}):
        code = main(["meter", "measure", "--meter", "rapl", "--option", f"root={tmp_path}", "--seconds", "0.5",
                     "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert {"meter", "energy_j", "duration_s", "mean_power_w", "samples", "domains"} <= set(report)
    assert report["meter"] == "rapl" and report["mean_power_w"] == pytest.approx(35.0, rel=0.02)
    assert set(report["domains"]) == {"package-0", "package-0/dram"}


def test_meter_measure_text(tmp_path, capsys):
    with PowercapTree(tmp_path, {"package-0": 30.0}):
        assert main(["meter", "measure", "--meter", "rapl", "--option", f"root={tmp_path}", "--seconds", "0.2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rapl: ") and " W mean" in out and "package-0: " in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--meter", "rapl", "--option", "rooot=/x"], "meter 'rapl': unknown option 'rooot' (options: root, domains)"),
        (["--meter", "rapl", "--option", "root"], "--option 'root': expected key=value"),
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


def test_uninstalled_meter_gets_the_install_hint():
    env = {**os.environ, "IRENE_LOAD_PLUGINS": "rapl"}  # as if irene-meter-emonpi were not installed
    code = "from irene_core.cli.app import main; raise SystemExit(main(['meter', 'measure', '--meter', 'emonpi']))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1
    assert "install it with: pip install irene-meter-emonpi" in result.stderr


def test_meter_list_json(capsys):
    assert main(["meter", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) >= {"emonpi", "rapl", "nvml"}
    assert rows["rapl"]["distribution"] == "irene-meter-rapl" and rows["rapl"]["options"] == ["root", "domains"]
    for row in rows.values():
        assert row["installed"] and (row["usable"] or row["reason"])


def test_sample_json(capsys):
    assert main(["sample", "--seconds", "0.3", "--interval-ms", "20", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["interval_ms"] == 20.0 and report["samples"] >= 10, report
    assert {"cpu", "mem"} <= set(report["features"]) and 0 <= report["features"]["cpu"] <= 100, report


def test_sample_refuses_intervals_below_10_ms(capsys):
    assert main(["sample", "--seconds", "0.1", "--interval-ms", "5"]) == 2
    assert "--interval-ms" in capsys.readouterr().err
