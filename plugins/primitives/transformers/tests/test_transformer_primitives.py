"""irene-primitives-transformers: its specs in the registry, its regressors, and plugins that
add or replace a primitive regressor."""

import importlib.metadata as md

import numpy as np
import pytest

from irene_core.hookspecs import hookimpl
from irene_core.plugins import PluginRegistry, get_registry
from irene_core.predictor import leaf_models
from irene_core.predictor.predictor import Predictor
from irene_core.predictor.regressor import PrimitiveRegressor, RegressorSpec
from irene_primitives_transformers.primitives import PRIMITIVES
from irene_primitives_transformers.regressors import ZeroEnergyRegressor, trainable_regressor


def test_every_primitive_is_registered_with_its_aliases():
    table = get_registry().contributions("primitive")
    for primitive in PRIMITIVES:
        found = table[primitive.name]
        assert found.distribution == "irene-primitives-transformers"
        assert all(table[alias].name == primitive.name for alias in primitive.aliases)
    assert (
        table["bmm"].name == "MatMul"
        and table["NewGELUActivation"].name == "GELU"
        and table["Dropout2d"].name == "Dropout"
    )


def test_regressors_follow_the_contract():
    X = np.array([[8.0, 32.0, 10.0, 1.0], [16.0, 64.0, 40.0, 4.0], [32.0, 128.0, 160.0, 16.0]])
    zero = ZeroEnergyRegressor(("batch_size", "seq_len", "flops", "mem_bytes"))
    assert isinstance(zero, PrimitiveRegressor)
    assert np.array_equal(zero.fit(X, np.ones(3)).predict(X), np.zeros(3))
    assert zero.set_state(zero.get_state()) is zero
    ols = trainable_regressor(("batch_size", "seq_len", "flops", "mem_bytes"), method="ols", ignored="x")
    y = 1e-3 + 1e-4 * X[:, 2]
    assert ols.fit(X, y).describe() == "OLS" and ols.predict(X) == pytest.approx(y, rel=1e-6)


class ConstantLinear:
    """A third-party regressor: 1 J for every Linear call."""

    def __init__(self, feature_names, **params):
        self.fitted_rows = 0

    def fit(self, X, y, groups=None, sample_weight=None):
        self.fitted_rows = len(y)
        return self

    def predict(self, X):
        return np.ones(len(X))

    def get_state(self):
        return {"rows": self.fitted_rows}

    def set_state(self, state):
        self.fitted_rows = state["rows"]
        return self


class ThirdParty:
    @hookimpl
    def irene_primitive_regressors(self):
        return [
            RegressorSpec(name="Linear", factory=ConstantLinear, replaces=True),
            RegressorSpec(name="MyOp", factory=trainable_regressor, aliases=("my_op",)),
        ]


@pytest.fixture
def registry(monkeypatch):
    entry_points = [ep for ep in md.entry_points(group="irene") if ep.name == "transformers"]
    fresh = PluginRegistry(entry_points=entry_points)
    fresh.register(ThirdParty(), "third-party", "irene-third-party")
    monkeypatch.setattr(leaf_models, "get_registry", lambda: fresh)
    return fresh


def test_a_plugin_replaces_and_adds_primitive_regressors(registry, device1_records, tmp_path):
    records = [
        r.model_copy(deep=True)
        for r in device1_records
        if r.model_name in ("bert-base-uncased", "distilbert-base-uncased") and r.batch_size == 8
    ]
    for record in records:
        for node in record.root.walk():
            if node.type == "Softmax":
                node.type = "my_op"  # an alias of the new primitive
    predictor = Predictor(features="model").fit(records)
    report = predictor.training_["leaves"]["primitives"]
    assert report["Linear"]["model"] == "ConstantLinear" and "MyOp" in report and "my_op" not in report
    out = predictor.predict(records[:1])[0]
    assert {n.predicted_energy for n in out.root.walk() if n.type == "Linear"} == {1.0}
    predictor.save(tmp_path / "p")
    loaded = Predictor.load(tmp_path / "p")
    assert loaded.leaves_.entries["Linear"].regressor.fitted_rows == report["Linear"]["rows"]
    assert loaded.leaves_.entries["Linear"].distribution == "irene-third-party"
