"""Per-GPU attribution (issue 14) with NVML patched at the binding: CUDA device → NVML index by UUID,
MIG refusal, per-field isolation, instantaneous power, ceilings, recovery, meta.hardware."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import pytest

from irene_core.errors import IreneError
from irene_core.metering.gpus import NvmlGpus, hardware_info, nvml_indices_for_device
from irene_core.metering.meter import MeterError
from irene_features_resource.sampler import ProcResourceSampler
from irene_meter_nvml.meter import NvmlMeter
from irene_meter_nvml.testing import SimulatedGpu, patch_nvml, simulated_gpus

UUID = "GPU-{:08x}-1111-2222-3333-444444444444"


@pytest.fixture
def four_gpus(monkeypatch):
    gpus = simulated_gpus(4)
    patch_nvml(monkeypatch, gpus)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return gpus


@pytest.mark.parametrize(
    ("visible", "device", "nvml_index"),
    [
        (None, "cuda:3", 3),
        (None, "cuda", 0),
        (f"{UUID.format(2)},{UUID.format(0)}", "cuda:0", 2),
        (f"{UUID.format(2)},{UUID.format(0)}", "cuda:1", 0),
        ("GPU-00000003", "cuda:0", 3),  # CUDA accepts a unique UUID prefix
        ("3,1", "cuda:1", 1),
    ],
)
def test_cuda_device_maps_to_its_nvml_index_honouring_cuda_visible_devices(
    four_gpus, monkeypatch, visible, device, nvml_index
):
    if visible is not None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert nvml_indices_for_device(device) == (nvml_index,)
    assert nvml_indices_for_device("cpu") == ()


def test_torch_uuid_wins_when_torch_sees_cuda(four_gpus, monkeypatch):
    import torch

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # torch already applied it: its uuid is the truth
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(uuid=UUID.format(1)[4:]))
    assert nvml_indices_for_device("cuda:0") == (1,)
    with pytest.raises(IreneError, match=r"cuda:1 not found \(torch sees 1 CUDA devices\)"):
        nvml_indices_for_device("cuda:1")


def test_unmappable_devices_are_one_line_errors(four_gpus, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", UUID.format(9))
    with pytest.raises(IreneError, match=r"cuda:0 has UUID GPU-00000009-.*, which matches 0 of NVML's GPUs"):
        nvml_indices_for_device("cuda:0")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    with pytest.raises(IreneError, match=r"cuda:1 not found \(CUDA_VISIBLE_DEVICES='1'\)"):
        nvml_indices_for_device("cuda:1")
    with pytest.raises(IreneError, match="'cuda:x' is not a CUDA device"):
        nvml_indices_for_device("cuda:x")


def test_mig_mode_is_refused_unless_allowed(monkeypatch):
    patch_nvml(monkeypatch, [SimulatedGpu(mig=True)])
    ok, reason = NvmlMeter().available()
    assert not ok and "GPU 0 (NVIDIA Simulated GPU) is in MIG mode" in reason and "allow_mig=1" in reason
    with pytest.raises(IreneError, match=r"meter 'nvml': GPU 0 .* is in MIG mode"):
        NvmlMeter().begin("w")
    with NvmlMeter(allow_mig="1") as meter:
        assert meter.measure(0.05).valid


def test_one_unsupported_field_blanks_only_itself(monkeypatch):
    patch_nvml(monkeypatch, [SimulatedGpu(unsupported=frozenset({"nvmlDeviceGetClockInfo"}))])
    gpus = NvmlGpus().open()
    try:
        assert gpus.utilization() == [(50.0, 30.0)]
        assert all(math.isnan(v) for v in gpus.clocks_mhz()[0])
    finally:
        gpus.close()
    sampler = ProcResourceSampler(0.02)
    with sampler:
        begin = time.monotonic()
        time.sleep(0.15)
        features = sampler.window(begin, time.monotonic())
    assert {"gpu", "gpu_mem", "gpu_energy_mean"} <= set(features)
    assert "gpu_clk" not in features and "gpu_mem_clk" not in features


def test_the_sampler_samples_only_the_gpus_it_is_given(monkeypatch):
    gpus = simulated_gpus(2, energy_counter=False)
    gpus[1].set_power(300.0)
    patch_nvml(monkeypatch, gpus)
    with ProcResourceSampler().configured(0.02, gpus=(1,)) as sampler:
        begin = time.monotonic()
        time.sleep(0.2)
        end = time.monotonic()
        energy = sampler.window(begin, end)["gpu_energy_mean"]
    assert energy == pytest.approx(300.0 * (end - begin), rel=0.15)
    with ProcResourceSampler().configured(0.02, gpus=()) as cpu_only:
        assert cpu_only.missing_features()["gpu"] == "the model runs on no GPU"


@pytest.mark.parametrize("instant", [True, False])
def test_power_polling_prefers_instant_power_and_marks_the_1s_average(monkeypatch, instant):
    unsupported = frozenset({"nvmlDeviceGetPowerUsage"}) if instant else frozenset()
    patch_nvml(monkeypatch, [SimulatedGpu(energy_counter=False, instant_power=instant, unsupported=unsupported)])
    with NvmlMeter(mode="power", interval_ms="10") as meter:
        m = meter.measure(0.3)
    assert m.valid and m.mean_power_w == pytest.approx(100.0, rel=0.05)
    averaged = [w for w in m.warnings if "1 s average" in w]
    assert averaged == ([] if instant else [averaged[0]]) and (instant or "NVML_FI_DEV_POWER_INSTANT" in averaged[0])


@pytest.mark.parametrize("mode", ["counter", "power"])
def test_power_above_1_5x_the_enforced_limit_is_refused(monkeypatch, mode):
    gpu = SimulatedGpu(power_w=100.0, power_limit_w=300.0)
    patch_nvml(monkeypatch, [gpu])
    with NvmlMeter(mode=mode, interval_ms="10") as meter:
        assert meter.measure(0.2).valid
        meter.begin("w")
        gpu.set_power(700.0)  # above 1.5 × 300 W
        time.sleep(0.5)
        with pytest.raises(MeterError, match=r"meter 'nvml', window 'w': gpu0: .*(450 W|max_power_w=450 W)") as caught:
            meter.end("w")
    assert not caught.value.measurement.valid
    assert ("nvmlDeviceGetTotalEnergyConsumption(GPU 0)" if mode == "counter" else "NVML_FI_DEV_POWER_INSTANT") in str(
        caught.value
    )


@pytest.mark.parametrize("mode", ["counter", "power"])
def test_a_transient_nvml_failure_invalidates_only_the_windows_it_touches(monkeypatch, mode):
    gpu = SimulatedGpu(power_w=120.0)
    patch_nvml(monkeypatch, [gpu])
    with NvmlMeter(mode=mode, interval_ms="10") as meter:
        meter.begin("touched")
        gpu.lost = True
        time.sleep(0.05)
        if mode == "counter":
            meter.begin("edge")  # this edge's read fails
        gpu.lost = False
        with pytest.raises(MeterError, match="the GPU fell off the bus"):
            meter.end("touched")
        if mode == "counter":
            with pytest.raises(MeterError, match="the GPU fell off the bus"):
                meter.end("edge")
        time.sleep(0.05)
        later = meter.measure(0.2)
    assert later.valid and later.mean_power_w == pytest.approx(120.0, rel=0.1)


def test_hardware_info_records_cpu_and_each_gpu(monkeypatch):
    patch_nvml(monkeypatch, simulated_gpus(2, mig=False))
    info = hardware_info((1,))
    assert info["cpu"]["count"] >= 1 and info["cpu"]["model"]
    assert info["gpus"] == [{"index": 1, "uuid": UUID.format(1), "pci_bus_id": "00000000:02:00.0",
                             "name": "NVIDIA Simulated GPU", "driver": "570.86.15", "mig": False}]
    assert hardware_info(())["gpus"] == []
    assert len(hardware_info(None)["gpus"]) == 2
