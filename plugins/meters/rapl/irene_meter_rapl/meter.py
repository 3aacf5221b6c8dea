"""The RAPL meter: CPU package, DRAM and platform energy from Linux powercap (the summed zones only)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from irene_core import IreneError, Meter, MeterOption
from irene_core.plugin_api import CounterEngine, EnergyCounter, positive_float
from irene_meter_rapl.powercap import Zone, check_summed, default_summed, discover, read_counter

#: RAPL counters update about every millisecond.
RESOLUTION_S = 0.001


def _domain_list(text: str) -> list[str]:
    labels = [part.strip() for part in text.split(",") if part.strip()]
    if not labels:
        raise ValueError("expected 'auto' or a comma-separated list of zones")
    return labels


class RaplMeter(Meter):
    """Intel/AMD RAPL energy counters (``energy_uj``) read at the window edges."""

    name = "rapl"
    scope = "host"
    description = "Intel/AMD RAPL energy counters through Linux powercap (CPU package, DRAM, platform)"
    options: ClassVar[Mapping[str, MeterOption]] = {
        "root": MeterOption("/sys/class/powercap", "the powercap directory"),
        "domains": MeterOption(
            "auto",
            "zones whose energy is summed: 'auto' (psys if present, else every package plus DRAM) or a "
            "comma-separated list such as 'package-0,package-0/dram'",
            lambda text: text if text == "auto" else _domain_list(text),
        ),
        "max_power_w": MeterOption(
            "1000", "ceiling in W per package (psys: per package on the platform); a reading above it is an error",
            positive_float,
        ),
    }

    @property
    def root(self) -> Path:
        return Path(self.config["root"])

    def _zones(self) -> tuple[list[Zone], list[str]]:
        zones = discover(self.root)
        if not zones:
            raise IreneError(
                f"no RAPL zones under {self.root} (not an Intel or AMD CPU, the intel_rapl_msr "
                f"module is not loaded, or a VM or container hides powercap)"
            )
        summed = default_summed(zones) if self.config["domains"] == "auto" else self.config["domains"]
        check_summed(zones, summed)
        return zones, summed

    def available(self) -> tuple[bool, str]:
        try:
            zones, summed = self._zones()
            for zone in zones:
                zone.read_energy_uj()
        except IreneError as exc:
            return False, str(exc)
        return True, f"zones {', '.join(z.label for z in zones)}; summing {' + '.join(summed)}"

    def _open(self) -> CounterEngine:
        """Counters for the summed zones only (each read costs a file open at every window edge)."""
        zones, summed = self._zones()
        packages = sum(1 for z in zones if z.kind == "package") or 1
        ceiling = self.config["max_power_w"]
        counters = [
            EnergyCounter(
                z.label, functools.partial(read_counter, str(z.energy_file)), 1e-6, z.max_energy_range_uj(),
                max_power_w=ceiling * packages if z.kind == "psys" else ceiling, source=str(z.energy_file),
            )
            for z in zones
            if z.label in summed
        ]
        return CounterEngine(self.name, counters, RESOLUTION_S)
