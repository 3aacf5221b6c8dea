"""The lines emonPi firmwares print on the serial port, recognised line by line (auto-detected).

- ``170ms``: the IrEne paper's modified firmware, ``power1,<real power W × 100>`` about every 170 ms.
- ``classic``: stock firmware, ``OK <node> <24 bytes> (-<rssi>)`` every 5 s: a little-endian struct
  of signed 16-bit power1, power2, power1+2 (W), Vrms × 100, six temperatures × 10, u32 pulse count.
- ``continuous``: continuous-monitoring firmware, ``OK <node> <40 bytes>`` every ~10 s: u32 message
  number, power1, power2, power1+2, Vrms × 100, six temperatures × 100, u32 pulse1, u32 pulse2,
  s32 E1 Wh, s32 E2 Wh.
- ``keyvalue``: emonPi2 / emonTx4, ``MSG:1521,Vrms:239.87,P1:212,P2:0,...,E1:10432,...,pulse:0``
  (``V1`` instead of ``Vrms`` on some), every ~10 s.

Banners, ``>`` acknowledgements and ``OK`` packets of other node ids are not readings.
"""

from __future__ import annotations

import dataclasses
import re
import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class LineFormat:
    name: str
    description: str
    baud: int
    typical_interval_s: float


FORMATS: dict[str, LineFormat] = {
    f.name: f
    for f in (
        LineFormat("170ms", "IrEne's modified firmware: power1,<W×100>", 38400, 0.17),
        LineFormat("classic", "stock firmware: OK packet, 24-byte struct", 38400, 5.0),
        LineFormat("continuous", "continuous-monitoring firmware: OK packet, 40-byte struct", 115200, 10.0),
        LineFormat("keyvalue", "emonPi2 / emonTx4 key:value lines", 115200, 10.0),
    )
}

#: The packed payloads of ``OK`` packets, by byte length.
CLASSIC_STRUCT = struct.Struct("<4h6hI")  # power1, power2, power1+2, Vrms×100, temp×10 ×6, pulse
CONTINUOUS_STRUCT = struct.Struct("<I4h6hIIii")  # msg, p1, p2, p1+2, Vrms×100, temp×100 ×6, pulse1, pulse2, E1, E2

POWER_LINE = re.compile(r"^power(\d),(-?\d+)$")
OK_PACKET = re.compile(r"^OK\s+(\d+)((?:\s+\d+)+?)(?:\s+\(-?\d+\))?$")
KEY_POWER = re.compile(r"^P(\d+)$")


@dataclass(frozen=True)
class Reading:
    """One line's real power per CT channel (W) and, where the firmware sends it, Vrms."""

    format: str
    power_w: dict[int, float]
    vrms: float | None = None
    line: str = dataclasses.field(default="", compare=False)  # as received: named when implausible


def parse_line(line: str, node: int = 5) -> Reading | None:
    """The reading in ``line`` (any firmware's format), or None for anything else."""
    line = line.strip()
    reading = None
    if match := POWER_LINE.match(line):
        reading = Reading("170ms", {int(match.group(1)): int(match.group(2)) / 100.0})
    elif match := OK_PACKET.match(line):
        reading = _ok_packet(int(match.group(1)), match.group(2).split(), node)
    elif ":" in line and "," in line:
        reading = _key_values(line)
    return dataclasses.replace(reading, line=line) if reading is not None else None


def _ok_packet(packet_node: int, fields: list[str], node: int) -> Reading | None:
    values = [int(v) for v in fields]
    if packet_node != node or any(v > 255 for v in values):
        return None
    payload = bytes(values)
    if len(payload) == CLASSIC_STRUCT.size:
        p1, p2, _, vrms, *_ = CLASSIC_STRUCT.unpack(payload)
        return Reading("classic", {1: float(p1), 2: float(p2)}, vrms / 100.0)
    if len(payload) == CONTINUOUS_STRUCT.size:
        _, p1, p2, _, vrms, *_ = CONTINUOUS_STRUCT.unpack(payload)
        return Reading("continuous", {1: float(p1), 2: float(p2)}, vrms / 100.0)
    return None


def _key_values(line: str) -> Reading | None:
    values: dict[str, float] = {}
    for item in line.split(","):
        key, sep, value = item.partition(":")
        try:
            values[key.strip()] = float(value)
        except ValueError:
            return None
        if not sep:
            return None
    powers = {int(m.group(1)): v for k, v in values.items() if (m := KEY_POWER.match(k))}
    if not powers:
        return None
    return Reading("keyvalue", powers, values.get("Vrms", values.get("V1")))
