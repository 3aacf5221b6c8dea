"""RAPL zones of the Linux powercap tree, and which of them to sum without double counting.

``<root>/intel-rapl:N`` are the top-level zones (``package-N``, or ``psys``, the whole platform),
``<root>/intel-rapl:N:M`` their sub-zones (``core``, ``uncore``, ``dram``); ``intel-rapl-mmio:N``
repeats a package through MMIO and is used only when the MSR zone is missing.  AMD CPUs appear
through the same driver (kernel 5.8+).  Nesting: psys ⊇ package ⊇ core, uncore; DRAM is outside the
package.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from irene_core import IreneError

ZONE_DIR = re.compile(r"^(intel-rapl(?:-mmio)?):(\d+)(?::(\d+))?$")


@dataclass(frozen=True)
class Zone:
    """One RAPL domain: its directory, ``name`` file, label (``package-0/dram``) and parent label."""

    path: Path
    name: str
    label: str
    parent: str | None

    @property
    def kind(self) -> str:
        """package, psys, core, uncore or dram."""
        return self.name.split("-", 1)[0]

    @property
    def energy_file(self) -> Path:
        return self.path / "energy_uj"

    def read_energy_uj(self) -> int:
        return read_counter(str(self.energy_file))

    def max_energy_range_uj(self) -> int | None:
        path = self.path / "max_energy_range_uj"
        return int(read_attribute(path)) if path.exists() else None


def read_counter(path: str) -> int:
    """An ``energy_uj`` counter (µJ), read os-level: it is read at every window edge."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            text = os.read(fd, 32)
        finally:
            os.close(fd)
    except PermissionError:
        raise IreneError(permission_hint(Path(path))) from None
    except OSError as exc:
        raise IreneError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return int(text)
    except ValueError:
        raise IreneError(f"{path} holds {text[:20]!r}, not a counter") from None


def read_attribute(path: Path) -> str:
    """A sysfs attribute's text; a permission error explains the CVE-2020-8694 restriction."""
    try:
        return path.read_text().strip()
    except PermissionError:
        raise IreneError(permission_hint(path)) from None
    except OSError as exc:
        raise IreneError(f"cannot read {path}: {exc.strerror or exc}") from None


def permission_hint(path: Path) -> str:
    zones = path.parent.parent
    return (
        f"cannot read {path}: permission denied. Since the fix for CVE-2020-8694 (Platypus, Linux 5.10 "
        f"and backports) RAPL energy counters are readable by root only: run as root, or grant read access "
        f"with 'sudo chmod a+r {zones}/intel-rapl:*/energy_uj {zones}/intel-rapl:*:*/energy_uj' (until "
        f"reboot; docs/meters.md shows a udev rule that makes it permanent)"
    )


def discover(root: Path) -> list[Zone]:
    """Every RAPL zone under ``root`` that has an energy counter, MSR zones before MMIO ones."""
    found: dict[tuple[str, int, int | None], Path] = {}
    if root.is_dir():
        for entry in root.iterdir():
            match = ZONE_DIR.match(entry.name)
            if match and (entry / "energy_uj").exists():
                driver, top, sub = match.groups()
                found[(driver, int(top), int(sub) if sub is not None else None)] = entry
    names = {key: read_attribute(path / "name") for key, path in found.items()}
    zones: dict[str, Zone] = {}
    for key in sorted(found, key=lambda k: (k[0] != "intel-rapl", k[1], -1 if k[2] is None else k[2])):
        driver, top, sub = key
        parent = None if sub is None else names.get((driver, top, None))
        if sub is not None and parent is None:
            continue  # a sub-zone whose package has no counter: nothing to attach it to
        label = names[key] if parent is None else f"{parent}/{names[key]}"
        zones.setdefault(label, Zone(found[key], names[key], label, parent))
    return list(zones.values())


def default_summed(zones: list[Zone]) -> list[str]:
    """psys when the platform has it (it contains everything else), else packages plus DRAM."""
    psys = [z.label for z in zones if z.kind == "psys"]
    if psys:
        return psys
    return [z.label for z in zones if z.parent is None or z.kind == "dram"]


def check_summed(zones: list[Zone], labels: list[str]) -> None:
    """Refuse unknown labels and any pair that nests (their sum would count energy twice)."""
    by_label = {z.label: z for z in zones}
    for label in labels:
        if label not in by_label:
            raise IreneError(f"option domains: no zone '{label}' (zones: {', '.join(by_label)})")
    chosen = [by_label[label] for label in labels]
    for zone in chosen:
        for other in chosen:
            if zone.parent == other.label and zone.kind != "dram":
                raise IreneError(f"option domains: {zone.label} is inside {other.label}; summing both double counts")
            if other.kind == "psys" and zone is not other:
                raise IreneError(f"option domains: psys contains {zone.label}; summing both double counts")
