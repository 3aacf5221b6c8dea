"""The NVIDIA GPUs seen through NVML (``nvidia-ml-py``, import name ``pynvml``, imported on open).

Every call goes through the ``pynvml`` module's functions, so tests patch them there
(:mod:`irene_meter_nvml.testing`).  Shared by the NVML meter and the resource sampler.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from irene_core.errors import IreneError


def parse_gpu_selection(text: str) -> tuple[int, ...] | None:
    """``all`` → None (every GPU); ``0,2`` → (0, 2).  Raises ValueError on anything else."""
    if text.strip() == "all":
        return None
    try:
        indices = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError("expected 'all' or comma-separated GPU indices such as 0,1") from None
    if not indices or min(indices) < 0 or len(set(indices)) != len(indices):
        raise ValueError("expected 'all' or distinct non-negative GPU indices such as 0,1")
    return indices


def nvml() -> ModuleType:
    """The ``pynvml`` binding, or a clear error when nvidia-ml-py is missing."""
    try:
        import pynvml
    except ImportError:
        raise IreneError("nvidia-ml-py is not installed: pip install nvidia-ml-py") from None
    binding: ModuleType = pynvml
    return binding


def describe_nvml_error(exc: BaseException) -> str:
    """A user-facing reason for an NVML error."""
    binding = nvml()
    reasons = {
        binding.NVML_ERROR_LIBRARY_NOT_FOUND: "no NVIDIA driver here (libnvidia-ml.so.1 not found)",
        binding.NVML_ERROR_DRIVER_NOT_LOADED: "the NVIDIA kernel driver is not loaded",
        binding.NVML_ERROR_NO_PERMISSION: "NVML refused access (insufficient permissions)",
        binding.NVML_ERROR_GPU_IS_LOST: "the GPU fell off the bus (GPU is lost)",
    }
    return reasons.get(getattr(exc, "value", None), f"NVML error: {exc}")


class NvmlGpus:
    """The selected GPUs (all when ``selection`` is None), opened with :meth:`open`."""

    def __init__(self, selection: tuple[int, ...] | None = None):
        self.selection = selection
        self.indices: list[int] = []
        self.names: list[str] = []
        self._handles: list[Any] = []
        self._nvml: ModuleType | None = None

    @property
    def error(self) -> type[Exception]:
        """The binding's exception type (catch it around readings)."""
        error: type[Exception] = nvml().NVMLError
        return error

    def open(self) -> NvmlGpus:
        binding = nvml()
        try:
            binding.nvmlInit()
        except binding.NVMLError as exc:
            raise IreneError(describe_nvml_error(exc)) from None
        self._nvml = binding
        try:
            count = binding.nvmlDeviceGetCount()
            if count == 0:
                raise IreneError("NVML sees no GPU")
            missing = [i for i in self.selection or () if i >= count]
            if missing:
                raise IreneError(f"GPU {missing[0]} not found (NVML sees {count} GPUs: 0-{count - 1})")
            self.indices = list(range(count)) if self.selection is None else list(self.selection)
            self._handles = [binding.nvmlDeviceGetHandleByIndex(i) for i in self.indices]
            self.names = [_text(binding.nvmlDeviceGetName(h)) for h in self._handles]
        except binding.NVMLError as exc:
            self.close()
            raise IreneError(describe_nvml_error(exc)) from None
        except IreneError:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self._nvml is not None:
            self._nvml.nvmlShutdown()
            self._nvml = None

    def describe_gpus(self) -> str:
        return ", ".join(f"GPU {i} ({name})" for i, name in zip(self.indices, self.names, strict=True))

    def without_energy_counter(self) -> list[str]:
        """The selected GPUs that have no total-energy counter (older than Volta)."""
        binding = nvml()
        lacking = []
        for i, name, handle in zip(self.indices, self.names, self._handles, strict=True):
            try:
                binding.nvmlDeviceGetTotalEnergyConsumption(handle)
            except binding.NVMLError as exc:
                if exc.value != binding.NVML_ERROR_NOT_SUPPORTED:
                    raise IreneError(describe_nvml_error(exc)) from None
                lacking.append(f"GPU {i} ({name})")
        return lacking

    def energy_mj(self, position: int) -> int:
        """The total-energy counter (mJ since the driver loaded) of the ``position``-th selected GPU."""
        binding = nvml()
        try:
            energy: int = binding.nvmlDeviceGetTotalEnergyConsumption(self._handles[position])
            return energy
        except binding.NVMLError as exc:
            gpu = self.indices[position]
            raise IreneError(f"reading the energy counter of GPU {gpu} failed: {describe_nvml_error(exc)}") from None

    def power_w(self) -> list[float]:
        """Each selected GPU's power draw (W)."""
        binding = nvml()
        return [binding.nvmlDeviceGetPowerUsage(h) / 1000.0 for h in self._handles]

    def utilization(self) -> list[tuple[float, float]]:
        """Each GPU's (compute %, memory-controller %) busy time over NVML's last sample period."""
        binding = nvml()
        rates = [binding.nvmlDeviceGetUtilizationRates(h) for h in self._handles]
        return [(float(r.gpu), float(r.memory)) for r in rates]

    def clocks_mhz(self) -> list[tuple[float, float]]:
        """Each GPU's (SM clock, memory clock) in MHz."""
        binding = nvml()
        return [
            (float(binding.nvmlDeviceGetClockInfo(h, binding.NVML_CLOCK_SM)),
             float(binding.nvmlDeviceGetClockInfo(h, binding.NVML_CLOCK_MEM)))
            for h in self._handles
        ]


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
