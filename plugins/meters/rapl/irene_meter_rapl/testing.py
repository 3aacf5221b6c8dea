"""A simulated powercap tree for tests and demos: real files whose RAPL counters advance at known power.

    with PowercapTree(tmp_path, {"package-0": 20.0, "package-0/core": 12.0, "package-0/dram": 3.0}) as tree:
        meter = RaplMeter(root=str(tree.root))
        ...
        low, high = tree.counted_energy_j("package-0", m.t_begin, m.t_end)

Top-level labels become ``intel-rapl:N``, ``parent/name`` labels ``intel-rapl:N:M``.  A thread
rewrites every ``energy_uj`` each ``tick_s`` (atomically, as sysfs never shows a half value).
"""

from __future__ import annotations

import os
import time
from bisect import bisect_right
from collections.abc import Mapping
from pathlib import Path

from irene_core.periodic import PeriodicThread
from irene_core.step_profile import StepProfile

#: A typical Intel package's counter range (2^32 units of 61 µJ).
DEFAULT_RANGE_UJ = 262_143_328_850


class SimulatedZone:
    """One zone's files and its power history (piecewise constant)."""

    def __init__(self, path: Path, name: str, watts: float, range_uj: int, start_uj: int):
        self.path = path
        self.range_uj = range_uj
        self.start_uj = start_uj
        self.power = StepProfile(watts)
        self.updates: list[float] = []  # when the counter was rewritten
        self.mode = 0o444
        path.mkdir(parents=True)
        (path / "name").write_text(name + "\n")
        (path / "max_energy_range_uj").write_text(f"{range_uj}\n")

    def write(self) -> None:
        tmp = self.path / ".energy_uj.tmp"
        now = time.monotonic()
        tmp.write_text(f"{int(self.start_uj + 1e6 * self.power.integral(self.power.t0, now)) % self.range_uj}\n")
        os.chmod(tmp, self.mode)
        os.replace(tmp, self.path / "energy_uj")
        self.updates.append(now)

    def counter_times(self, t: float, slack: float) -> tuple[float, float]:
        """The earliest and latest update a read within ``slack`` of ``t`` can have seen (the latest
        update before ``t``, or the one before it while the file was being replaced)."""
        latest = max(0, bisect_right(self.updates, t + slack) - 1)
        earliest = max(0, bisect_right(self.updates, t - slack) - 2)
        return self.updates[earliest], self.updates[latest]


class PowercapTree:
    """A powercap directory with RAPL zones at known powers (W), advanced by a background thread."""

    def __init__(
        self,
        root: Path,
        powers: Mapping[str, float],
        *,
        range_uj: Mapping[str, int] | None = None,
        start_uj: Mapping[str, int] | None = None,
        tick_s: float = 0.002,
    ):
        self.root = Path(root)
        self.tick_s = tick_s
        self.zones: dict[str, SimulatedZone] = {}
        tops = [label for label in powers if "/" not in label]
        for label, watts in powers.items():
            parent, _, name = label.rpartition("/")
            if parent:
                top = tops.index(parent)
                sub = sum(1 for other in self.zones if other.startswith(parent + "/"))
                directory = self.root / f"intel-rapl:{top}:{sub}"
            else:
                directory = self.root / f"intel-rapl:{tops.index(label)}"
            self.zones[label] = SimulatedZone(
                directory,
                name or label,
                watts,
                (range_uj or {}).get(label, DEFAULT_RANGE_UJ),
                (start_uj or {}).get(label, 0),
            )
        self._write()
        self._thread: PeriodicThread | None = None

    def _write(self) -> None:
        for zone in self.zones.values():
            zone.write()

    def start(self) -> PowercapTree:
        self._thread = PeriodicThread(self._write, self.tick_s, "powercap-simulator").start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None

    def __enter__(self) -> PowercapTree:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_power(self, label: str, watts: float) -> float:
        """Change a zone's power from now on; returns the time of the change."""
        return self.zones[label].power.set(watts)

    def energy_j(self, label: str, begin: float, end: float) -> float:
        """The exact energy a zone spent between two ``time.monotonic()`` times."""
        return self.zones[label].power.integral(begin, end)

    def counted_energy_j(self, label: str, begin: float, end: float, slack: float = 0.002) -> tuple[float, float]:
        """The least and most energy a zone's counter can show between reads at ``begin`` and ``end``
        (± ``slack``): the counter moves only when the writer thread updates it."""
        zone = self.zones[label]
        (b_early, b_late), (e_early, e_late) = zone.counter_times(begin, slack), zone.counter_times(end, slack)
        return zone.power.integral(b_late, e_early), zone.power.integral(b_early, e_late)

    def make_unreadable(self, label: str) -> None:
        """Make a zone's ``energy_uj`` unreadable, like a kernel patched for CVE-2020-8694 for non-root."""
        zone = self.zones[label]
        zone.mode = 0o000
        os.chmod(zone.path / "energy_uj", zone.mode)
