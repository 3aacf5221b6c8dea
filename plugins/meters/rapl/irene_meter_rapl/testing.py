"""A simulated powercap tree for tests and demos: real files whose RAPL counters advance at known power.

    with PowercapTree(tmp_path, {"package-0": 20.0, "package-0/core": 12.0, "package-0/dram": 3.0}) as tree:
        meter = RaplMeter(root=str(tree.root))
        ...
        low, high = tree.counted_energy_j("package-0", m.t_begin, m.t_end)

Top-level labels become ``intel-rapl:N``, ``parent/name`` labels ``intel-rapl:N:M``.  Like the
hardware, a separate process rewrites every ``energy_uj`` each ``tick_s`` (atomically, as sysfs never
shows a half value) whatever the measured process does: a thread would wait for the measured
process's GIL and let the counters go stale.  ``time.monotonic()`` is system-wide, so both processes
share one clock.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import time
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from irene_core.plugin_api import StepProfile

#: A typical Intel package's counter range (2^32 units of 61 µJ).
DEFAULT_RANGE_UJ = 262_143_328_850
#: Update times kept per zone by default (for :meth:`PowercapTree.counted_energy_j`).
RING = 1 << 16


@dataclass
class SimulatedZone:
    """One zone's directory, counter range and start, power history and file mode."""

    path: Path
    range_uj: int
    start_uj: int
    power: StepProfile
    mode: int = 0o444
    index: int = 0
    initial: list[float] = field(default_factory=list)


def write_counter(zone: SimulatedZone, now: float) -> None:
    """Write the zone's counter as it stands at ``now``, replacing the file atomically."""
    value = int(zone.start_uj + 1e6 * zone.power.integral(zone.power.t0, now)) % zone.range_uj
    tmp = zone.path / ".energy_uj.tmp"
    tmp.write_text(f"{value}\n")
    os.chmod(tmp, zone.mode)
    os.replace(tmp, zone.path / "energy_uj")


def advance_counters(
    zones: list[SimulatedZone], tick_s: float, changes: Connection, updates: Any, counts: Any, stop: Any,
    history: int = RING,
) -> None:
    """The simulator process: apply power and mode changes, rewrite every counter each tick."""
    with contextlib.suppress(OSError):  # like the kernel, keep ticking when the measured work is busy
        os.nice(-10)
    while not stop.is_set():
        while changes.poll():
            kind, index, when, value = changes.recv()
            if kind == "power":
                zones[index].power.set(value, at=when)
            else:
                zones[index].mode = int(value)
        for zone in zones:
            now = time.monotonic()
            write_counter(zone, now)
            updates[zone.index * history + counts[zone.index] % history] = now
            counts[zone.index] += 1
        time.sleep(tick_s)


class PowercapTree:
    """A powercap directory with RAPL zones at known powers (W), advanced by a simulator process."""

    def __init__(
        self,
        root: Path,
        powers: Mapping[str, float],
        *,
        range_uj: Mapping[str, int] | None = None,
        start_uj: Mapping[str, int] | None = None,
        tick_s: float = 0.002,
        history: int = RING,
    ):
        """``history``: update times kept per zone; :meth:`counted_energy_j` looks back over the last
        ``history`` ticks (at least ``history × tick_s`` seconds)."""
        self.root = Path(root)
        self.tick_s = tick_s
        self.history = history
        self.zones: dict[str, SimulatedZone] = {}
        tops = [label for label in powers if "/" not in label]
        for label, watts in powers.items():
            parent, _, name = label.rpartition("/")
            if parent:
                sub = sum(1 for other in self.zones if other.startswith(parent + "/"))
                directory = self.root / f"intel-rapl:{tops.index(parent)}:{sub}"
            else:
                directory = self.root / f"intel-rapl:{tops.index(label)}"
            zone = SimulatedZone(
                directory,
                (range_uj or {}).get(label, DEFAULT_RANGE_UJ),
                (start_uj or {}).get(label, 0),
                StepProfile(watts),
                index=len(self.zones),
            )
            directory.mkdir(parents=True)
            (directory / "name").write_text((name or label) + "\n")
            (directory / "max_energy_range_uj").write_text(f"{zone.range_uj}\n")
            write_counter(zone, zone.power.t0)
            zone.initial.append(zone.power.t0)
            self.zones[label] = zone
        self._context = multiprocessing.get_context("spawn")
        self._receiver, self._changes = self._context.Pipe(duplex=False)
        self._updates = self._context.RawArray("d", history * len(self.zones))
        self._counts = self._context.RawArray("q", len(self.zones))
        self._stop = self._context.Event()
        self._process: multiprocessing.process.BaseProcess | None = None

    def start(self) -> PowercapTree:
        """Start the simulator process; returns once every counter has been advanced once."""
        self._process = self._context.Process(
            target=advance_counters,
            args=(list(self.zones.values()), self.tick_s, self._receiver, self._updates, self._counts, self._stop,
                  self.history),
            name="powercap-simulator",
            daemon=True,
        )
        self._process.start()
        deadline = time.monotonic() + 60
        while min(self._counts) == 0:
            if not self._process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the powercap simulator process did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._stop.set()
            self._process.join(10)
            self._process = None

    def __enter__(self) -> PowercapTree:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_power(self, label: str, watts: float) -> float:
        """Change a zone's power from now on; returns the time of the change."""
        zone = self.zones[label]
        when = zone.power.set(watts)
        self._changes.send(("power", zone.index, when, watts))
        return when

    def energy_j(self, label: str, begin: float, end: float) -> float:
        """The exact energy a zone spent between two ``time.monotonic()`` times."""
        return self.zones[label].power.integral(begin, end)

    def _update_times(self, zone: SimulatedZone) -> tuple[list[float], bool]:
        """The zone's update times, oldest first, and whether older ones are gone.  The simulator writes
        a slot and then counts it, so a slot may change while the ring is copied: of one copy between two
        reads of the count, only the updates counted before it that no later write can have reached are
        kept (in a row, the newest last; none when the whole ring was rewritten meanwhile)."""
        n, start = self.history, zone.index * self.history
        count = self._counts[zone.index]
        ring = self._updates[start : start + min(count, n)]  # only the slots written: copies cost
        first = max(0, self._counts[zone.index] - n + 1)
        return zone.initial + [ring[u % n] for u in range(first, count)], first > 0

    def counted_energy_j(self, label: str, begin: float, end: float, slack: float = 0.002) -> tuple[float, float]:
        """The least and most energy a zone's counter can show between reads at ``begin`` and ``end``
        (± ``slack``): the latest update before a read, or the one before it while the file was replaced."""
        zone = self.zones[label]
        updates, dropped = self._update_times(zone)
        oldest = updates[len(zone.initial)] if len(updates) > len(zone.initial) else math.inf
        if dropped and begin - slack <= oldest:
            raise ValueError(f"zone {label!r}: a read at {begin:.3f} s predates the {self.history} kept updates "
                             f"(raise history=)")

        def seen(t: float) -> tuple[float, float]:
            latest = max(0, bisect_right(updates, t + slack) - 1)
            return updates[max(0, bisect_right(updates, t - slack) - 2)], updates[latest]

        (b_early, b_late), (e_early, e_late) = seen(begin), seen(end)
        return zone.power.integral(b_late, e_early), zone.power.integral(b_early, e_late)

    def make_unreadable(self, label: str) -> None:
        """Make a zone's ``energy_uj`` unreadable, like a kernel patched for CVE-2020-8694 for non-root."""
        zone = self.zones[label]
        zone.mode = 0o000
        os.chmod(zone.path / "energy_uj", zone.mode)
        self._changes.send(("mode", zone.index, 0.0, zone.mode))
