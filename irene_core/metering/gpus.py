"""The NVIDIA GPUs seen through NVML (``nvidia-ml-py``, import name ``pynvml``, imported on open).

Every call goes through the ``pynvml`` module's functions, so tests patch them there
(:mod:`irene_meter_nvml.testing`).  Shared by the NVML meter and the resource sampler.  NVML numbers
GPUs its own way and ignores ``CUDA_VISIBLE_DEVICES``: :func:`nvml_indices_for_device` maps a torch
device (``cuda:N``) to its NVML index by UUID.  Readings are isolated per field: a field a GPU does
not support reads NaN, and the others still count.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from irene_core.errors import IreneError

T = TypeVar("T")


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
        self.uuids: list[str] = []
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
            self.uuids = [_text(binding.nvmlDeviceGetUUID(h)) for h in self._handles]
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

    def _field(self, read: Callable[[Any], T], handle: Any, missing: T) -> T:
        """One NVML field of one GPU; ``missing`` when the driver does not offer it or the read fails."""
        try:
            return read(handle)
        except nvml().NVMLError:
            return missing

    def power_w(self) -> list[float]:
        """Each selected GPU's power draw (W): instantaneous where the driver offers
        ``NVML_FI_DEV_POWER_INSTANT``, else ``nvmlDeviceGetPowerUsage`` (a 1 s average on Ampere and
        newer: see :meth:`power_is_averaged`).  Raises :attr:`error` when a GPU's power cannot be read."""
        return [self._power_of(h) for h in self._handles]

    def _power_of(self, handle: Any) -> float:
        instant = self._instant_power_w(handle)
        return instant if instant is not None else nvml().nvmlDeviceGetPowerUsage(handle) / 1000.0

    def _instant_power_w(self, handle: Any) -> float | None:
        """``NVML_FI_DEV_POWER_INSTANT`` (mW → W), or None where the driver lacks it."""
        binding = nvml()
        field_id = getattr(binding, "NVML_FI_DEV_POWER_INSTANT", None)
        if field_id is None:
            return None
        try:
            (value,) = binding.nvmlDeviceGetFieldValues(handle, [field_id])
        except binding.NVMLError:
            return None
        if value.nvmlReturn != binding.NVML_SUCCESS:
            return None
        return float(value.value.uiVal) / 1000.0

    def power_is_averaged(self) -> list[bool]:
        """Per GPU: True when :meth:`power_w` falls back to the 1 s averaged ``nvmlDeviceGetPowerUsage``."""
        return [self._instant_power_w(h) is None for h in self._handles]

    def power_limit_w(self) -> list[float]:
        """Each GPU's enforced power limit (W); NaN where NVML does not report it."""
        return [self._field(nvml().nvmlDeviceGetEnforcedPowerLimit, h, math.nan) / 1000.0 for h in self._handles]

    def mig_enabled(self) -> list[bool]:
        """Per GPU: whether MIG mode is on (energy and power then stay per physical GPU)."""
        binding = nvml()
        modes = [self._field(binding.nvmlDeviceGetMigMode, h, (0, 0)) for h in self._handles]
        return [current == binding.NVML_DEVICE_MIG_ENABLE for current, _ in modes]

    def utilization(self) -> list[tuple[float, float]]:
        """Each GPU's (compute %, memory-controller %) busy time over NVML's last sample period."""
        rates = [self._field(nvml().nvmlDeviceGetUtilizationRates, h, None) for h in self._handles]
        return [(float(r.gpu), float(r.memory)) if r is not None else (math.nan, math.nan) for r in rates]

    def clocks_mhz(self) -> list[tuple[float, float]]:
        """Each GPU's (SM clock, memory clock) in MHz."""
        binding = nvml()

        def clock(kind: int) -> Callable[[Any], float]:
            return lambda handle: float(binding.nvmlDeviceGetClockInfo(handle, kind))

        sm, mem = clock(binding.NVML_CLOCK_SM), clock(binding.NVML_CLOCK_MEM)
        return [(self._field(sm, h, math.nan), self._field(mem, h, math.nan)) for h in self._handles]

    def describe_hardware(self) -> list[dict[str, Any]]:
        """Each selected GPU as ``meta.hardware`` records it: index, UUID, PCI bus id, name, driver, MIG."""
        binding = nvml()
        driver = _text(self._field(lambda _: binding.nvmlSystemGetDriverVersion(), None, ""))
        pci = [self._field(binding.nvmlDeviceGetPciInfo, h, None) for h in self._handles]
        return [
            {"index": i, "uuid": uuid, "pci_bus_id": _text(p.busId) if p is not None else "", "name": name,
             "driver": driver, "mig": mig}
            for i, uuid, p, name, mig in zip(self.indices, self.uuids, pci, self.names, self.mig_enabled(), strict=True)
        ]


def _normal_uuid(uuid: str) -> str:
    """``GPU-58d3…`` (NVML, CUDA_VISIBLE_DEVICES) and ``58d3…`` (torch) compare equal."""
    uuid = uuid.strip().lower()
    return uuid.removeprefix("gpu-")


def _cuda_ordinal(device: str) -> int:
    """``cuda`` → 0, ``cuda:N`` → N; anything else is not a CUDA device."""
    kind, _, index = device.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise IreneError(f"device {device!r} is not a CUDA device (expected cuda or cuda:N)")
    return int(index or 0)


def _cuda_uuid_from_torch(ordinal: int) -> str | None:
    """The UUID CUDA reports for ``cuda:ordinal`` through torch, or None when torch or CUDA is absent."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    if ordinal >= torch.cuda.device_count():
        raise IreneError(f"cuda:{ordinal} not found (torch sees {torch.cuda.device_count()} CUDA devices)")
    return str(torch.cuda.get_device_properties(ordinal).uuid)


def nvml_indices_for_device(device: str) -> tuple[int, ...]:
    """The NVML index of the GPU behind torch device ``device`` (``cuda`` = ``cuda:0``), matched by
    UUID: torch's ``get_device_properties(N).uuid`` when torch sees CUDA, else entry N of
    ``CUDA_VISIBLE_DEVICES`` (a UUID, or an index taken as NVML's, i.e. PCI order), else NVML index N.
    A CPU device runs on no GPU: ``()``."""
    if device.split(":", 1)[0] != "cuda":
        return ()
    ordinal = _cuda_ordinal(device)
    gpus = NvmlGpus().open()
    try:
        by_uuid = {_normal_uuid(u): i for i, u in zip(gpus.indices, gpus.uuids, strict=True)}
    finally:
        gpus.close()
    uuid = _cuda_uuid_from_torch(ordinal)
    if uuid is None:
        visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
        if "CUDA_VISIBLE_DEVICES" in os.environ and ordinal >= len(visible):
            raise IreneError(f"cuda:{ordinal} not found (CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r})")
        entry = visible[ordinal] if visible else str(ordinal)
        if entry.isdigit():
            if int(entry) not in by_uuid.values():
                raise IreneError(f"cuda:{ordinal} is GPU {entry}, which NVML does not see ({len(by_uuid)} GPUs)")
            return (int(entry),)
        uuid = entry
    wanted = _normal_uuid(uuid)
    matches = [i for u, i in by_uuid.items() if u.startswith(wanted)]  # CUDA accepts a UUID prefix
    if len(matches) != 1:
        raise IreneError(f"cuda:{ordinal} has UUID {uuid}, which matches {len(matches)} of NVML's GPUs")
    return (matches[0],)


def hardware_info(gpu_indices: tuple[int, ...] | None = ()) -> dict[str, Any]:
    """``meta.hardware``: the CPU (model, logical CPUs) and the GPUs ``gpu_indices`` (None: all) —
    each GPU's NVML index, UUID, PCI bus id, name, driver and MIG mode; ``gpus_error`` says why
    GPUs are missing when NVML cannot be opened."""
    info: dict[str, Any] = {"cpu": {"model": _cpu_model(), "count": os.cpu_count() or 0}, "gpus": []}
    if gpu_indices == ():
        return info
    try:
        gpus = NvmlGpus(gpu_indices).open()
    except IreneError as exc:
        info["gpus_error"] = str(exc)
        return info
    try:
        info["gpus"] = gpus.describe_hardware()
    finally:
        gpus.close()
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
