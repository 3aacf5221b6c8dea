"""The emonPi meter: real power lines read from the serial port, timestamped on arrival, integrated."""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Mapping
from typing import ClassVar

from irene_core import IreneError, Meter, MeterOption
from irene_core.plugin_api import SampledEngine, bounded, positive_float, positive_int
from irene_meter_emonpi.formats import FORMATS, Reading, parse_line

DIALOUT_HINT = "add your user to the 'dialout' group (sudo usermod -aG dialout $USER, then log in again)"


def parse_channels(text: str) -> tuple[int, ...]:
    """``1`` → (1,); ``1+2`` → (1, 2)."""
    try:
        channels = tuple(int(part) for part in text.split("+"))
    except ValueError:
        raise ValueError("expected a CT channel such as 1, or a sum such as 1+2") from None
    if min(channels) < 1 or len(set(channels)) != len(channels):
        raise ValueError("expected distinct CT channels numbered from 1, such as 1 or 1+2")
    return channels


class EmonPiMeter(Meter):
    """An emonPi (or emonTx) energy monitor on a serial port: the IrEne paper's wall-power ground truth."""

    name = "emonpi"
    scope = "host"
    description = "emonPi energy monitor on a serial port (wall power; the IrEne paper's ground truth)"
    options: ClassVar[Mapping[str, MeterOption]] = {
        "port": MeterOption(
            "/dev/ttyAMA0", "serial port: /dev/ttyAMA0 on the emonPi's Raspberry Pi, /dev/ttyUSB0 over USB"
        ),
        "baud": MeterOption(
            "38400",
            "baud rate: 38400 (170 ms and classic firmwares) or 115200 (continuous, emonPi2/emonTx4)",
            positive_int,
        ),
        "channel": MeterOption("1", "CT channel to integrate, or a sum such as 1+2", parse_channels),
        "node": MeterOption("5", "node id of the OK packets to read (other nodes are ignored)", bounded(int, 0, 31)),
        "timeout": MeterOption("15", "seconds without power data before the meter fails", positive_float),
        "max_power_w": MeterOption(
            "4000", "ceiling in W per channel; a reading above it (or negative) is an error", positive_float
        ),
    }

    def __init__(self, **options: str) -> None:
        super().__init__(**options)
        self.format: str | None = None  # the firmware format detected on the port
        self._serial = None
        self._reader: threading.Thread | None = None
        self._closing = threading.Event()
        self._ignored: list[str] = []
        self._garbled = 0

    @property
    def port(self) -> str:
        return self.config["port"]

    def _port_problem(self, exc: OSError | None = None) -> str | None:
        code = exc.errno if exc is not None else None
        if code == errno.ENOENT or (exc is None and not os.path.exists(self.port)):
            return f"serial port {self.port} not found (is the emonPi connected? choose it with --option port=...)"
        if code in (errno.EACCES, errno.EPERM) or (exc is None and not os.access(self.port, os.R_OK | os.W_OK)):
            return f"permission denied on serial port {self.port}: {DIALOUT_HINT}"
        if code == errno.EBUSY:
            return f"serial port {self.port} is busy: another program holds it (emonhub? sudo systemctl stop emonhub)"
        return f"cannot open serial port {self.port}: {exc}" if exc is not None else None

    def available(self) -> tuple[bool, str]:
        problem = self._port_problem()
        if problem:
            return False, problem
        channels = "+".join(f"power{c}" for c in self.config["channel"])
        baud = self.config["baud"]
        return True, f"serial port {self.port} at {baud} baud, {channels} (data is checked when a window begins)"

    def _open(self) -> SampledEngine:
        import serial

        try:
            self._serial = serial.Serial(self.port, self.config["baud"], timeout=0.2)
        except serial.SerialException as exc:
            raise IreneError(self._port_problem(exc)) from None
        channels = self.config["channel"]
        engine = SampledEngine(
            self.name,
            [f"power{c}" for c in channels],
            nominal_interval_s=FORMATS["170ms"].typical_interval_s,
            timeout_s=self.config["timeout"],
            max_power_w=[self.config["max_power_w"]] * len(channels),
            on_close=self._close_port,
        )
        self._closing.clear()
        self._reader = threading.Thread(
            target=self._read_lines, args=(engine,), name="irene-emonpi-reader", daemon=True
        )
        self._reader.start()
        if not engine.wait_for(float("-inf"), self.config["timeout"]):
            reason = engine.failure or self._no_data_reason()
            engine.close()
            raise IreneError(reason)
        return engine

    def _no_data_reason(self) -> str:
        reason = f"no power data from {self.port} within {self.config['timeout']:g} s"
        if self._garbled:
            reason += (
                f" ({self._garbled} lines were not text: is the baud rate right? 38400 for the 170 ms and classic "
                f"firmwares, --option baud=115200 for the continuous-monitoring and emonPi2 ones)"
            )
        elif self._ignored:
            node, example = self.config["node"], self._ignored[-1]
            reason += f" ({len(self._ignored)} lines were not readings of node {node}, e.g. {example!r})"
        return reason

    def _read_lines(self, engine: SampledEngine) -> None:
        """The reader thread: timestamp each chunk on arrival, feed its newest reading to the engine."""
        import serial

        pending = b""
        while not self._closing.is_set():
            try:
                chunk = self._serial.read(self._serial.in_waiting or 1)
            except (serial.SerialException, OSError) as exc:
                if not self._closing.is_set():
                    engine.fail(f"serial port {self.port} disconnected ({exc})")
                return
            if not chunk:
                continue
            arrived = time.monotonic()
            *lines, pending = (pending + chunk).split(b"\n")
            readings = [r for r in map(self._decode, lines) if r is not None]
            if readings and not self._record(engine, arrived, readings[-1]):
                return

    def _decode(self, raw: bytes) -> Reading | None:
        try:
            text = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            self._garbled += 1
            return None
        reading = parse_line(text, self.config["node"])
        if reading is None and text:
            self._ignored = [*self._ignored[-9:], text]
        return reading

    def _record(self, engine: SampledEngine, arrived: float, reading: Reading) -> bool:
        channels = self.config["channel"]
        missing = [c for c in channels if c not in reading.power_w]
        if missing:
            engine.fail(
                f"the {FORMATS[reading.format].description} lines carry no power{missing[0]} "
                f"(channels: {', '.join(map(str, sorted(reading.power_w)))})"
            )
            return False
        if self.format != reading.format:
            self.format = reading.format
            engine.nominal_interval_s = FORMATS[reading.format].typical_interval_s
        engine.add(arrived, [reading.power_w[c] for c in channels], f"serial line {reading.line!r} on {self.port}")
        return True

    def _close_port(self) -> None:
        self._closing.set()
        if self._serial is not None:
            self._serial.cancel_read()
            if self._reader is not None:
                self._reader.join()
            self._serial.close()
            self._serial = None
