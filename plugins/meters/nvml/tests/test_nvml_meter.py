"""The NVML meter with the binding's functions patched to simulated GPUs (both code paths)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from irene_core.errors import IreneError
from irene_core.metering.meter import MeterError
from irene_core.plugins import get_registry
from irene_meter_nvml.meter import NvmlMeter
from irene_meter_nvml.testing import SimulatedGpu, patch_nvml


def test_counter_path_sums_gpus_read_at_window_edges(monkeypatch):
    gpus = [SimulatedGpu(power_w=150.0), SimulatedGpu(power_w=60.0)]
    state = patch_nvml(monkeypatch, gpus)
    with NvmlMeter() as meter:
        both = "GPU 0 (NVIDIA Simulated GPU), GPU 1 (NVIDIA Simulated GPU)"
        assert meter.available() == (True, f"{both}; total-energy counter")
        meter.begin("w")
        time.sleep(0.5)
        gpus[0].set_power(250.0)
        time.sleep(0.5)
        m = meter.end("w")
        assert state.initialized == 1
    assert state.initialized == 0  # close() shut NVML down
    # the counter lags by at most one update period at each edge
    for gpu, domain in zip(gpus, ("gpu0", "gpu1"), strict=True):
        truth = gpu.energy_j(m.t_begin, m.t_end)
        assert abs(m.domains[domain] - truth) <= 2 * gpu.counter_period_s * 250.0
    assert m.energy_j == pytest.approx(m.domains["gpu0"] + m.domains["gpu1"])
    assert m.energy_j == pytest.approx(sum(g.energy_j(m.t_begin, m.t_end) for g in gpus), rel=0.02)
    assert not m.warnings  # 1 s >= 10 x the counter's 0.1 s resolution


def test_power_polling_path_on_a_gpu_without_energy_counter(monkeypatch):
    gpu = SimulatedGpu(name="GeForce GTX 1080 Ti", power_w=120.0, energy_counter=False)
    patch_nvml(monkeypatch, [gpu])
    with NvmlMeter(interval_ms="20") as meter:
        assert meter.available() == (True, "GPU 0 (GeForce GTX 1080 Ti); power polled every 20 ms")
        meter.begin("w")
        time.sleep(0.4)
        t_step = gpu.set_power(200.0)
        time.sleep(0.4)
        m = meter.end("w")
    truth = gpu.energy_j(m.t_begin, m.t_end)
    # a polled reading stands for the interval before it: the step is seen at the first poll after it
    seen = min(t for t in gpu.power_reads if t >= t_step)
    lag = seen - max(t for t in gpu.power_reads if t < t_step)
    assert lag < 0.2
    assert abs(m.energy_j - truth) <= (200.0 - 120.0) * lag + 0.001 * truth
    assert m.samples >= 30
    assert m.domains == {}  # one GPU: no per-domain split
    assert not m.warnings


def test_auto_mode_uses_power_when_one_selected_gpu_lacks_the_counter(monkeypatch):
    patch_nvml(monkeypatch, [SimulatedGpu(), SimulatedGpu(name="Tesla P100", energy_counter=False)])
    assert NvmlMeter().available()[1].endswith("power polled every 50 ms")
    assert NvmlMeter(gpus="0").available()[1].endswith("total-energy counter")
    with pytest.raises(IreneError, match=r"GPU 1 \(Tesla P100\) has no total-energy counter .* mode=power"):
        NvmlMeter(mode="counter").begin("w")


def test_gpu_selection(monkeypatch):
    gpus = [SimulatedGpu(power_w=100.0), SimulatedGpu(power_w=40.0)]
    patch_nvml(monkeypatch, gpus)
    with NvmlMeter(gpus="1") as meter:
        m = meter.measure(0.3)
    assert m.mean_power_w == pytest.approx(40.0, rel=0.1)
    assert m.domains == {"gpu1": pytest.approx(m.energy_j)}
    ok, reason = NvmlMeter(gpus="0,5").available()
    assert not ok and reason == "GPU 5 not found (NVML sees 2 GPUs: 0-1)"
    with pytest.raises(IreneError, match=r"meter 'nvml': option gpus='x': expected 'all' or comma-separated"):
        NvmlMeter(gpus="x")
    with pytest.raises(IreneError, match=r"option interval_ms='200': expected 10 to 100 ms"):
        NvmlMeter(interval_ms="200")


def test_gpu_lost_mid_window_invalidates_the_window(monkeypatch):
    gpu = SimulatedGpu(energy_counter=False)
    patch_nvml(monkeypatch, [gpu])
    with NvmlMeter(interval_ms="10") as meter:
        first = meter.measure(0.2, "first")
        meter.begin("second")
        time.sleep(0.05)
        gpu.lost = True
        lost = "window 'second': reading GPU power failed: the GPU fell off the bus"
        with pytest.raises(MeterError, match=lost) as err:
            meter.end("second")
    assert first.valid and first.energy_j > 0
    assert err.value.measurement is not None and not err.value.measurement.valid


def test_no_driver_is_reported_without_crashing(monkeypatch):
    import pynvml

    def no_library() -> None:  # what nvmlInit does when libnvidia-ml.so.1 is absent
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", no_library)
    meter = NvmlMeter()
    ok, reason = meter.available()
    assert not ok and reason == "no NVIDIA driver here (libnvidia-ml.so.1 not found)"
    with pytest.raises(IreneError, match="no NVIDIA driver here"):
        meter.begin("w")


def test_plugin_import_does_not_import_nvml():
    code = "import sys, irene_meter_nvml.plugin; print('pynvml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_registered_through_entry_point():
    assert get_registry().get("meter", "nvml") is NvmlMeter
