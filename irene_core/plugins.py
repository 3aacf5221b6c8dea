"""Plugin discovery and the registries that look contributions up by kind and name.

Core's defaults (:data:`DEFAULT_PLUGINS`) are registered first, always; then the entry points of the
``irene`` group, one by one (``IRENE_LOAD_PLUGINS=a,b`` loads only the named ones).

**Faults are isolated per contribution.**  A plugin that fails to import or declares an unknown hook,
a hook that raises or returns something other than a list, an item without a string ``name`` or that
breaks its kind's contract (see :data:`KINDS`): each is left out and recorded, and ``irene plugins``
lists the plugin as ``broken`` with every reason.  The plugin's *valid* contributions (and commands)
stay usable, and every other plugin and command keeps working.

**Names are resolved after collection**, so load order never matters: a contribution with
``replaces=True`` takes over its name (and the replaced one's aliases); two contributions of one
kind and name (or two replacements of one name) are both listed as ``conflict`` and fail only when
that name is requested, with an :class:`IreneError` naming both distributions.  An alias never hides
a name or an earlier alias.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata as md
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import pluggy

from irene_core import hookspecs
from irene_core._version import __version__
from irene_core.errors import IreneError

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    import click


class Kind(NamedTuple):
    """A contribution kind: the hook that contributes it and the contract its objects satisfy."""

    hook: str
    module: str  # where the contract class lives (imported only to check a contribution)
    contract: str
    expected: str  # what a contribution must be, for error messages
    factories: bool = False  # classes must subclass the contract; other callables are factories


KINDS: dict[str, Kind] = {
    "framework": Kind("irene_frameworks", "irene_core.tracing.framework", "Framework", "a Framework instance"),
    "meter": Kind(
        "irene_meters", "irene_core.metering.meter", "Meter", "a Meter subclass or factory", factories=True
    ),
    "features": Kind(
        "irene_feature_extractors", "irene_core.tree.features", "FeatureExtractor", "a FeatureExtractor instance"
    ),
    "primitive": Kind(
        "irene_primitive_regressors", "irene_core.predictor.regressor", "RegressorSpec", "a RegressorSpec"
    ),
}

#: Core's own plugins, registered in code by every registry (distribution ``irene``).
DEFAULT_PLUGINS: tuple[str, ...] = ("irene_core.default_plugins.generic_regressor",)
CORE_DISTRIBUTION = "irene"
#: Core's fallback primitive regressor (for leaf types no plugin knows), contributed by a default plugin.
GENERIC = "generic"

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
    """One plugin (a default plugin or an entry point of the ``irene`` group), as loaded (or not)."""

    name: str
    distribution: str
    version: str
    status: str = "ok"  # ok | broken | conflict | skipped | not installed
    error: str = ""  # every reason, "; "-separated
    contributes: list[str] = field(default_factory=list)  # "kind:name" (kind "command" for commands)

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

    @property
    def key(self) -> str:
        """The contributing plugin's key in the plugin manager."""
        return _key(self.distribution, self.plugin)

    @property
    def source(self) -> str:
        return f"{self.distribution} ({self.plugin})"


class Fault(NamedTuple):
    """Something wrong with one plugin: ``status`` is ``broken`` or ``conflict``."""

    plugin: str  # the plugin's key in the plugin manager
    status: str
    reason: str


@dataclass
class _Table:
    """One kind's contributions, resolved."""

    usable: dict[str, Contribution] = field(default_factory=dict)  # names and aliases
    unusable: dict[str, str] = field(default_factory=dict)  # name → why requesting it fails
    offered: list[Contribution] = field(default_factory=list)  # every valid contribution
    faults: list[Fault] = field(default_factory=list)


def _key(distribution: str, name: str) -> str:
    return f"{distribution}:{name}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _breach(kind: str, obj: Any) -> str | None:
    """Why ``obj`` cannot be a contribution of ``kind``; None when it can."""
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        return f"an item ({type(obj).__name__}) has no string 'name'"
    for field_name in ("aliases", "suffixes"):
        values = getattr(obj, field_name, ())
        if not isinstance(values, (list, tuple)) or not all(isinstance(a, str) and a for a in values):
            return f"the {kind} '{name}' has {field_name} that are not a list of strings"
    spec = KINDS[kind]
    contract = getattr(importlib.import_module(spec.module), spec.contract)
    if spec.factories:
        ok = issubclass(obj, contract) if isinstance(obj, type) else callable(obj)
    else:
        ok = isinstance(obj, contract)
    what = f"class {obj.__name__}" if isinstance(obj, type) else f"a {type(obj).__name__}"
    return None if ok else f"the {kind} '{name}' is {what}, not {spec.expected}"


class PluginRegistry:
    """Loads the plugins and answers "which meter is called 'rapl'?"."""

    def __init__(self, entry_points: Iterable[md.EntryPoint] | None = None, only: Iterable[str] | None = None):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._seen: dict[str, PluginInfo] = {}  # plugin key → what was loaded, before any hook ran
        self._faults: list[Fault] = []  # found while loading
        self._command_faults: list[Fault] = []
        self._commands: dict[str, str] = {}  # command added by a plugin → the plugin's key
        self._tables: dict[str, _Table] = {}
        for module in DEFAULT_PLUGINS:
            load = functools.partial(importlib.import_module, module)
            self._load(module.rsplit(".", 1)[-1], CORE_DISTRIBUTION, __version__, load)
        eps = list(md.entry_points(group=hookspecs.PROJECT)) if entry_points is None else list(entry_points)
        wanted = set(only) if only is not None else None
        for ep in sorted(eps, key=lambda e: e.name):
            dist, version = (ep.dist.name, ep.dist.version) if ep.dist else ("?", "?")
            if wanted is not None and ep.name not in wanted:
                self._seen[_key(dist, ep.name)] = PluginInfo(ep.name, dist, version, "skipped")
            else:
                self._load(ep.name, dist, version, ep.load)

    def _load(self, name: str, distribution: str, version: str, load: Callable[[], object]) -> None:
        key = _key(distribution, name)
        self._seen[key] = PluginInfo(name, distribution, version)
        try:
            plugin = load()
            self.pm.register(plugin, name=key)
        except Exception as exc:  # a broken plugin must not take the CLI down
            self._faults.append(Fault(key, "broken", f"{type(exc).__name__}: {exc}"))
            return
        for caller in self.pm.get_hookcallers(plugin) or ():
            if caller.spec is None:
                known = [c.name for c in vars(self.pm.hook).values() if c.spec is not None]
                close = difflib.get_close_matches(caller.name, known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self._faults.append(Fault(key, "broken", f"unknown hook '{caller.name}'{hint}"))

    def register(self, plugin: object, name: str, distribution: str = "(in process)") -> None:
        """Register a plugin object directly (tests, notebooks)."""
        self._load(name, distribution, "", lambda: plugin)
        self._tables = {}

    # -- contributions ----------------------------------------------------------------------------
    def _table(self, kind: str) -> _Table:
        if kind not in KINDS:
            raise IreneError(f"unknown plugin kind '{kind}' (kinds: {', '.join(sorted(KINDS))})")
        if kind not in self._tables:
            self._tables[kind] = self._collect(kind)
        return self._tables[kind]

    def _collect(self, kind: str) -> _Table:
        hook = KINDS[kind].hook
        table = _Table()
        broken: dict[str, str] = {}  # name → why, for named items that break the contract
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            seen = self._seen[impl.plugin_name]
            try:
                items = impl.function()
                if not isinstance(items, list):
                    raise TypeError(f"returned a {type(items).__name__}, not a list")
                for obj in items:
                    problem = _breach(kind, obj)
                    if problem is None:
                        table.offered.append(Contribution(kind, obj.name, obj, seen.name, seen.distribution))
                        continue
                    table.faults.append(Fault(impl.plugin_name, "broken", f"{hook}: {problem}"))
                    if isinstance(getattr(obj, "name", None), str):
                        why = f"the {kind} '{obj.name}' of {seen.distribution} ({seen.name}) is broken: {problem}"
                        broken.setdefault(obj.name, why)
            except Exception as exc:  # one bad hook must not take the others down
                table.faults.append(Fault(impl.plugin_name, "broken", f"{hook}: {type(exc).__name__}: {exc}"))
        self._resolve(kind, table)
        for name, why in broken.items():
            if name not in table.usable:
                table.unusable.setdefault(name, why)
        return table

    @staticmethod
    def _resolve(kind: str, table: _Table) -> None:
        """Pick each name's contribution: the only one, or the only one with ``replaces=True``."""
        groups: dict[str, list[Contribution]] = {}
        for c in table.offered:
            groups.setdefault(c.name, []).append(c)
        for name, group in groups.items():
            replacing = [c for c in group if getattr(c.obj, "replaces", False)]
            rivals = replacing or group
            if len(rivals) == 1:
                table.usable[name] = rivals[0]
                continue
            verb, sources = ("replace" if replacing else "provide"), _and([c.source for c in rivals])
            why = f"several plugins {verb} the {kind} '{name}': {sources}; uninstall all but one"
            table.unusable[name] = why
            table.faults += [Fault(c.key, "conflict", why) for c in rivals]
        for c in table.offered:
            for alias in getattr(c.obj, "aliases", ()):
                if alias not in table.usable and alias not in table.unusable:
                    if c.name in table.usable:
                        table.usable[alias] = table.usable[c.name]
                    else:
                        table.unusable[alias] = table.unusable[c.name]

    def contributions(self, kind: str) -> dict[str, Contribution]:
        """Every usable contribution of ``kind`` by name and alias (conflicting names left out)."""
        return self._table(kind).usable

    def names(self, kind: str) -> list[str]:
        table = self.contributions(kind)
        return sorted(n for n, c in table.items() if c.name == n)

    def find(self, kind: str, name: str) -> Contribution | None:
        """The contribution ``name`` (or alias) of ``kind``, else the one whose ``suffixes`` end ``name``
        (case aside; the longest ending, when one contribution alone has it: a model family's own class,
        ``OlmoeRMSNorm``, is an ``RMSNorm``); None when none matches, an :class:`IreneError` when the
        name is in conflict or broken."""
        table = self._table(kind)
        if name in table.unusable:
            raise IreneError(table.unusable[name])
        found = table.usable.get(name)
        return found if found is not None else self._by_suffix(table, name)

    @staticmethod
    def _by_suffix(table: _Table, name: str) -> Contribution | None:
        """The usable contribution with the longest of the ``suffixes`` that end ``name`` (case aside; a
        replaced spec's suffixes, like its aliases, name its replacement), or None where there is none or
        several contributions have endings that long."""
        lowered = name.lower()
        ends = {(len(end), id(winner)): winner for c in table.offered if (winner := table.usable.get(c.name))
                for end in getattr(c.obj, "suffixes", ()) if lowered.endswith(end.lower())}
        if not ends:
            return None
        longest = max(length for length, _ in ends)
        found = [c for (length, _), c in ends.items() if length == longest]
        return found[0] if len(found) == 1 else None

    def lookup(self, kind: str, name: str) -> Contribution:
        """Like :meth:`find`, but unknown names fail with the installed names and the install hint."""
        found = self.find(kind, name)
        if found is not None:
            return found
        installed = ", ".join(self.names(kind)) or "none"
        msg = f"no {kind} named '{name}' is installed (installed: {installed})"
        dist = FIRST_PARTY.get((kind, name))
        if dist:
            msg += f"; install it with: pip install {dist}"
        broken = [p for p in self.plugins if p.status == "broken" and p.name == name]
        if broken:
            msg += f"; the plugin '{name}' is installed but broken: {broken[0].error}"
        raise IreneError(msg)

    def provided_by(self, kind: str, name: str, distribution: str) -> Contribution | None:
        """The valid contribution ``name`` of ``kind`` from ``distribution``, whether or not it won its
        name (a replaced or conflicting one included): a saved predictor needs exactly its own."""
        return next((c for c in self._table(kind).offered if (c.name, c.distribution) == (name, distribution)), None)

    def get(self, kind: str, name: str) -> Any:
        """The object contributed as ``name`` of ``kind`` (see :meth:`lookup`)."""
        return self.lookup(kind, name).obj

    # -- commands ---------------------------------------------------------------------------------
    def register_commands(self, cli: click.Group) -> None:
        """Run every ``irene_register_commands`` hook on ``cli``, each on its own: a hook that raises
        adds nothing; a command name defined twice (or one of core's) is added by none of them."""
        core = {n: c for n, c in cli.commands.items() if n not in self._commands}
        self._command_faults = []
        offers: dict[str, list[tuple[str, click.Command]]] = {}
        for impl in self.pm.hook.irene_register_commands.get_hookimpls():
            cli.commands = dict(core)
            try:
                impl.function(**dict.fromkeys(impl.argnames, cli))
            except Exception as exc:  # a broken plugin must not take the CLI down
                self._command_faults.append(
                    Fault(impl.plugin_name, "broken", f"irene_register_commands: {type(exc).__name__}: {exc}")
                )
                continue
            for name, command in cli.commands.items():
                if core.get(name) is not command:
                    offers.setdefault(name, []).append((impl.plugin_name, command))
        cli.commands = dict(core)
        self._commands = {}
        for name, offered in offers.items():
            if len(offered) == 1 and name not in core:
                cli.add_command(offered[0][1], name)
                self._commands[name] = offered[0][0]
                continue
            owners = [f"{CORE_DISTRIBUTION} (core)"] if name in core else []
            owners += [f"{self._seen[k].distribution} ({self._seen[k].name})" for k, _ in offered]
            why = f"the command '{name}' is defined by {_and(owners)}"
            self._command_faults += [Fault(k, "conflict", why) for k, _ in offered]

    # -- listing ----------------------------------------------------------------------------------
    @property
    def plugins(self) -> list[PluginInfo]:
        """Every plugin seen, with the faults and contributions found so far."""
        tables = [self._tables[kind] for kind in KINDS if kind in self._tables]
        faults = self._faults + [f for t in tables for f in t.faults] + self._command_faults
        offered = [c for t in tables for c in t.offered]
        rows = []
        for key, info in self._seen.items():
            mine = [f for f in faults if f.plugin == key]
            rows.append(replace(
                info,
                status=min((f.status for f in mine), key=("broken", "conflict").index, default=info.status),
                error="; ".join(dict.fromkeys(f.reason for f in mine)),
                contributes=[f"{c.kind}:{c.name}" for c in offered if c.key == key]
                + [f"command:{name}" for name, owner in self._commands.items() if owner == key],
            ))
        return rows

    def listing(self) -> list[PluginInfo]:
        """Every plugin with its final status, plus first-party distributions that are not installed."""
        for kind in KINDS:
            self._table(kind)
        rows = self.plugins
        installed = {p.distribution for p in rows}
        for dist in sorted(set(FIRST_PARTY.values()) | {PRIMITIVES_DISTRIBUTION}):
            if dist not in installed:
                rows.append(PluginInfo(dist.rsplit("-", 1)[-1], dist, "", "not installed"))
        return rows


@functools.cache
def get_registry() -> PluginRegistry:
    """The process-wide registry (honours ``IRENE_LOAD_PLUGINS``)."""
    only = os.environ.get("IRENE_LOAD_PLUGINS")
    return PluginRegistry(only=[s.strip() for s in only.split(",") if s.strip()] if only else None)
