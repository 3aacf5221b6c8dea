"""The registry, exercised with real distributions (dist-info folders on sys.path)."""

import importlib.metadata as md
import json
import textwrap
from pathlib import Path

import pytest

from irene_core.errors import IreneError
from irene_core.plugins import PluginRegistry

METER_PLUGIN = """
from irene_core.hookspecs import hookimpl
from irene_core.metering.meter import Meter

class {cls}(Meter):
    name = "{meter}"
    def available(self): return True, ""
    def begin(self, window): pass
    def end(self, window): raise NotImplementedError

@hookimpl
def irene_meters():
    return [{cls}]
"""


def make_dist(root: Path, dist: str, modules: dict[str, str], version: str = "1.0") -> list[md.EntryPoint]:
    """Write modules and a dist-info folder declaring one ``irene`` entry point per module."""
    for mod, source in modules.items():
        (root / f"{mod}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("[irene]\n" + "".join(f"{m} = {m}\n" for m in modules))
    return [ep for d in md.distributions(path=[str(root)]) if d.name == dist for ep in d.entry_points]


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_broken_plugin_is_reported_and_others_still_load(site):
    eps = make_dist(site, "irene-meter-good", {"good_meter": METER_PLUGIN.format(cls="Good", meter="good")})
    eps += make_dist(site, "irene-broken", {"broken_plugin": "raise RuntimeError('boom at import')"})
    reg = PluginRegistry(entry_points=eps)
    assert reg.get("meter", "good").name == "good"
    broken = next(p for p in reg.listing() if p.name == "broken_plugin")
    assert (broken.status, broken.distribution) == ("broken", "irene-broken")
    assert "RuntimeError: boom at import" in broken.error


def test_two_plugins_with_one_name_is_an_error_naming_both(site):
    eps = make_dist(site, "irene-meter-a", {"meter_a": METER_PLUGIN.format(cls="A", meter="same")})
    eps += make_dist(site, "irene-meter-b", {"meter_b": METER_PLUGIN.format(cls="B", meter="same")})
    with pytest.raises(IreneError, match="two plugins provide the meter 'same': irene-meter-a .* and irene-meter-b"):
        PluginRegistry(entry_points=eps).get("meter", "same")


def test_unknown_first_party_name_gives_install_hint():
    without_emonpi = [ep for ep in md.entry_points(group="irene") if ep.name != "emonpi"]
    reg = PluginRegistry(entry_points=without_emonpi)
    with pytest.raises(IreneError) as err:
        reg.get("meter", "emonpi")
    msg = str(err.value)
    assert "no meter named 'emonpi' is installed" in msg and "pip install irene-meter-emonpi" in msg
    assert "\n" not in msg
    assert any(p.distribution == "irene-meter-emonpi" and p.status == "not installed" for p in reg.listing())


def test_unknown_third_party_name_lists_installed(site):
    eps = make_dist(site, "irene-meter-x", {"meter_x": METER_PLUGIN.format(cls="X", meter="x")})
    with pytest.raises(IreneError, match=r"no meter named 'nope' is installed \(installed: x\)$"):
        PluginRegistry(entry_points=eps).get("meter", "nope")


def test_only_named_plugins_are_loaded(site):
    eps = make_dist(site, "irene-two", {"first_p": METER_PLUGIN.format(cls="F", meter="f"),
                                        "second_p": METER_PLUGIN.format(cls="S", meter="s")})
    reg = PluginRegistry(entry_points=eps, only=["second_p"])
    assert reg.names("meter") == ["s"]
    assert {p.name: p.status for p in reg.plugins} == {"first_p": "skipped", "second_p": "ok"}


def test_misspelled_hook_is_refused(site):
    eps = make_dist(site, "irene-typo", {"typo_p": "from irene_core.hookspecs import hookimpl\n"
                                                    "@hookimpl\ndef irene_meterz():\n    return []\n"})
    with pytest.raises(Exception, match="irene_meterz"):
        PluginRegistry(entry_points=eps)


def test_every_first_party_plugin_is_installed_and_listed(cli_run):
    rows = json.loads(cli_run("plugins", "--json").stdout)
    by_dist = {r["distribution"]: r for r in rows}
    for dist in ("irene-framework-torch", "irene-meter-emonpi", "irene-meter-rapl", "irene-meter-nvml",
                 "irene-features-model", "irene-features-resource", "irene-primitives-transformers"):
        assert by_dist[dist]["status"] == "ok", by_dist[dist]
