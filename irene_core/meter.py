"""The meter contract (kind ``meter``): named measurement windows giving energy."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

from pydantic import BaseModel, Field


class Measurement(BaseModel):
    """Energy measured over one window."""

    meter: str
    energy_j: float
    duration_s: float
    mean_power_w: float
    samples: int
    domains: dict[str, float] = Field(default_factory=dict, description="J per domain, where the meter has domains")
    warnings: list[str] = Field(default_factory=list)
    valid: bool = True


class Meter(ABC):
    """An opened energy meter.  Options arrive as strings (``--option key=value``)."""

    kind: ClassVar[str] = "meter"
    name: ClassVar[str]
    description: ClassVar[str] = ""

    @abstractmethod
    def available(self) -> tuple[bool, str]:
        """(usable here?, reason when not)."""

    @abstractmethod
    def begin(self, window: str) -> None:
        """Start the named window."""

    @abstractmethod
    def end(self, window: str) -> Measurement:
        """End the named window and return its measurement."""

    def close(self) -> None:
        """Release the device (serial port, NVML handle...)."""


MeterFactory = type[Meter] | Callable[..., Meter]
