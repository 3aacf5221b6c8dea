"""The meter contract (kind ``meter``): named measurement windows giving energy.

Every meter is opened from string options (``--option key=value``), says whether it is usable here
(:meth:`Meter.available`), and measures named windows that may nest and overlap::

    meter = open_meter("rapl", {"root": "/sys/class/powercap"})
    meter.begin("encoder.layer.0")
    ...                                # the work to measure
    m = meter.end("encoder.layer.0")   # Measurement: energy_j, duration_s, mean_power_w, ...

or ``with meter.window("encoder.layer.0") as w: ...`` and then ``w.measurement``.  Constructing a
meter touches no hardware; the device is opened at the first ``begin``.  All timestamps are
``time.monotonic()`` seconds: the one clock shared by meters, the resource sampler and replay.

A concrete meter declares its :attr:`Meter.options`, answers :meth:`Meter.available`, and opens a
:class:`WindowEngine` (:mod:`irene_core.metering.counter_engine` for energy counters read at window edges,
:mod:`irene_core.metering.sampled_engine` for power samples integrated over the window).
"""

from __future__ import annotations

import contextlib
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, Field

from irene_core.errors import IreneError

#: A window shorter than this many times the meter's resolution gets a warning.
RESOLUTION_FACTOR = 10


class Measurement(BaseModel):
    """Energy measured over one window."""

    meter: str
    energy_j: float
    duration_s: float
    mean_power_w: float
    samples: int = Field(description="counter reads or power samples the energy comes from")
    domains: dict[str, float] = Field(default_factory=dict, description="J per domain, where the meter has domains")
    warnings: list[str] = Field(default_factory=list)
    valid: bool = True
    t_begin: float = Field(0.0, description="window start, time.monotonic() s")
    t_end: float = Field(0.0, description="window end, time.monotonic() s")


class MeterError(IreneError):
    """A window could not be measured (implausible or failed reading, no data, device gone);
    ``measurement``, when the window got that far, is marked ``valid=False``."""

    def __init__(self, message: str, measurement: Measurement | None = None):
        super().__init__(message)
        self.measurement = measurement


@dataclass(frozen=True)
class Mark:
    """One edge of a window: the time and, for counter meters, the energy totals then and how many
    faults (failed or implausible reads) the engine had seen before and after this edge's read."""

    t: float
    totals: dict[str, float] = field(default_factory=dict)
    reads: int = 0
    faults_before: int = 0
    faults_after: int = 0


class WindowEngine(Protocol):
    """How an opened meter turns two marks into a measurement."""

    def check(self) -> None:
        """Raise :class:`MeterError` when the device stopped for good (called before a window begins)."""

    def mark(self) -> Mark: ...

    def measure(self, begin: Mark, end: Mark) -> Measurement: ...

    def forget_before(self, t: float) -> None:
        """No open window starts before ``t``: older data may be dropped."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class MeterOption:
    """One ``--option key=value`` a meter accepts; ``parse`` raises ValueError on a bad value."""

    default: str
    help: str
    parse: Callable[[str], Any] = str


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise ValueError("expected a positive number")
    return value


def positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) == 0:
        raise ValueError("expected a positive integer")
    return int(text)


def bounded(cast: Callable[[str], float], low: float, high: float, unit: str = "") -> Callable[[str], Any]:
    """A parser for a number from ``low`` to ``high`` (``cast`` is int or float)."""

    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            value = math.nan
        if not low <= value <= high:
            raise ValueError(f"expected {low:g} to {high:g}{unit}")
        return value

    return parse


def choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return text

    return parse


def implausible_power(watts: float, ceiling: float) -> str | None:
    """Why a power reading cannot be right (negative, not finite, above ``ceiling``), or None."""
    if not math.isfinite(watts):
        return f"{watts} W is not a finite power"
    if watts < 0:
        return f"{watts:.6g} W is negative"
    if watts > ceiling:
        return f"{watts:.6g} W is above the {ceiling:.6g} W ceiling (max_power_w)"
    return None


def resolution_warning(duration_s: float, resolution_s: float, what: str) -> str | None:
    """A warning when the window is too short for the meter's time resolution, else None."""
    if duration_s >= RESOLUTION_FACTOR * resolution_s:
        return None
    bound = 100 * 2 * resolution_s / duration_s if duration_s > 0 else float("inf")
    return (
        f"the {what} ({resolution_s:.3g} s) is coarse for a {duration_s:.3g} s window: the edges may be off "
        f"by up to {bound:.0f} % of the window's energy; use windows of at least "
        f"{RESOLUTION_FACTOR * resolution_s:.3g} s"
    )


@dataclass
class Window:
    """A window opened by :meth:`Meter.window`; ``measurement`` is set when the block ends."""

    name: str
    measurement: Measurement | None = None


class Meter(ABC):
    """An energy meter opened with string options.  Subclasses implement ``available`` and ``_open``."""

    kind: ClassVar[str] = "meter"
    name: ClassVar[str]
    description: ClassVar[str] = ""
    options: ClassVar[Mapping[str, MeterOption]] = {}
    #: What one reading covers, so sweeps never overlap two measurements on it: ``host`` (the whole
    #: machine: RAPL, a wall meter) or ``gpu`` (one GPU: NVML). Undeclared: ``host``, the safe side.
    scope: ClassVar[Literal["host", "gpu"]] = "host"

    def __init__(self, **options: str) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            raise IreneError(f"meter '{self.name}': unknown option '{unknown[0]}' (options: {known})")
        self.config: dict[str, Any] = {}
        for key, spec in self.options.items():
            raw = str(options.get(key, spec.default))
            try:
                self.config[key] = spec.parse(raw)
            except ValueError as exc:
                raise IreneError(f"meter '{self.name}': option {key}={raw!r}: {exc}") from None
        self._engine: WindowEngine | None = None
        self._marks: dict[str, Mark] = {}

    @abstractmethod
    def available(self) -> tuple[bool, str]:
        """(usable here?, why not — or what will be measured when it is)."""

    @abstractmethod
    def _open(self) -> WindowEngine:
        """Open the device; raise :class:`IreneError` saying why when it cannot be used (the meter's
        name is prefixed to the message)."""

    def begin(self, window: str) -> None:
        """Start the named window (windows nest and overlap freely)."""
        if window in self._marks:
            raise IreneError(f"meter '{self.name}': window '{window}' is already open")
        if self._engine is None:
            try:
                self._engine = self._open()
            except IreneError as exc:
                raise IreneError(f"meter '{self.name}': {exc}") from None
        self._engine.check()
        self._marks[window] = self._engine.mark()

    def end(self, window: str) -> Measurement:
        """End the named window and return its measurement (:class:`MeterError` when it is invalid)."""
        if window not in self._marks or self._engine is None:
            raise IreneError(f"meter '{self.name}': no open window '{window}'")
        begin = self._marks.pop(window)
        try:
            return self._engine.measure(begin, self._engine.mark())
        except IreneError as exc:
            measurement = exc.measurement if isinstance(exc, MeterError) else None
            raise MeterError(f"meter '{self.name}', window '{window}': {exc}", measurement) from None
        finally:
            self._forget()

    def discard(self, window: str) -> None:
        """Drop an open window without measuring it."""
        self._marks.pop(window, None)
        self._forget()

    def _forget(self) -> None:
        if self._engine is not None:
            self._engine.forget_before(min((m.t for m in self._marks.values()), default=time.monotonic()))

    @contextlib.contextmanager
    def window(self, name: str) -> Iterator[Window]:
        """``with meter.window(name) as w:`` measures the block; ``w.measurement`` afterwards."""
        handle = Window(name)
        self.begin(name)
        try:
            yield handle
        except BaseException:
            self.discard(name)
            raise
        handle.measurement = self.end(name)

    def measure(self, seconds: float, window: str = "idle") -> Measurement:
        """Measure ``seconds`` of whatever the machine does now (idle power with nothing running)."""
        self.begin(window)
        time.sleep(seconds)
        return self.end(window)

    def close(self) -> None:
        """Release the device (serial port, NVML, threads); open windows are dropped."""
        self._marks.clear()
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


MeterFactory = type[Meter] | Callable[..., Meter]


def open_meter(name: str, options: Mapping[str, str] | None = None) -> Meter:
    """The installed meter ``name`` opened with ``options`` (unknown names get the install hint)."""
    from irene_core.plugins import get_registry

    factory: MeterFactory = get_registry().get("meter", name)
    return factory(**dict(options or {}))


def parse_option_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """``["port=/dev/ttyUSB0", "baud=38400"]`` → a dict; a pair without ``=`` is an error."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise IreneError(f"--meter-option {pair!r}: expected key=value")
        options[key.strip()] = value.strip()
    return options
