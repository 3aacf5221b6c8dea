"""The registry, exercised with real distributions (dist-info folders on sys.path)."""

import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import numpy as np
import pytest

from irene_core.default_plugins.generic_regressor import leaf_regressor
from irene_core.errors import IreneError
from irene_core.plugins import PluginRegistry
from irene_core.predictor import leaf_models
from irene_core.predictor.leaf_regressor import LeafRegressor

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
    """A folder on sys.path for modules and dist-info folders; its modules are forgotten afterwards
    (tests reuse module names)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name, module in list(sys.modules.items()):
        if (getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def test_broken_plugin_is_reported_and_others_still_load(site):
    eps = make_dist(site, "irene-meter-good", {"good_meter": METER_PLUGIN.format(cls="Good", meter="good")})
    eps += make_dist(site, "irene-broken", {"broken_plugin": "raise RuntimeError('boom at import')"})
    reg = PluginRegistry(entry_points=eps)
    assert reg.get("meter", "good").name == "good"
    broken = next(p for p in reg.listing() if p.name == "broken_plugin")
    assert (broken.status, broken.distribution) == ("broken", "irene-broken")
    assert "RuntimeError: boom at import" in broken.error


def test_two_plugins_with_one_name_are_a_conflict_only_when_that_name_is_requested(site):
    eps = make_dist(site, "irene-meter-a", {"meter_a": METER_PLUGIN.format(cls="A", meter="same")})
    eps += make_dist(site, "irene-meter-b", {"meter_b": METER_PLUGIN.format(cls="B", meter="same")})
    eps += make_dist(site, "irene-meter-c", {"meter_c": METER_PLUGIN.format(cls="C", meter="other")})
    reg = PluginRegistry(entry_points=eps)
    assert reg.get("meter", "other").name == "other" and reg.names("meter") == ["other"]
    why = "several plugins provide the meter 'same': irene-meter-a (meter_a) and irene-meter-b (meter_b)"
    with pytest.raises(IreneError, match=re.escape(why)) as err:
        reg.get("meter", "same")
    status = {p.name: (p.status, p.error) for p in reg.listing()}
    assert status["meter_a"] == status["meter_b"] == ("conflict", str(err.value))
    assert status["meter_c"] == ("ok", "")


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
    statuses = {p.name: p.status for p in reg.plugins}
    assert statuses == {"generic_regressor": "ok", "first_p": "skipped", "second_p": "ok"}


def test_misspelled_hook_is_listed_as_broken_and_the_rest_of_the_plugin_works(site):
    source = METER_PLUGIN.format(cls="T", meter="typo") + "\n@hookimpl\ndef irene_meterz():\n    return []\n"
    reg = PluginRegistry(entry_points=make_dist(site, "irene-typo", {"typo_p": source}))
    row = next(p for p in reg.listing() if p.name == "typo_p")
    assert (row.status, row.error) == ("broken", "unknown hook 'irene_meterz' (did you mean irene_meters?)")
    assert reg.get("meter", "typo").name == "typo" and row.contributes == ["meter:typo"]


def test_every_first_party_plugin_is_installed_and_listed(cli_run):
    rows = json.loads(cli_run("plugins", "--json").stdout)
    by_dist = {r["distribution"]: r for r in rows}
    for dist in ("irene-framework-torch", "irene-meter-emonpi", "irene-meter-rapl", "irene-meter-nvml",
                 "irene-features-model", "irene-features-resource", "irene-primitives-transformers"):
        assert by_dist[dist]["status"] == "ok", by_dist[dist]


# -- fault isolation ------------------------------------------------------------------------------
HOOK_PLUGIN = """
from types import SimpleNamespace
from irene_core.hookspecs import hookimpl
from irene_core.predictor.regressor import RegressorSpec

class Named:
    name = "{name}"

@hookimpl
def {hook}():
    {body}
"""

#: entry point → (its module's source, what ``irene plugins`` says is wrong with it)
BROKEN = {
    "hook_raises": (HOOK_PLUGIN.format(name="x", hook="irene_meters", body="raise ValueError('boom in hook')"),
                    "irene_meters: ValueError: boom in hook"),
    "not_a_list": (HOOK_PLUGIN.format(name="x", hook="irene_frameworks", body="return Named()"),
                   "irene_frameworks: TypeError: returned a Named, not a list"),
    "no_name": (HOOK_PLUGIN.format(name="x", hook="irene_meters", body="return [object()]"),
                "irene_meters: an item (object) has no string 'name'"),
    "bad_framework": (HOOK_PLUGIN.format(name="fw", hook="irene_frameworks", body="return [Named()]"),
                      "irene_frameworks: the framework 'fw' is a Named, not a Framework instance"),
    "bad_meter_class": (HOOK_PLUGIN.format(name="mc", hook="irene_meters", body="return [Named]"),
                        "irene_meters: the meter 'mc' is class Named, not a Meter subclass or factory"),
    "bad_meter_object": (HOOK_PLUGIN.format(name="mo", hook="irene_meters", body="return [Named()]"),
                         "irene_meters: the meter 'mo' is a Named, not a Meter subclass or factory"),
    "bad_features": (HOOK_PLUGIN.format(name="fe", hook="irene_feature_extractors", body="return [Named()]"),
                     "irene_feature_extractors: the features 'fe' is a Named, not a FeatureExtractor instance"),
    "bad_primitive": (HOOK_PLUGIN.format(name="x", hook="irene_primitive_regressors",
                                         body="return [SimpleNamespace(name='Op', factory=dict)]"),
                      "irene_primitive_regressors: the primitive 'Op' is a SimpleNamespace, not a RegressorSpec"),
    "bad_aliases": (HOOK_PLUGIN.format(name="x", hook="irene_primitive_regressors",
                                       body="return [RegressorSpec(name='Op', factory=dict, aliases='op')]"),
                    "irene_primitive_regressors: the primitive 'Op' has aliases that are not a list of strings"),
    "bad_suffixes": (HOOK_PLUGIN.format(name="x", hook="irene_primitive_regressors",
                                        body="return [RegressorSpec(name='Op', factory=dict, suffixes=('',))]"),
                     "irene_primitive_regressors: the primitive 'Op' has suffixes that are not a list of strings"),
}


@pytest.mark.parametrize("entry_point", sorted(BROKEN))
def test_a_faulty_plugin_is_listed_as_broken_with_the_reason_and_the_rest_works(site, entry_point):
    source, reason = BROKEN[entry_point]
    eps = make_dist(site, "irene-meter-good", {"good_meter": METER_PLUGIN.format(cls="Good", meter="good")})
    eps += make_dist(site, "irene-faulty", {entry_point: source})
    reg = PluginRegistry(entry_points=eps)
    rows = {p.name: p for p in reg.listing()}
    assert (rows[entry_point].status, rows[entry_point].error, rows[entry_point].contributes) == ("broken", reason, [])
    assert (rows["good_meter"].status, rows["generic_regressor"].status) == ("ok", "ok")
    assert reg.get("meter", "good").name == "good" and reg.names("framework") == []


def test_requesting_a_broken_contribution_names_the_fault(site):
    reg = PluginRegistry(entry_points=make_dist(site, "irene-faulty", {"bad_meter": BROKEN["bad_meter_object"][0]}))
    why = "the meter 'mo' of irene-faulty (bad_meter) is broken: the meter 'mo' is a Named, not a Meter subclass"
    with pytest.raises(IreneError, match=f"^{re.escape(why)}"):
        reg.get("meter", "mo")


MIXED_PLUGIN = """
from irene_core.hookspecs import hookimpl
from irene_core.metering.meter import Meter

class Fine(Meter):
    name = "fine"
    def available(self): return True, ""

def by_factory(**options):
    return Fine(**options)
by_factory.name = "by_factory"

@hookimpl
def irene_meters():
    return [Fine, by_factory, 42]

@hookimpl
def irene_frameworks():
    return [Fine]
"""


def test_a_plugins_valid_contributions_survive_its_faulty_ones(site):
    reg = PluginRegistry(entry_points=make_dist(site, "irene-mixed", {"mixed": MIXED_PLUGIN}))
    row = next(p for p in reg.listing() if p.name == "mixed")
    assert (row.status, row.contributes) == ("broken", ["meter:fine", "meter:by_factory"])
    assert row.error == ("irene_frameworks: the framework 'fine' is class Fine, not a Framework instance; "
                         "irene_meters: an item (int) has no string 'name'")
    assert reg.names("meter") == ["by_factory", "fine"] and reg.get("meter", "by_factory") is not None


COMMAND_PLUGIN = """
import click
from irene_core.hookspecs import hookimpl

@hookimpl
def irene_register_commands(cli):
    cli.add_command(click.Command({name!r}, callback=lambda: click.echo({name!r})))
    {then}
"""


def test_command_hooks_are_isolated_from_each_other_and_from_core(site):
    core = click.Command("plugins")
    cli = click.Group("irene", commands=[core])
    eps = make_dist(site, "irene-cmds", {
        "cmd_raises": COMMAND_PLUGIN.format(name="half", then="raise RuntimeError('no commands today')"),
        "cmd_hello": COMMAND_PLUGIN.format(name="hello", then=""),
        "cmd_shadow": COMMAND_PLUGIN.format(name="plugins", then=""),
        "cmd_dup_a": COMMAND_PLUGIN.format(name="dup", then=""),
        "cmd_dup_b": COMMAND_PLUGIN.format(name="dup", then=""),
    })
    reg = PluginRegistry(entry_points=eps)
    for _ in range(2):  # main() may run more than once in a process
        reg.register_commands(cli)
        assert sorted(cli.commands) == ["hello", "plugins"] and cli.commands["plugins"] is core
    rows = {p.name: (p.status, p.error) for p in reg.listing()}
    assert rows["cmd_raises"] == ("broken", "irene_register_commands: RuntimeError: no commands today")
    assert rows["cmd_hello"] == ("ok", "")
    contributes = {p.name: p.contributes for p in reg.plugins if p.name.startswith("cmd_") and p.contributes}
    assert contributes == {"cmd_hello": ["command:hello"]}
    shadow = ("conflict", "the command 'plugins' is defined by irene (core) and irene-cmds (cmd_shadow)")
    assert rows["cmd_shadow"] == shadow
    dup = ("conflict", "the command 'dup' is defined by irene-cmds (cmd_dup_a) and irene-cmds (cmd_dup_b)")
    assert rows["cmd_dup_a"] == rows["cmd_dup_b"] == dup


# -- replacement ----------------------------------------------------------------------------------
SPEC_PLUGIN = """
from irene_core.default_plugins.generic_regressor import leaf_regressor
from irene_core.hookspecs import hookimpl
from irene_core.predictor.regressor import RegressorSpec

@hookimpl
def irene_primitive_regressors():
    return [RegressorSpec(name={name!r}, factory=leaf_regressor, aliases={aliases!r}, replaces={replaces},
                          suffixes={suffixes!r})]
"""


def rotary(site: Path, dist: str, module: str, replaces: bool, aliases: tuple[str, ...] = (),
           suffixes: tuple[str, ...] = ()) -> list[md.EntryPoint]:
    """A distribution whose plugin ``module`` contributes the primitive ``Rotary``."""
    return make_dist(site, dist, {module: SPEC_PLUGIN.format(name="Rotary", aliases=aliases, replaces=replaces,
                                                             suffixes=suffixes)})


@pytest.mark.parametrize("original, replacement", [("a_rotary", "z_rotary"), ("z_rotary", "a_rotary")])
def test_a_replacement_wins_whatever_the_load_order(site, original, replacement):
    eps = rotary(site, "irene-original", original, replaces=False, aliases=("rope",), suffixes=("RotaryEmbedding",))
    eps += rotary(site, "irene-better", replacement, replaces=True)
    reg = PluginRegistry(entry_points=eps)
    assert reg.lookup("primitive", "Rotary").distribution == "irene-better"
    assert reg.lookup("primitive", "rope").distribution == "irene-better"  # the replaced spec's alias follows
    assert reg.lookup("primitive", "AcmeRotaryEmbedding").distribution == "irene-better"  # and its suffixes
    rows = {p.name: p.status for p in reg.listing()}
    assert rows[original] == rows[replacement] == "ok"


def test_two_replacements_of_one_name_are_a_conflict_naming_both(site):
    eps = rotary(site, "irene-original", "orig", replaces=False, aliases=("rope",))
    eps += rotary(site, "irene-better", "better", replaces=True) + rotary(site, "irene-best", "best", replaces=True)
    reg = PluginRegistry(entry_points=eps)
    why = ("several plugins replace the primitive 'Rotary': irene-best (best) and irene-better (better); "
           "uninstall all but one")
    for name in ("Rotary", "rope"):
        with pytest.raises(IreneError, match=re.escape(why)):
            reg.get("primitive", name)
    rows = {p.name: (p.status, p.error) for p in reg.listing()}
    assert rows["best"] == rows["better"] == ("conflict", why) and rows["orig"] == ("ok", "")


SUFFIX_PLUGIN = """
from irene_core.default_plugins.generic_regressor import leaf_regressor
from irene_core.hookspecs import hookimpl
from irene_core.predictor.regressor import RegressorSpec

@hookimpl
def irene_primitive_regressors():
    return [RegressorSpec(name={name!r}, factory=leaf_regressor, suffixes={suffixes!r})]
"""


def test_a_leaf_type_takes_the_spec_of_its_longest_ending_unless_two_share_it(site):
    eps = make_dist(site, "irene-rotary", {"rot": SUFFIX_PLUGIN.format(name="Rotary", suffixes=("RotaryEmbedding",))})
    eps += make_dist(site, "irene-lookup", {"look": SUFFIX_PLUGIN.format(name="Lookup", suffixes=("Embedding",))})
    eps += make_dist(site, "irene-table", {"table": SUFFIX_PLUGIN.format(name="Table", suffixes=("wordembedding",))})
    reg = PluginRegistry(entry_points=eps)
    assert reg.lookup("primitive", "AcmeRotaryEmbedding").name == "Rotary"  # over the shorter "Embedding"
    assert reg.lookup("primitive", "AcmePositionEmbedding").name == "Lookup"
    assert reg.lookup("primitive", "ACMEWORDEMBEDDING").name == "Table"  # case aside
    eps += make_dist(site, "irene-other", {"other": SUFFIX_PLUGIN.format(name="Other", suffixes=("RotaryEmbedding",))})
    tied = PluginRegistry(entry_points=eps)
    assert tied.find("primitive", "AcmeRotaryEmbedding") is None  # two specs claim the same ending: neither
    assert tied.find("primitive", "AcmePositionEmbedding").name == "Lookup"


# -- core's default plugin ------------------------------------------------------------------------
def test_core_contributes_the_generic_regressor_as_a_default_plugin_always():
    reg = PluginRegistry(entry_points=[ep for ep in md.entry_points(group="irene") if ep.name == "rapl"], only=["none"])
    generic = reg.lookup("primitive", "generic")
    assert (generic.distribution, generic.plugin, generic.obj.factory) == ("irene", "generic_regressor", leaf_regressor)
    rows = {p.name: (p.distribution, p.status, p.contributes) for p in reg.listing()}
    assert rows["generic_regressor"] == ("irene", "ok", ["primitive:generic"]) and rows["rapl"][1] == "skipped"


def test_the_registry_and_the_default_plugin_import_nothing_heavy():
    code = ("import sys; from irene_core.plugins import PluginRegistry; PluginRegistry(entry_points=[]); "
            "print(sorted(m for m in ('numpy', 'pandas', 'torch', 'pydantic', 'click') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


FEATURES = ("batch_size", "seq_len", "flops", "mem_bytes")

CONSTANT_GENERIC = """
import numpy as np
from irene_core.hookspecs import hookimpl
from irene_core.predictor.regressor import RegressorSpec

class Constant:
    def __init__(self, feature_names, **params):
        self.value = 0.0
    def fit(self, X, y, groups=None, sample_weight=None):
        self.value = float(np.mean(y))
        return self
    def predict(self, X):
        return np.full(len(X), self.value)
    def get_state(self):
        return {"value": self.value}
    def set_state(self, state):
        self.value = state["value"]
        return self

@hookimpl
def irene_primitive_regressors():
    return [RegressorSpec(name="generic", factory=Constant, replaces=True)]
"""


@pytest.fixture
def leaves_data():
    rng = np.random.default_rng(0)
    X = rng.uniform(1.0, 100.0, (40, len(FEATURES)))
    y = 1e-3 * X[:, 2] * X[:, 0]
    types = np.array(["Foo"] * 20 + ["Bar"] * 20, dtype=object)
    return X, y, types, np.array(["m1", "m2"] * 20, dtype=object)


def use_registry(monkeypatch, registry: PluginRegistry) -> PluginRegistry:
    monkeypatch.setattr(leaf_models, "get_registry", lambda: registry)
    return registry


def test_types_no_plugin_knows_get_cores_generic_regressor_from_the_registry(monkeypatch, leaves_data):
    X, y, types, groups = leaves_data
    use_registry(monkeypatch, PluginRegistry(entry_points=[]))
    models = leaf_models.LeafModels(FEATURES, {"method": "auto"}, min_rows=5)
    models.fit(X, y, types, groups)
    assert {(n, e.spec, e.distribution) for n, e in models.entries.items()} == {
        ("Foo", "generic", "irene"),
        ("Bar", "generic", "irene"),
    }
    foo = types == "Foo"
    expected = LeafRegressor(FEATURES).fit(X[foo], y[foo], groups[foo]).predict(X[foo])
    assert np.array_equal(models.predict(X[foo], types[foo]), expected)
    # the fallback: physical candidates only, chosen on folds that hold out computations (here: types)
    expected_generic = LeafRegressor(FEATURES, fallback=True).fit(X, y, types).predict(X[:3])
    assert np.array_equal(models.predict(X[:3], np.array(["Baz"] * 3, dtype=object)), expected_generic)


def test_older_saves_of_cores_regressor_still_load(monkeypatch, leaves_data):
    X, y, types, groups = leaves_data
    use_registry(monkeypatch, PluginRegistry(entry_points=[]))
    models = leaf_models.LeafModels(FEATURES, {"method": "auto"}, min_rows=5)
    models.fit(X, y, types, groups)
    state = models.get_state()
    del state["generic_distribution"]  # what IrEne wrote before core's regressor was a plugin
    for saved in state["primitives"].values():
        saved["spec"] = None
    loaded = leaf_models.LeafModels.from_state(FEATURES, state)
    unknown = np.array(["Foo"] * 20 + ["Baz"] * 20, dtype=object)
    assert np.array_equal(loaded.predict(X, unknown), models.predict(X, unknown))


def test_a_plugin_replaces_the_generic_regressor(site, monkeypatch, leaves_data):
    X, y, types, groups = leaves_data
    baz = np.array(["Baz"] * len(X), dtype=object)  # a type no regressor was trained for
    cores = use_registry(monkeypatch, PluginRegistry(entry_points=[]))
    trained_with_core = leaf_models.LeafModels(FEATURES, {"method": "auto"}, min_rows=5)
    trained_with_core.fit(X, y, types, groups)
    eps = make_dist(site, "irene-const", {"const": CONSTANT_GENERIC})
    assert use_registry(monkeypatch, PluginRegistry(entry_points=eps)).lookup("primitive", "generic").obj.replaces
    models = leaf_models.LeafModels(FEATURES, {"method": "auto"}, min_rows=5)
    report = models.fit(X, y, types, groups)
    assert report["generic"] == "Constant" and models.entries["Foo"].distribution == "irene-const"
    assert np.array_equal(models.predict(X, baz), np.full(len(X), y.mean()))
    assert leaf_models.LeafModels.from_state(FEATURES, models.get_state()).generic.value == y.mean()
    # a saved predictor gets back exactly the regressors it was trained with, replaced or not
    loaded = leaf_models.LeafModels.from_state(FEATURES, trained_with_core.get_state())
    assert isinstance(loaded.generic, LeafRegressor) and isinstance(loaded.entries["Foo"].regressor, LeafRegressor)
    assert np.array_equal(loaded.predict(X, baz), trained_with_core.predict(X, baz))
    use_registry(monkeypatch, cores)
    with pytest.raises(IreneError, match=r"needs the primitive regressor 'generic' from irene-const, which is not"):
        leaf_models.LeafModels.from_state(FEATURES, models.get_state())


# -- through the installed console script ---------------------------------------------------------
def test_the_cli_survives_broken_plugins_and_lists_their_faults(site, cli_run):
    make_dist(site, "irene-demo-broken", {
        "demo_import": "raise ImportError('no such thing')",
        "demo_typo": COMMAND_PLUGIN.format(name="demo-hello", then="") + "\n@hookimpl\ndef irene_meterz(): pass\n",
        "demo_commands": COMMAND_PLUGIN.format(name="demo-half", then="raise RuntimeError('commands hook fails')"),
        "demo_meter": BROKEN["bad_meter_object"][0],
    })
    make_dist(site, "irene-demo-a", {"dupe_a": METER_PLUGIN.format(cls="A", meter="dupe")})
    make_dist(site, "irene-demo-b", {"dupe_b": METER_PLUGIN.format(cls="B", meter="dupe")})
    env = {**os.environ, "PYTHONPATH": str(site)}
    assert cli_run("--version", env=env).stdout.startswith("irene, version")
    listed = json.loads(cli_run("plugins", "--json", env=env).stdout)
    rows = {r["name"]: (r["status"], r["error"]) for r in listed}
    assert next(r for r in listed if r["name"] == "demo_typo")["contributes"] == ["command:demo-hello"]
    dupe = ("several plugins provide the meter 'dupe': irene-demo-a (dupe_a) and irene-demo-b (dupe_b); "
            "uninstall all but one")
    assert rows["demo_import"] == ("broken", "ImportError: no such thing")
    assert rows["demo_typo"] == ("broken", "unknown hook 'irene_meterz' (did you mean irene_meters?)")
    assert rows["demo_commands"] == ("broken", "irene_register_commands: RuntimeError: commands hook fails")
    assert rows["demo_meter"] == ("broken", BROKEN["bad_meter_object"][1])
    assert rows["dupe_a"] == rows["dupe_b"] == ("conflict", dupe)
    assert rows["generic_regressor"] == rows["torch"] == ("ok", "")
    assert "bert-base-uncased" in cli_run("trace", "--presets", env=env).stdout.split()
    assert cli_run("demo-hello", env=env).stdout == "demo-hello\n"
    failed = cli_run("meter", "measure", "--meter", "dupe", "--seconds", "0.01", check=False, env=env)
    assert (failed.returncode, failed.stderr) == (1, f"error: {dupe}\n")
    listed = cli_run("plugins", "--json", env={**env, "IRENE_LOAD_PLUGINS": "torch"}).stdout
    only = {r["name"]: r["status"] for r in json.loads(listed)}
    names = ("generic_regressor", "torch", "demo_import", "dupe_a")
    assert [only[name] for name in names] == ["ok", "ok", "skipped", "skipped"]
