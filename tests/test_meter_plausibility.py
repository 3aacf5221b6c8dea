"""Plausible or refused (issue 14): each meter checks its readings at the OS boundary — a powercap
tree in a temp dir, an emonPi on a pty — and recovers after a transient fault."""

from __future__ import annotations

import contextlib
import re
import time

import pytest

from irene_core.metering.meter import Meter, MeterError
from irene_meter_emonpi.meter import EmonPiMeter
from irene_meter_emonpi.testing import EmonPiEmulator
from irene_meter_rapl.meter import RaplMeter
from irene_meter_rapl.testing import PowercapTree


def _set_counter(tree: PowercapTree, text: str, label: str = "package-0") -> None:
    (tree.zones[label].path / "energy_uj").write_text(text + "\n")


def _refused(meter: Meter, name: str) -> str:
    """End the open window ``name``: it must raise MeterError with an invalid measurement."""
    with pytest.raises(MeterError) as caught:
        meter.end(name)
    assert caught.value.measurement is not None and not caught.value.measurement.valid
    return str(caught.value)


def _live_energy_j(meter: Meter, seconds: float, attempts: int = 3) -> float:
    """The energy of a window on a counter the simulator advances: a loaded machine may starve the
    simulator process through one window (refused as a stall), not through several."""
    for _ in range(attempts - 1):
        with contextlib.suppress(MeterError):
            return meter.measure(seconds).energy_j
    return meter.measure(seconds).energy_j


def test_a_stalled_counter_is_invalid_not_zero_joules(tmp_path):
    tree = PowercapTree(tmp_path, {"package-0": 20.0}).start()
    with RaplMeter(root=str(tmp_path)) as meter:
        assert _live_energy_j(meter, 0.2) > 2.0
        tree.stop()  # the counter stops advancing, as when the emulator is killed mid-run
        meter.begin("node")
        time.sleep(0.2)
        error = _refused(meter, "node")
    # the window lasts at least the 0.2 s slept, longer on a loaded machine
    stalled = re.match(r"meter 'rapl', window 'node': package-0: counter did not advance in ([\d.]+) s", error)
    assert stalled and float(stalled[1]) >= 0.2
    assert error.endswith(f"(stalled counter) ({tree.zones['package-0'].path / 'energy_uj'})")


def test_a_backwards_counter_is_a_wrap_only_when_the_energy_is_plausible(tmp_path):
    tree = PowercapTree(tmp_path, {"package-0": 20.0})  # static files, written by hand below
    _set_counter(tree, "100000000")
    with RaplMeter(root=str(tmp_path)) as meter:
        meter.begin("back")
        _set_counter(tree, "50000000")  # unwrapped: 262 kJ within milliseconds
        error = _refused(meter, "back")
        assert "package-0: counter went backwards from 100000000 to 50000000, not a wrap" in error
        assert "above max_power_w=1000 W" in error
    # a fresh meter: its keep-alive reader would otherwise take 50000000 as the baseline before the
    # counter is set below, then see that step as an implausible jump
    _set_counter(tree, str(tree.zones["package-0"].range_uj - 1_000_000))
    with RaplMeter(root=str(tmp_path)) as meter:
        meter.begin("wrap")  # a real wrap: from 1 J below the range to 2 J
        _set_counter(tree, "2000000")
        assert meter.end("wrap").energy_j == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-5", "counter reads -5, not a finite non-negative number"),
        ("five", "holds b'five\\n', not a counter"),
        ("999000000000", "counter jumped from 100000000 to 999000000000"),
    ],
)
def test_a_transient_bad_read_invalidates_only_the_windows_it_touches(tmp_path, text, expected):
    tree = PowercapTree(tmp_path, {"package-0": 20.0, "package-0/dram": 3.0})
    _set_counter(tree, "100000000")
    with RaplMeter(root=str(tmp_path)) as meter:
        meter.begin("outer")
        meter.begin("touched")
        _set_counter(tree, text)
        meter.begin("after-fault")  # this edge reads the bad value too
        error = _refused(meter, "touched")
        assert expected in error and str(tree.zones["package-0"].path / "energy_uj") in error
        _set_counter(tree, "200000000")  # the counter is readable again
        assert expected in _refused(meter, "after-fault")
        meter.begin("later")
        _set_counter(tree, "205000000")
        later = meter.end("later")
        assert later.valid and later.energy_j == pytest.approx(5.0)
        _refused(meter, "outer")


def test_the_ceiling_option_and_permanent_read_failure(tmp_path):
    tree = PowercapTree(tmp_path, {"package-0": 20.0})
    _set_counter(tree, "0")
    with RaplMeter(root=str(tmp_path), max_power_w="50") as meter:
        meter.begin("w")
        _set_counter(tree, "1000000000")  # 1 kJ in no time: over 50 W
        assert "above max_power_w=50 W" in _refused(meter, "w")
        (tree.zones["package-0"].path / "energy_uj").unlink()  # the zone is gone for good
        meter.begin("gone")
        assert "read failed: cannot read" in _refused(meter, "gone")


@pytest.mark.parametrize(("watts", "expected"), [(-5000.0, "-[0-9.]+ W is negative"),
                                                  (4500.0, r"[0-9.]+ W is above the 4000 W ceiling \(max_power_w\)")])
def test_emonpi_lines_with_impossible_power_are_refused_then_the_meter_recovers(watts, expected):
    with EmonPiEmulator("170ms", power_w=120.0, interval_s=0.05) as emulator, \
            EmonPiMeter(port=emulator.port, timeout="5") as meter:
        assert meter.measure(0.2).valid
        meter.begin("bad")
        emulator.set_power(watts)
        time.sleep(0.2)
        emulator.set_power(120.0)
        error = _refused(meter, "bad")
        line = rf"\(serial line 'power1,-?\d+' on {emulator.port}\)"
        assert re.match(rf"meter 'emonpi', window 'bad': power1: {expected} {line}$", error), error
        time.sleep(0.15)  # past the faulty lines
        after = meter.measure(0.3)
    assert after.valid and after.mean_power_w == pytest.approx(120.0, rel=0.05)
