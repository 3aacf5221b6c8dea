"""An emonPi emulator on a pseudo-terminal, for tests and demos without the hardware.

    with EmonPiEmulator("170ms", power_w=120.0) as emulator:
        meter = EmonPiMeter(port=emulator.port)
        ...
        expected = emulator.energy_j(m.t_begin, m.t_end)

Each line reports, like the firmware, the mean real power since the previous line.  The port is a
real tty (``os.openpty``) that the meter opens through pyserial.
"""

from __future__ import annotations

import contextlib
import os
import time
import tty

from irene_core.plugin_api import PeriodicThread, StepProfile
from irene_meter_emonpi.formats import CLASSIC_STRUCT, CONTINUOUS_STRUCT, FORMATS

BANNER = ["", "emonPi V2.9.4 (emulated)", "OpenEnergyMonitor.org", "> 5i", "> 57b"]


def format_line(fmt: str, p1: float, p2: float, count: int, node: int = 5, vrms: float = 240.34) -> str:
    """One line of firmware ``fmt`` reporting real powers ``p1``, ``p2`` (W)."""
    if fmt == "170ms":
        return f"power1,{round(p1 * 100)}"
    w1, w2, v = round(p1), round(p2), round(vrms * 100)
    if fmt == "classic":
        payload = CLASSIC_STRUCT.pack(w1, w2, w1 + w2, v, *[215] * 6, count)
    elif fmt == "continuous":
        payload = CONTINUOUS_STRUCT.pack(count, w1, w2, w1 + w2, v, *[2150] * 6, count, 0, count // 10, 0)
    else:
        return f"MSG:{count},Vrms:{vrms:.2f},P1:{w1},P2:{w2},E1:{count // 10},E2:0,pulse:0"
    return f"OK {node} {' '.join(map(str, payload))} (-{count % 80})"


class EmonPiEmulator:
    """Writes firmware ``fmt``'s lines every ``interval_s`` on a pty, with banners and other nodes' packets."""

    def __init__(
        self,
        fmt: str = "170ms",
        *,
        power_w: float = 100.0,
        power2_w: float = 0.0,
        interval_s: float | None = None,
        node: int = 5,
        garbage: bool = False,
    ):
        self.fmt = fmt
        self.node = node
        self.garbage = garbage
        self.interval_s = interval_s or FORMATS[fmt].typical_interval_s
        self.power1 = StepProfile(power_w)
        self.power2 = StepProfile(power2_w)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # a serial line: no echo, no line editing
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        self._count = 0
        self._last = time.monotonic()
        self._thread: PeriodicThread | None = None

    def _write(self, line: str | bytes) -> None:
        data = line if isinstance(line, bytes) else (line + "\r\n").encode()
        with contextlib.suppress(BlockingIOError):  # nobody reads the port: the line is lost, as on a real wire
            os.write(self._master, data)

    def _tick(self) -> None:
        now = time.monotonic()
        span = now - self._last
        p1 = self.power1.integral(self._last, now) / span
        p2 = self.power2.integral(self._last, now) / span
        self._last = now
        self._count += 1
        if self.garbage:
            self._write(bytes(range(128, 160)) + b"\n")
            return
        if self._count % 7 == 0:
            self._write("> 0s")  # an acknowledgement
        if self._count % 5 == 0 and self.fmt in ("classic", "continuous"):
            self._write(format_line(self.fmt, 55.0, 0.0, self._count, node=self.node + 1))  # another node
        self._write(format_line(self.fmt, p1, p2, self._count, node=self.node))

    def start(self) -> EmonPiEmulator:
        for line in BANNER:
            self._write(line)
        self._last = time.monotonic()
        self._thread = PeriodicThread(self._tick, self.interval_s, f"emonpi-emulator-{self.fmt}").start()
        return self

    def set_power(self, watts: float, channel: int = 1) -> float:
        """Change a channel's real power from now on; returns the time of the change."""
        return (self.power1 if channel == 1 else self.power2).set(watts)

    def energy_j(self, begin: float, end: float, channel: int = 1) -> float:
        """The exact energy a channel drew between two ``time.monotonic()`` times."""
        return (self.power1 if channel == 1 else self.power2).integral(begin, end)

    def disconnect(self) -> None:
        """Pull the cable: stop writing and close the pty, so the reader sees the port vanish."""
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1

    def __enter__(self) -> EmonPiEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.disconnect()
