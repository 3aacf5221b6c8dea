"""System-wide CPU and memory use from /proc (``proc`` is a parameter so tests can use a temp dir)."""

from __future__ import annotations

import os
from pathlib import Path

from irene_core import IreneError


def _read_head(path: Path, size: int) -> bytes:
    """The first ``size`` bytes of a /proc file (os-level: this runs every few milliseconds)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise IreneError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


class ProcReader:
    """Reads the aggregate CPU time counters of /proc/stat and the memory use of /proc/meminfo."""

    def __init__(self, proc: str | os.PathLike[str] = "/proc"):
        self.stat = Path(proc) / "stat"
        self.meminfo = Path(proc) / "meminfo"

    def cpu_jiffies(self) -> tuple[int, int]:
        """(busy, total) clock ticks of all CPUs since boot; idle and iowait are not busy."""
        line = _read_head(self.stat, 256).split(b"\n", 1)[0].split()
        if not line or line[0] != b"cpu" or len(line) < 9:
            raise IreneError(f"{self.stat}: the first line is not the aggregate 'cpu' line")
        user, nice, system, idle, iowait, irq, softirq, steal = map(int, line[1:9])
        total = user + nice + system + idle + iowait + irq + softirq + steal
        return total - idle - iowait, total

    def mem_percent(self) -> float:
        """Memory in use: 100 × (MemTotal − MemAvailable) / MemTotal."""
        fields = {}
        for row in _read_head(self.meminfo, 512).split(b"\n")[:8]:
            key, _, rest = row.partition(b":")
            if rest:
                fields[key] = int(rest.split()[0])
        total, available = fields.get(b"MemTotal"), fields.get(b"MemAvailable", fields.get(b"MemFree"))
        if not total or available is None:
            raise IreneError(f"{self.meminfo}: no MemTotal/MemAvailable")
        return 100.0 * (total - available) / total
