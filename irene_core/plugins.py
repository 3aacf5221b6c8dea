"""Plugin discovery and the registries that look contributions up by kind and name.

Entry points of the ``irene`` group are loaded one by one (a plugin that raises on import is
recorded as broken and the rest still load); ``IRENE_LOAD_PLUGINS=a,b`` loads only the named ones.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from irene_core import hookspecs
from irene_core.errors import IreneError

#: hook name → the kind of what it contributes
HOOK_KINDS: dict[str, str] = {
    "irene_frameworks": "framework",
    "irene_meters": "meter",
    "irene_feature_extractors": "features",
    "irene_primitive_regressors": "primitive",
}

#: First-party plugins: (kind, name) → the distribution that provides it.
FIRST_PARTY: dict[tuple[str, str], str] = {
    ("framework", "torch"): "irene-framework-torch",
    ("framework", "tensorflow"): "irene-framework-tensorflow",
    ("meter", "emonpi"): "irene-meter-emonpi",
    ("meter", "rapl"): "irene-meter-rapl",
    ("meter", "nvml"): "irene-meter-nvml",
    ("features", "model"): "irene-features-model",
    ("features", "resource"): "irene-features-resource",
}
PRIMITIVES_DISTRIBUTION = "irene-primitives-transformers"


@dataclass
class PluginInfo:
    """One entry point of the ``irene`` group, as loaded (or not)."""

    name: str
    distribution: str
    version: str
    status: str  # ok | broken | skipped | not installed
    error: str = ""
    contributes: list[str] = field(default_factory=list)  # "kind:name"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kinds": sorted({c.split(":", 1)[0] for c in self.contributes}),
            "contributes": self.contributes,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "error": self.error,
        }


@dataclass(frozen=True)
class Contribution:
    kind: str
    name: str
    obj: Any
    plugin: str
    distribution: str


class PluginRegistry:
    """Loads the plugins and answers "which meter is called 'rapl'?"."""

    def __init__(self, entry_points: Iterable[md.EntryPoint] | None = None, only: Iterable[str] | None = None):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self._dist_of: dict[str, str] = {}
        self._by_kind: dict[str, dict[str, Contribution]] | None = None
        eps = list(md.entry_points(group=hookspecs.PROJECT)) if entry_points is None else list(entry_points)
        wanted = set(only) if only is not None else None
        for ep in sorted(eps, key=lambda e: e.name):
            self._load(ep, wanted)
        self.pm.check_pending()

    def _load(self, ep: md.EntryPoint, wanted: set[str] | None) -> None:
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        info = PluginInfo(ep.name, dist, version, "ok")
        self.plugins.append(info)
        if wanted is not None and ep.name not in wanted:
            info.status = "skipped"
            return
        try:
            plugin = ep.load()
            key = f"{dist}:{ep.name}"
            self.pm.register(plugin, name=key)
            self._dist_of[key] = dist
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the CLI down
            info.status, info.error = "broken", f"{type(exc).__name__}: {exc}"

    def register(self, plugin: object, name: str, distribution: str = "(in process)") -> None:
        """Register a plugin object directly (tests, notebooks)."""
        key = f"{distribution}:{name}"
        self.pm.register(plugin, name=key)
        self._dist_of[key] = distribution
        self.plugins.append(PluginInfo(name, distribution, "", "ok"))
        self._by_kind = None

    def _info(self, plugin_key: str) -> PluginInfo | None:
        dist, _, name = plugin_key.partition(":")
        return next((p for p in self.plugins if p.name == name and p.distribution == dist), None)

    def _collect(self) -> dict[str, dict[str, Contribution]]:
        by_kind: dict[str, dict[str, Contribution]] = {kind: {} for kind in HOOK_KINDS.values()}
        for hook_name, kind in HOOK_KINDS.items():
            hook = getattr(self.pm.hook, hook_name)
            for impl in hook.get_hookimpls():  # registration order
                info = self._info(impl.plugin_name)
                try:
                    objects = impl.function() or []
                except Exception as exc:  # noqa: BLE001
                    if info:
                        info.status, info.error = "broken", f"{hook_name}: {type(exc).__name__}: {exc}"
                    continue
                for obj in objects:
                    self._add(by_kind[kind], kind, obj, impl.plugin_name, info)
        return by_kind

    def _add(self, table: dict[str, Contribution], kind: str, obj: Any, key: str, info: PluginInfo | None) -> None:
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or not name:
            if info:
                info.status, info.error = "broken", f"a {kind} contribution has no 'name'"
            return
        new = Contribution(kind, name, obj, key.partition(":")[2], self._dist_of.get(key, "?"))
        old = table.get(name)
        if old is not None and not getattr(obj, "replaces", False):
            raise IreneError(
                f"two plugins provide the {kind} '{name}': {old.distribution} ({old.plugin}) and "
                f"{new.distribution} ({new.plugin}); uninstall one of them"
            )
        table[name] = new
        for alias in getattr(obj, "aliases", ()) or ():
            table.setdefault(alias, new)
        if info:
            info.contributes.append(f"{kind}:{name}")

    def contributions(self, kind: str) -> dict[str, Contribution]:
        if self._by_kind is None:
            self._by_kind = self._collect()
        if kind not in self._by_kind:
            raise IreneError(f"unknown plugin kind '{kind}' (kinds: {', '.join(sorted(self._by_kind))})")
        return self._by_kind[kind]

    def names(self, kind: str) -> list[str]:
        table = self.contributions(kind)
        return sorted(n for n, c in table.items() if c.name == n)

    def get(self, kind: str, name: str) -> Any:
        """The contribution ``name`` of ``kind``; unknown names fail with the install hint."""
        found = self.contributions(kind).get(name)
        if found is not None:
            return found.obj
        installed = ", ".join(self.names(kind)) or "none"
        msg = f"no {kind} named '{name}' is installed (installed: {installed})"
        dist = FIRST_PARTY.get((kind, name))
        if dist:
            msg += f"; install it with: pip install {dist}"
        broken = [p for p in self.plugins if p.status == "broken" and p.name == name]
        if broken:
            msg += f"; the plugin '{name}' is installed but broken: {broken[0].error}"
        raise IreneError(msg)

    def listing(self) -> list[PluginInfo]:
        """Every loaded plugin, plus first-party distributions that are not installed."""
        self.contributions("framework")  # make sure hooks ran, so statuses are final
        installed = {p.distribution for p in self.plugins}
        missing = sorted(set(FIRST_PARTY.values()) | {PRIMITIVES_DISTRIBUTION})
        rows = list(self.plugins)
        for dist in missing:
            if dist not in installed:
                rows.append(PluginInfo(dist.rsplit("-", 1)[-1], dist, "", "not installed"))
        return rows


@functools.cache
def get_registry() -> PluginRegistry:
    """The process-wide registry (honours ``IRENE_LOAD_PLUGINS``)."""
    only = os.environ.get("IRENE_LOAD_PLUGINS")
    return PluginRegistry(only=[s.strip() for s in only.split(",") if s.strip()] if only else None)
