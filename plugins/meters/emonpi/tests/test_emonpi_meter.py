"""The emonPi meter reading a pty (opened through pyserial as a real port) fed by an emulator."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from irene_core.errors import IreneError
from irene_core.metering.meter import MeterError
from irene_core.plugins import get_registry
from irene_meter_emonpi.meter import EmonPiMeter
from irene_meter_emonpi.testing import EmonPiEmulator


def test_paper_firmware_170ms_energy_within_2_percent(tmp_path):
    with EmonPiEmulator("170ms", power_w=120.0) as emulator, EmonPiMeter(port=emulator.port) as meter:
        m = meter.measure(1.8)
        assert meter.format == "170ms"
        meter.begin("step")
        time.sleep(0.9)
        emulator.set_power(300.0)
        time.sleep(0.9)
        step = meter.end("step")
    assert abs(m.energy_j - 120.0 * m.duration_s) <= 0.02 * 120.0 * m.duration_s
    assert m.mean_power_w == pytest.approx(120.0, rel=0.02)
    assert 9 <= m.samples <= 13 and not m.warnings
    truth = emulator.energy_j(step.t_begin, step.t_end)
    assert abs(step.energy_j - truth) <= 0.02 * truth
    assert step.energy_j > 1.5 * m.energy_j  # the step to 300 W is in the window


@pytest.mark.parametrize("fmt", ["classic", "continuous", "keyvalue"])
def test_stock_firmware_formats_and_the_coarse_interval_warning(fmt):
    # The stock firmwares report every 5-10 s; the emulator speeds them up to 0.25 s to keep the test short.
    with EmonPiEmulator(fmt, power_w=200.0, power2_w=50.0, interval_s=0.25) as emulator, \
            EmonPiMeter(port=emulator.port, channel="1+2") as meter:
        m = meter.measure(1.0)
        assert meter.format == fmt
    assert abs(m.energy_j - 250.0 * m.duration_s) <= 0.02 * 250.0 * m.duration_s
    assert m.domains["power1"] == pytest.approx(200.0 * m.duration_s, rel=0.02)
    assert m.domains["power2"] == pytest.approx(50.0 * m.duration_s, rel=0.02)
    assert len(m.warnings) == 1
    coarse = (r"the sample interval \(0\.2\d* s\) is coarse for a 1(\.\d+)? s window: "
              r".* use windows of at least 2\.\d+ s$")
    assert re.search(coarse, m.warnings[0])


def test_disconnect_mid_window_invalidates_it_and_keeps_earlier_windows():
    emulator = EmonPiEmulator("170ms", power_w=80.0).start()
    with EmonPiMeter(port=emulator.port) as meter:
        first = meter.measure(0.5, "first")
        meter.begin("second")
        time.sleep(0.2)
        emulator.disconnect()
        with pytest.raises(MeterError, match=r"meter 'emonpi', window 'second': serial port .* disconnected") as err:
            meter.end("second")
        with pytest.raises(IreneError, match="disconnected"):
            meter.begin("third")
    assert first.valid and first.energy_j == pytest.approx(80.0 * first.duration_s, rel=0.05)
    assert not err.value.measurement.valid


def test_wrong_baud_rate_gives_a_hint():
    with EmonPiEmulator("170ms", garbage=True, interval_s=0.05) as emulator:
        hint = r"no power data from .* within 0.5 s \(\d+ lines were not text: is the baud rate right\?"
        with pytest.raises(IreneError, match=hint):
            EmonPiMeter(port=emulator.port, timeout="0.5").begin("w")


def test_other_node_only_is_no_data():
    with EmonPiEmulator("classic", interval_s=0.05) as emulator:
        meter = EmonPiMeter(port=emulator.port, node="7", timeout="0.5")
        with pytest.raises(IreneError, match=r"lines were not readings of node 7, e\.g\. 'OK [56] "):
            meter.begin("w")
        meter.close()


def test_channel_missing_from_the_format():
    with (
        EmonPiEmulator("170ms", interval_s=0.05) as emulator,
        pytest.raises(IreneError, match=r"IrEne's modified firmware: power1,<W×100> lines carry no power2"),
    ):
        EmonPiMeter(port=emulator.port, channel="2", timeout="2").begin("w")


def test_missing_port_is_not_available(tmp_path):
    meter = EmonPiMeter(port=str(tmp_path / "ttyUSB9"))
    ok, reason = meter.available()
    assert not ok and reason.startswith(f"serial port {tmp_path / 'ttyUSB9'} not found")
    with pytest.raises(IreneError, match="not found"):
        meter.begin("w")


PERMISSION_PROBE = """
import sys
from irene_meter_emonpi.meter import EmonPiMeter
meter = EmonPiMeter(port=sys.argv[1])
print(meter.available())
try:
    meter.begin("w")
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def test_port_not_permitted_hints_at_the_dialout_group():
    with EmonPiEmulator("170ms") as emulator:
        os.chmod(emulator.port, 0)
        command = [sys.executable, "-c", PERMISSION_PROBE, emulator.port]
        if os.geteuid() == 0:  # root opens anything: drop the capabilities that bypass file modes
            if not shutil.which("setpriv"):
                pytest.skip("running as root without setpriv: cannot deny access to a port")
            command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
        out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    available, error = out.strip().splitlines()
    assert available.startswith("(False, ") and "permission denied on serial port" in available
    assert "dialout" in available
    assert error.startswith("IreneError meter 'emonpi': permission denied") and "usermod -aG dialout" in error


def test_bad_options_name_the_option_and_the_meter():
    with pytest.raises(IreneError, match=r"meter 'emonpi': option baud='fast': expected a positive integer"):
        EmonPiMeter(baud="fast")
    with pytest.raises(IreneError, match=r"meter 'emonpi': option channel='1\+1': expected distinct CT channels"):
        EmonPiMeter(channel="1+1")
    unknown = r"meter 'emonpi': unknown option 'baudrate' \(options: port, baud, channel, node, timeout, max_power_w\)"
    with pytest.raises(IreneError, match=unknown):
        EmonPiMeter(baudrate="38400")


def test_registered_through_entry_point():
    assert get_registry().get("meter", "emonpi") is EmonPiMeter
