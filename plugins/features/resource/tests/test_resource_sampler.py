"""The resource sampler over a /proc in a temp dir (known CPU and memory use) and simulated GPUs."""

from __future__ import annotations

import time

import pytest

from irene_core.errors import IreneError
from irene_core.plugins import get_registry
from irene_core.tree.schema import RESOURCE_FEATURES
from irene_features_resource.sampler import ProcResourceSampler
from irene_meter_nvml.testing import SimulatedGpu, patch_nvml

INTERVAL = 0.02


@pytest.fixture
def no_gpu(monkeypatch):
    """No NVIDIA driver: NVML's init fails as it does when libnvidia-ml.so.1 is absent."""
    import pynvml

    def no_library() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", no_library)


def test_cpu_and_memory_are_time_weighted_window_means(fake_proc, no_gpu):
    sampler = ProcResourceSampler(INTERVAL, proc=str(fake_proc.root))
    with sampler:
        t0 = time.monotonic()
        time.sleep(0.5)
        t_step = fake_proc.busy.set(0.75)
        fake_proc.mem.set(60.0)
        time.sleep(0.5)
        t1 = time.monotonic()
        whole = sampler.window(t0, t1)
        second = sampler.window(t_step + 0.05, t1)
        count = sampler.sample_count(t0, t1)
    expected_cpu = 100 * fake_proc.busy.mean(t0, t1)
    # tolerance: one clock tick at each edge (of 8 CPUs x 100 Hz x window) plus one sample of lag
    ticks = 8 * 100 * (t1 - t0)
    assert whole["cpu"] == pytest.approx(expected_cpu, abs=100 * 2 / ticks + 50 * INTERVAL / (t1 - t0) + 0.5)
    assert second["cpu"] == pytest.approx(75.0, abs=2.0)
    expected_mem = fake_proc.mem.mean(t0, t1)
    assert whole["mem"] == pytest.approx(expected_mem, abs=20 * 2 * INTERVAL / (t1 - t0) + 0.1)
    assert second["mem"] == pytest.approx(60.0, abs=0.1)
    assert set(whole) == {"cpu", "mem"}
    assert abs(count - (t1 - t0) / INTERVAL) <= 6
    assert set(sampler.missing_features()) == {"gpu", "gpu_mem", "gpu_clk", "gpu_mem_clk", "gpu_energy_mean"}
    assert "no NVIDIA driver" in sampler.missing_features()["gpu"]


@pytest.mark.parametrize("energy_counter", [True, False], ids=["energy-counter", "polled-power"])
def test_gpu_features_through_nvml(fake_proc, monkeypatch, energy_counter):
    gpus = [SimulatedGpu(power_w=100.0, energy_counter=energy_counter, utilization=(50.0, 30.0)),
            SimulatedGpu(power_w=60.0, energy_counter=energy_counter, utilization=(70.0, 10.0),
                         clocks_mhz=(1700.0, 5000.0))]
    state = patch_nvml(monkeypatch, gpus)
    with ProcResourceSampler(INTERVAL, proc=str(fake_proc.root)) as sampler:
        t0 = time.monotonic()
        time.sleep(0.6)
        t1 = time.monotonic()
        features = sampler.window(t0, t1, calls=4)
    assert state.initialized == 0  # stop() released NVML
    assert set(features) <= set(RESOURCE_FEATURES) and "times_mean" not in features
    assert features["gpu"] == pytest.approx(60.0) and features["gpu_mem"] == pytest.approx(20.0)
    assert features["gpu_clk"] == pytest.approx(1600.0) and features["gpu_mem_clk"] == pytest.approx(5000.0)
    truth = sum(g.energy_j(t0, t1) for g in gpus) / 4
    # the counter updates every 10 ms: at most one update of lag at each edge
    assert features["gpu_energy_mean"] == pytest.approx(truth, abs=2 * 0.01 * 160.0 / 4 + 0.01 * truth)


def test_samples_real_proc(no_gpu):
    with get_registry().get("features", "resource").configured(interval_s=0.01) as sampler:
        t0 = time.monotonic()
        time.sleep(0.3)
        t1 = time.monotonic()
        features = sampler.window(t0, t1)
        assert 0.0 <= features["cpu"] <= 100.0 and 0.0 < features["mem"] < 100.0
        assert sampler.sample_count(t0, t1) >= 15


def test_short_window_waits_for_the_sample_that_covers_it(fake_proc, no_gpu):
    with ProcResourceSampler(0.1, proc=str(fake_proc.root)) as sampler:
        time.sleep(0.15)
        t0 = time.monotonic()
        time.sleep(0.01)
        features = sampler.window(t0, time.monotonic())
    assert features["mem"] == pytest.approx(40.0)


def test_window_errors(fake_proc, no_gpu):
    sampler = ProcResourceSampler(INTERVAL, proc=str(fake_proc.root))
    with pytest.raises(IreneError, match="not started"):
        sampler.window(0.0, 1.0)
    before = time.monotonic() - 1.0
    with sampler:
        with pytest.raises(IreneError, match="no samples for the start of the window"):
            sampler.window(before, time.monotonic())
        with pytest.raises(IreneError, match="already started"):
            sampler.start()
    with pytest.raises(IreneError, match="interval 5 ms is below the 10 ms minimum"):
        ProcResourceSampler(0.005)


def test_unreadable_proc_is_a_clear_error(tmp_path):
    with pytest.raises(IreneError, match=f"cannot read {tmp_path}/stat"):
        ProcResourceSampler(proc=str(tmp_path)).start()


def test_registered_as_a_template():
    template = get_registry().get("features", "resource")
    assert isinstance(template, ProcResourceSampler) and template.interval_s == 0.17
    configured = template.configured(interval_s=0.05)
    assert configured is not template and configured.interval_s == 0.05
