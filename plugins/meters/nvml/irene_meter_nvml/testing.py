"""Simulated GPUs behind the real ``pynvml`` binding, for tests and demos without a driver.

``patch_nvml(monkeypatch, [SimulatedGpu(power_w=150.0)])`` replaces the binding's functions that
IrEne calls (``pynvml.nvmlInit``, ``nvmlDeviceGetPowerUsage``...) so NVML sees these GPUs; the
product code runs unchanged above them.  ``monkeypatch`` is pytest's fixture (anything with
``setattr(target, name, value)`` works).
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from irene_core.plugin_api import StepProfile


class SimulatedGpu:
    """One GPU: power (W, changeable), a total-energy counter updated every ``counter_period_s``
    (absent on pre-Volta parts), utilisation, clocks, identity (UUID, PCI bus id), MIG mode, enforced
    power limit, and whether the driver offers ``NVML_FI_DEV_POWER_INSTANT``.  ``unsupported`` names
    binding functions that answer NOT_SUPPORTED for this GPU (e.g. ``nvmlDeviceGetClockInfo``)."""

    def __init__(
        self,
        name: str = "NVIDIA Simulated GPU",
        power_w: float = 100.0,
        energy_counter: bool = True,
        counter_period_s: float = 0.01,
        utilization: tuple[float, float] = (50.0, 30.0),
        clocks_mhz: tuple[float, float] = (1500.0, 5000.0),
        *,
        uuid: str = "GPU-00000000-0000-0000-0000-000000000000",
        pci_bus_id: str = "00000000:01:00.0",
        mig: bool = False,
        power_limit_w: float = 300.0,
        instant_power: bool = True,
        unsupported: frozenset[str] = frozenset(),
    ):
        self.name = name
        self.uuid = uuid
        self.pci_bus_id = pci_bus_id
        self.mig = mig
        self.power_limit_w = power_limit_w
        self.instant_power = instant_power
        self.unsupported = unsupported
        self.energy_counter = energy_counter
        self.counter_period_s = counter_period_s
        self.utilization = utilization
        self.clocks_mhz = clocks_mhz
        self.lost = False
        self.power = StepProfile(power_w)
        self.power_reads: list[float] = []  # when NVML was asked for this GPU's power

    def set_power(self, watts: float) -> float:
        """Change the power draw from now on; returns the time of the change."""
        return self.power.set(watts)

    def energy_j(self, begin: float, end: float) -> float:
        """The exact energy drawn between two ``time.monotonic()`` times."""
        return self.power.integral(begin, end)

    def counter_mj(self) -> int:
        """The counter as NVML shows it: the energy up to its last update."""
        now = time.monotonic()
        updated = now - (now - self.power.t0) % self.counter_period_s
        return int(1000 * self.power.integral(self.power.t0, updated))


def simulated_gpus(count: int, **options: Any) -> list[SimulatedGpu]:
    """``count`` GPUs with distinct UUIDs (``GPU-<n>…``) and PCI bus ids, in NVML (PCI) order."""
    return [
        SimulatedGpu(
            uuid=f"GPU-{n:08x}-1111-2222-3333-444444444444", pci_bus_id=f"00000000:{n + 1:02x}:00.0", **options
        )
        for n in range(count)
    ]


def patch_nvml(monkeypatch: Any, gpus: list[SimulatedGpu]) -> SimpleNamespace:
    """Make the ``pynvml`` binding see ``gpus``; returns a state with the init reference count."""
    import pynvml

    state = SimpleNamespace(initialized=0)

    def error(code: int) -> pynvml.NVMLError:
        return pynvml.NVMLError(code)

    def check(gpu: SimulatedGpu, function: str = "") -> SimulatedGpu:
        if state.initialized <= 0:
            raise error(pynvml.NVML_ERROR_UNINITIALIZED)
        if gpu.lost:
            raise error(pynvml.NVML_ERROR_GPU_IS_LOST)
        if function in gpu.unsupported:
            raise error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return gpu

    def init() -> None:
        state.initialized += 1

    def shutdown() -> None:
        if state.initialized <= 0:
            raise error(pynvml.NVML_ERROR_UNINITIALIZED)
        state.initialized -= 1

    def count() -> int:
        if state.initialized <= 0:
            raise error(pynvml.NVML_ERROR_UNINITIALIZED)
        return len(gpus)

    def handle(index: int) -> SimulatedGpu:
        if not 0 <= index < count():
            raise error(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return gpus[index]

    def total_energy(gpu: SimulatedGpu) -> int:
        if not check(gpu, "nvmlDeviceGetTotalEnergyConsumption").energy_counter:
            raise error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return gpu.counter_mj()

    def power_usage(gpu: SimulatedGpu) -> int:
        now = time.monotonic()
        check(gpu, "nvmlDeviceGetPowerUsage").power_reads.append(now)
        return int(1000 * gpu.power.at(now))

    def field_values(gpu: SimulatedGpu, field_ids: list[int]) -> list[SimpleNamespace]:
        check(gpu, "nvmlDeviceGetFieldValues")
        values = []
        for field_id in field_ids:
            status, milliwatts = pynvml.NVML_ERROR_NOT_SUPPORTED, 0
            if field_id == pynvml.NVML_FI_DEV_POWER_INSTANT and gpu.instant_power:
                now = time.monotonic()
                gpu.power_reads.append(now)
                status, milliwatts = pynvml.NVML_SUCCESS, int(1000 * gpu.power.at(now))
            values.append(SimpleNamespace(nvmlReturn=status, value=SimpleNamespace(uiVal=milliwatts)))
        return values

    def clock(gpu: SimulatedGpu, kind: int) -> int:
        sm, mem = check(gpu, "nvmlDeviceGetClockInfo").clocks_mhz
        return int({pynvml.NVML_CLOCK_SM: sm, pynvml.NVML_CLOCK_MEM: mem}[kind])

    def utilization(gpu: SimulatedGpu) -> SimpleNamespace:
        compute, memory = check(gpu, "nvmlDeviceGetUtilizationRates").utilization
        return SimpleNamespace(gpu=compute, memory=memory)

    def mig_mode(gpu: SimulatedGpu) -> tuple[int, int]:
        mode = pynvml.NVML_DEVICE_MIG_ENABLE if check(gpu, "nvmlDeviceGetMigMode").mig else 0
        return mode, mode

    def driver_version() -> str:
        count()
        return "570.86.15"

    functions = {
        "nvmlInit": init,
        "nvmlShutdown": shutdown,
        "nvmlDeviceGetCount": count,
        "nvmlDeviceGetHandleByIndex": handle,
        "nvmlDeviceGetName": lambda gpu: check(gpu).name,
        "nvmlDeviceGetUUID": lambda gpu: check(gpu, "nvmlDeviceGetUUID").uuid,
        "nvmlDeviceGetPciInfo": lambda gpu: SimpleNamespace(busId=check(gpu, "nvmlDeviceGetPciInfo").pci_bus_id),
        "nvmlDeviceGetMigMode": mig_mode,
        "nvmlDeviceGetEnforcedPowerLimit": lambda gpu: int(
            1000 * check(gpu, "nvmlDeviceGetEnforcedPowerLimit").power_limit_w
        ),
        "nvmlDeviceGetFieldValues": field_values,
        "nvmlSystemGetDriverVersion": driver_version,
        "nvmlDeviceGetTotalEnergyConsumption": total_energy,
        "nvmlDeviceGetPowerUsage": power_usage,
        "nvmlDeviceGetUtilizationRates": utilization,
        "nvmlDeviceGetClockInfo": clock,
    }
    for name, function in functions.items():
        monkeypatch.setattr(pynvml, name, function)
    return state
