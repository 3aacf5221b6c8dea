"""A /proc in a temp dir whose CPU counters and memory use a thread advances at known values."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from irene_core.metering.periodic import PeriodicThread
from irene_core.metering.step_profile import StepProfile

TICKS_PER_S = 100  # USER_HZ


class FakeProc:
    """``stat`` and ``meminfo`` files for ``cpus`` CPUs at a busy fraction and memory % (``StepProfile``s)."""

    def __init__(self, root: Path, cpus: int = 8, busy: float = 0.25, mem_percent: float = 40.0):
        self.root = root
        self.cpus = cpus
        self.busy = StepProfile(busy)
        self.mem = StepProfile(mem_percent)
        self._write()
        self._thread = PeriodicThread(self._write, 0.002, "fake-proc").start()

    def _write(self) -> None:
        now = time.monotonic()
        total = int(TICKS_PER_S * self.cpus * (now - self.busy.t0))
        busy = int(TICKS_PER_S * self.cpus * self.busy.integral(self.busy.t0, now))
        user, system = busy * 3 // 4, busy - busy * 3 // 4
        idle, iowait = (total - busy) * 9 // 10, (total - busy) - (total - busy) * 9 // 10
        stat = f"cpu  {user} 0 {system} {idle} {iowait} 0 0 0 0 0\ncpu0 1 0 1 1 0 0 0 0 0 0\nintr 1 2 3\n"
        mem_total = 16_000_000
        available = int(mem_total * (1 - self.mem.at(now) / 100))
        meminfo = f"MemTotal:       {mem_total} kB\nMemFree:         1000 kB\nMemAvailable:   {available} kB\n"
        for name, text in (("stat", stat), ("meminfo", meminfo)):
            tmp = self.root / f".{name}.tmp"
            tmp.write_text(text)
            os.replace(tmp, self.root / name)

    def stop(self) -> None:
        self._thread.stop()


@pytest.fixture
def fake_proc(tmp_path):
    proc = FakeProc(tmp_path)
    yield proc
    proc.stop()
