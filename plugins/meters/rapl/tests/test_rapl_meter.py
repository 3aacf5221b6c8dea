"""The RAPL meter on a powercap tree in a temp dir whose counters a thread advances at known powers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from irene_core.errors import IreneError
from irene_core.plugins import get_registry
from irene_meter_rapl.meter import RaplMeter
from irene_meter_rapl.testing import PowercapTree

NESTED = {"package-0": 25.0, "package-0/core": 15.0, "package-0/uncore": 2.0, "package-0/dram": 4.0}


def _within(measured: float, bounds: tuple[float, float], rel: float = 0.01) -> bool:
    """Within ``rel`` of the energy the counters can show (power × the time between their updates)."""
    low, high = bounds
    return (1 - rel) * low <= measured <= (1 + rel) * high


def _plus(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return a[0] + b[0], a[1] + b[1]


def test_energy_is_power_times_time_and_nested_domains_are_not_double_counted(tmp_path):
    with PowercapTree(tmp_path, NESTED) as tree, RaplMeter(root=str(tmp_path)) as meter:
        meter.begin("outer")
        time.sleep(0.3)
        with meter.window("inner") as inner:
            time.sleep(1.0)
        outer = meter.end("outer")
    for m in (inner.measurement, outer):
        package = tree.counted_energy_j("package-0", m.t_begin, m.t_end)
        dram = tree.counted_energy_j("package-0/dram", m.t_begin, m.t_end)
        assert _within(m.energy_j, _plus(package, dram)), (m.energy_j, package, dram)  # core/uncore not added
        assert set(m.domains) == {"package-0", "package-0/dram"}  # only the summed zones are read
        assert m.valid and not m.warnings and m.samples >= 2
    assert outer.duration_s > inner.measurement.duration_s + 0.29


def test_psys_contains_everything_else(tmp_path):
    powers = {"package-0": 20.0, "package-0/core": 10.0, "package-0/dram": 3.0, "psys": 35.0}
    with PowercapTree(tmp_path, powers) as tree, RaplMeter(root=str(tmp_path)) as meter:
        assert meter.available() == (True, "zones package-0, package-0/core, package-0/dram, psys; summing psys")
        m = meter.measure(0.8)
    assert _within(m.energy_j, tree.counted_energy_j("psys", m.t_begin, m.t_end))
    assert set(m.domains) == {"psys"}


def test_counter_wraparound_inside_a_window(tmp_path):
    # 30 J range, 0.5 J before the top: the counter wraps 25 ms into the window.
    with PowercapTree(tmp_path, {"package-0": 20.0}, range_uj={"package-0": 30_000_000},
                      start_uj={"package-0": 29_500_000}) as tree, RaplMeter(root=str(tmp_path)) as meter:
        m = meter.measure(1.0)
    assert _within(m.energy_j, tree.counted_energy_j("package-0", m.t_begin, m.t_end))


def test_several_wraps_in_one_window_are_caught_between_the_edges(tmp_path):
    # 50 J range at 40 W: a wrap every 1.25 s, two of them in a 2.6 s window.
    with PowercapTree(tmp_path, {"package-0": 40.0}, range_uj={"package-0": 50_000_000}) as tree, \
            RaplMeter(root=str(tmp_path)) as meter:
        m = meter.measure(2.6)
    assert m.energy_j > 100.0
    assert _within(m.energy_j, tree.counted_energy_j("package-0", m.t_begin, m.t_end))


def test_power_change_inside_the_window(tmp_path):
    with PowercapTree(tmp_path, {"package-0": 10.0}) as tree, RaplMeter(root=str(tmp_path)) as meter:
        meter.begin("w")
        time.sleep(0.5)
        tree.set_power("package-0", 50.0)
        time.sleep(0.5)
        m = meter.end("w")
    assert _within(m.energy_j, tree.counted_energy_j("package-0", m.t_begin, m.t_end))
    assert 25.0 < m.mean_power_w < 35.0


def test_domains_option_selects_and_refuses_double_counting(tmp_path):
    PowercapTree(tmp_path, NESTED)  # static counters are enough here
    assert RaplMeter(root=str(tmp_path), domains="package-0").available()[0]
    with pytest.raises(IreneError, match="package-0/core is inside package-0; summing both double counts"):
        RaplMeter(root=str(tmp_path), domains="package-0,package-0/core").begin("w")
    with pytest.raises(IreneError, match=r"no zone 'package-1' \(zones: package-0, package-0/core"):
        RaplMeter(root=str(tmp_path), domains="package-1").begin("w")


def test_mmio_duplicate_of_a_package_is_ignored(tmp_path):
    PowercapTree(tmp_path, {"package-0": 10.0})
    shutil.copytree(tmp_path / "intel-rapl:0", tmp_path / "intel-rapl-mmio:0")
    ok, reason = RaplMeter(root=str(tmp_path)).available()
    assert ok and reason == "zones package-0; summing package-0"


def test_short_window_gets_a_warning(tmp_path):
    with PowercapTree(tmp_path, {"package-0": 10.0}), RaplMeter(root=str(tmp_path)) as meter:
        meter.begin("w")
        m = meter.end("w")
    assert m.duration_s < 0.01
    assert "counter update period" in m.warnings[0]


def test_no_zones_is_not_available_and_begin_says_why(tmp_path):
    meter = RaplMeter(root=str(tmp_path))
    ok, reason = meter.available()
    assert not ok and f"no RAPL zones under {tmp_path}" in reason
    with pytest.raises(IreneError, match="no RAPL zones"):
        meter.begin("w")


def test_window_bookkeeping_errors(tmp_path):
    with PowercapTree(tmp_path, {"package-0": 10.0}), RaplMeter(root=str(tmp_path)) as meter:
        meter.begin("a")
        with pytest.raises(IreneError, match="window 'a' is already open"):
            meter.begin("a")
        with pytest.raises(IreneError, match="no open window 'b'"):
            meter.end("b")
        with pytest.raises(RuntimeError), meter.window("c"):
            raise RuntimeError("the measured code failed")
        with pytest.raises(IreneError, match="no open window 'c'"):
            meter.end("c")  # discarded by the failed block


def test_bad_options_name_the_option_and_the_meter():
    with pytest.raises(IreneError, match=r"meter 'rapl': unknown option 'rot' \(options: root, domains, max_power_w\)"):
        RaplMeter(rot="/tmp")


UNREADABLE_PROBE = """
import sys
from irene_meter_rapl.meter import RaplMeter
meter = RaplMeter(root=sys.argv[1])
print(meter.available())
try:
    meter.begin("w")
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def test_unreadable_counter_explains_cve_2020_8694_and_how_to_grant_access(tmp_path):
    tree = PowercapTree(tmp_path, {"package-0": 10.0})
    tree.make_unreadable("package-0")
    command = [sys.executable, "-c", UNREADABLE_PROBE, str(tmp_path)]
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that bypass file modes
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    available, error = out.strip().splitlines()
    assert available.startswith("(False, ") and "CVE-2020-8694" in available
    assert error.startswith("IreneError meter 'rapl': cannot read ") and "energy_uj: permission denied" in error
    assert "CVE-2020-8694" in error and "chmod a+r" in error


def test_registered_through_entry_point():
    assert get_registry().get("meter", "rapl") is RaplMeter


def test_the_simulator_refuses_to_bound_a_read_older_than_the_updates_it_kept(tmp_path):
    with PowercapTree(tmp_path, {"package-0": 10.0}, tick_s=0.001, history=256) as tree:
        begin = time.monotonic()
        time.sleep(1.0)  # ≫ 256 ticks: the update before `begin` is gone
        # a recent read is bounded, not refused: by the 20 ms window and the gaps around its updates, which a
        # loaded machine that starves the simulator process stretches (0.35 J seen, 35 ms at 10 W; once 3.3 J,
        # 330 ms, under a full test run on 2 cores), so never by more than the power over the time since
        # `begin`; read again and again while the simulator rewrites its ring (a copy racing it once refused
        # ~1 in 500). A reader starved while it copies keeps only the updates no write meanwhile reached: with
        # 64 kept (64 ms), a read 20 ms back was refused once under a full test run on 2 cores
        for _ in range(20_000):
            now = time.monotonic()
            low, high = tree.counted_energy_j("package-0", now - 0.02, now)
            assert 0 <= low <= high <= 10.0 * (now - begin)
        with pytest.raises(ValueError, match="predates the 256 kept updates"):
            tree.counted_energy_j("package-0", begin, now)
