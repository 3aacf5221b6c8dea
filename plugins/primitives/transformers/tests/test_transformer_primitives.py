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
from irene_primitives_transformers.regressors import DispatchEnergyRegressor, trainable_regressor


def test_every_primitive_is_registered_with_its_aliases():
    table = get_registry().contributions("primitive")
    for primitive in PRIMITIVES:
        found = table[primitive.name]
        assert found.distribution == "irene-primitives-transformers"
        assert all(table[alias].name == primitive.name for alias in primitive.aliases)
    assert table["bmm"].name == "MatMul" and table["Dropout2d"].name == "Dropout"


@pytest.mark.parametrize("leaf_type, primitive", [
    # model families this plugin never names, by the ending of their class's name
    ("OlmoeRMSNorm", "RMSNorm"), ("GptOssRMSNorm", "RMSNorm"), ("GPTNeoXRotaryEmbedding", "RotaryEmbedding"),
    ("OPTLearnedPositionalEmbedding", "Embedding"), ("BartScaledWordEmbedding", "Embedding"),
    ("embedding", "Embedding"),
    ("BloomGelu", "GELU"), ("NewGELUActivation", "GELU"), ("PytorchGELUTanh", "GELU"), ("SiLUActivation", "SiLU"),
    ("FusedLayerNorm", "LayerNorm"), ("NonDynamicallyQuantizableLinear", "Linear"), ("StableDropout", "Dropout"),
    # a name or alias first, whatever its ending: T5's layer norm is a root-mean-square one
    ("T5LayerNorm", "RMSNorm"), ("Conv1D", "Conv1D"),
])
def test_a_family_class_is_the_primitive_its_name_ends_with(leaf_type, primitive):
    found = get_registry().find("primitive", leaf_type)
    assert found is not None and found.name == primitive


def test_a_name_no_ending_matches_is_unknown():
    """MobileBERT's NoNorm is an elementwise affine map, no normalisation: the generic regressor's."""
    assert get_registry().find("primitive", "NoNorm") is None
    assert leaf_models.computation("NoNorm") == "NoNorm"


def test_regressors_follow_the_contract():
    X = np.array([[8.0, 32.0, 10.0, 1.0], [16.0, 64.0, 40.0, 4.0], [32.0, 128.0, 160.0, 16.0]])
    untrained = DispatchEnergyRegressor(("batch_size", "seq_len", "flops", "mem_bytes"))
    assert isinstance(untrained, PrimitiveRegressor)
    assert np.array_equal(untrained.predict(X), np.zeros(3))
    assert untrained.set_state(untrained.get_state()) is untrained
    ols = trainable_regressor(("batch_size", "seq_len", "flops", "mem_bytes"), method="ols", ignored="x")
    y = 1e-3 + 1e-4 * X[:, 2]
    assert ols.fit(X, y).describe() == "OLS" and ols.predict(X) == pytest.approx(y, rel=1e-6)


def test_a_primitive_without_a_kernel_costs_its_measured_dispatch_whatever_its_size():
    """Dropout runs no kernel in inference, but its call takes a few µs at the device's power: trained
    on measured calls it costs their geometric mean at every size; untrained, on calls measured at
    0 J, or restored from a save that kept no dispatch energy, 0 J; a bad saved energy is refused."""
    X = np.array([[8.0, 32.0, 0.0, 1.0], [16.0, 64.0, 0.0, 4.0], [32.0, 128.0, 0.0, 16.0]])
    names = ("batch_size", "seq_len", "flops", "mem_bytes")
    fitted = DispatchEnergyRegressor(names).fit(X, np.array([2e-4, 8e-4, 4e-4]))
    assert fitted.predict(X * 100) == pytest.approx(np.full(3, 4e-4))
    assert "0.4 mJ per call" in fitted.describe()
    restored = DispatchEnergyRegressor(names).set_state(fitted.get_state())
    assert restored.predict(X[:1]) == pytest.approx([4e-4])
    assert DispatchEnergyRegressor(names).fit(X, np.zeros(3)).predict(X).tolist() == [0.0] * 3
    assert DispatchEnergyRegressor(names).set_state({}).predict(X).tolist() == [0.0] * 3
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="dispatch energy"):
            DispatchEnergyRegressor(names).set_state({"energy": bad})


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
