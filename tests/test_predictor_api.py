"""The public predictor API on the paper's data: fit, predict (the tree adds up), fallbacks, errors."""


import numpy as np
import pytest

from irene_core.errors import IreneError
from irene_core.predictor.evaluation import evaluate
from irene_core.predictor.predictor import Predictor
from irene_core.predictor.reconcile import MODULES_ONLY, floor_per_node
from irene_core.tree.schema import OWN_OPS_TYPE, Node
from irene_core.tree.table import TreeTable

TRAIN_MODELS = ("bert-base-uncased", "distilbert-base-uncased", "distilgpt2")


def _subset(records, models, sizes=((8, 32), (8, 128), (16, 64), (24, 256))):
    return [r for r in records if r.model_name in models and (r.batch_size, r.seq_len) in sizes]


@pytest.fixture(scope="module")
def train(device1_records):
    return _subset(device1_records, TRAIN_MODELS)


@pytest.fixture(scope="module")
def test_records(device1_records):
    return _subset(device1_records, ("gpt2", "roberta-base"))


@pytest.fixture(scope="module")
def fitted(train):
    """``fitted(features)``: the predictor of that feature set trained on ``train``, fitted once per module."""
    predictors: dict[str, Predictor] = {}

    def get(features: str) -> Predictor:
        if features not in predictors:
            predictors[features] = Predictor(features=features).fit(train)
        return predictors[features]

    return get


@pytest.fixture(scope="module")
def model_predictor(fitted):
    return fitted("model")


def _assert_adds_up(record, predictor):
    """Parent = Σ children + own ops; own ops ≥ 0 except down to the level's floor (below 1 where training
    measured parents below their children: the paper's models)."""
    table = TreeTable.from_records([record])
    floors = dict(zip((id(n) for n in table.nodes), floor_per_node(table, predictor.floors_), strict=True))
    for node in record.root.walk():
        real = node.real_children()
        if node.synthetic:
            continue
        assert node.predicted_energy is not None and node.predicted_energy >= 0, node.id
        if not real:
            assert node.own_ops() is None
            continue
        own = [c for c in node.children if c.synthetic]
        assert len(own) == 1 and own[0].type == OWN_OPS_TYPE and own[0].level == "ml"
        children = sum(c.predicted_energy for c in real)
        assert own[0].predicted_energy >= (floors[id(node)] - 1.0) * children * (1 + 1e-12)
        total = sum(c.predicted_energy for c in node.children)
        assert node.predicted_energy == pytest.approx(total, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("features", ["model", "all", "no-gpu-energy"])
def test_every_node_predicted_and_tree_adds_up(fitted, test_records, features):
    predictor = fitted(features)
    out = predictor.predict(test_records)
    assert [r.key for r in out] == [r.key for r in test_records]
    # the paper's modules and models measure a few % below their children at the least, each class its own
    assert set(predictor.floors_) == {lv + c for lv in ("module", "model") for c in ("", MODULES_ONLY)}
    assert all(0.9 < floor <= 1.0 for floor in predictor.floors_.values()) and predictor.floors_["model"] < 1.0
    for record in out:
        _assert_adds_up(record, predictor)
        assert record.meta["prediction"]["features"] == features
    # a sane predictor on unseen models: within 15 % per level on this small training set
    report = evaluate(test_records, out)
    assert all(v < 15 for v in report["overall"].values()), report["overall"]


def test_predict_returns_deep_copies(model_predictor, test_records):
    before = [r.model_dump() for r in test_records]
    out = model_predictor.predict(test_records)
    assert [r.model_dump() for r in test_records] == before
    assert out[0].root is not test_records[0].root


def test_predicting_a_predicted_tree_replaces_its_own_ops(model_predictor, test_records):
    once = model_predictor.predict(test_records[:2])
    twice = model_predictor.predict(once)
    for a, b in zip(once, twice, strict=True):
        assert [n.predicted_energy for n in a.root.walk()] == [n.predicted_energy for n in b.root.walk()]
        assert sum(1 for n in b.root.walk() if n.synthetic) == sum(1 for n in a.root.walk() if n.synthetic)


def test_cross_validation_errors_match_evaluate(model_predictor, test_records):
    """The array path used by cross-validation gives what ``predict`` + ``irene evaluate`` give."""
    from irene_core.predictor.crossvalidation import level_errors

    table = TreeTable.from_records(test_records)
    energies, _ = model_predictor.predict_table(table)
    ours = level_errors(table, energies)
    report = evaluate(test_records, model_predictor.predict(test_records))
    assert report["pooled"] == pytest.approx(ours)


def _with_new_leaves(record, leaf_type, flops=5.0, mem=6.0):
    """A copy of ``record`` where every module that has a Linear child gets an extra leaf."""
    copy = record.model_copy(deep=True)
    for i, node in enumerate([n for n in copy.root.walk() if any(c.type == "Linear" for c in n.children)]):
        node.children.append(
            Node(
                id=f"{node.id}/extra{i}",
                scope=f"{node.scope}.extra",
                type=leaf_type,
                level="ml",
                features={"batch_size": record.batch_size, "seq_len": record.seq_len, "flops": flops, "mem_bytes": mem},
            )
        )
    return copy


def test_unknown_primitive_uses_generic_regressor_with_a_notice_per_record(model_predictor, test_records):
    trees = [_with_new_leaves(r, "FancyNewOp") for r in test_records[:3]]
    out = model_predictor.predict(trees)
    again = model_predictor.predict(trees)  # notices are data: every call carries them, not once per process
    for records in (out, again):
        for record in records:
            fancy = [n for n in record.notices if "'FancyNewOp'" in n.message]
            assert len(fancy) == 1 and fancy[0].source == "predictor"
            assert set(fancy[0].nodes) == {n.id for n in record.root.walk() if n.type == "FancyNewOp"}
    extra = [n for r in out for n in r.root.walk() if n.type == "FancyNewOp"]
    assert extra and all(n.predicted_energy > 0 for n in extra)
    table = TreeTable.from_records(trees)
    rows = table.type == "FancyNewOp"
    X = table.features[rows][:, [table.feature_names.index(f) for f in model_predictor.feature_names_]]
    assert model_predictor.raw_estimates(table)[rows] == pytest.approx(model_predictor.leaves_.generic.predict(X))
    for record in out:
        _assert_adds_up(record, model_predictor)


def test_leaves_of_unseen_kinds_are_part_of_their_parents_own_work(model_predictor, test_records):
    """Training trees kept such work in their modules' own ops (as the release keeps GELU), so a
    traced tree's extra leaf must not be counted on top of it: inner nodes' estimates do not move."""
    plain = test_records[0]
    extended = _with_new_leaves(plain, "FancyNewOp")
    raw = []
    for record in (plain, extended):
        table = TreeTable.from_records([record])
        raw.append(
            {n.id: e for n, e in zip(table.nodes, model_predictor.raw_estimates(table), strict=True) if n.children}
        )
    assert raw[1] == pytest.approx(raw[0], rel=1e-12)
    out = model_predictor.predict([extended])[0]
    _assert_adds_up(out, model_predictor)
    assert all(n.predicted_energy > 0 for n in out.root.walk() if n.type == "FancyNewOp")


def test_dropout_costs_nothing_and_does_not_warn(model_predictor, test_records):
    trees = [_with_new_leaves(test_records[0], "Dropout", flops=0.0, mem=0.0)]
    out = model_predictor.predict(trees)
    assert not [n for n in out[0].notices if "Dropout" in n.message]
    dropouts = [n for n in out[0].root.walk() if n.type == "Dropout"]
    assert dropouts and all(n.predicted_energy == 0.0 for n in dropouts)
    _assert_adds_up(out[0], model_predictor)


def test_zero_flops_and_bytes_give_finite_positive_energy(model_predictor, test_records):
    trees = [_with_new_leaves(test_records[0], "LayerNorm", flops=0.0, mem=0.0)]
    out = model_predictor.predict(trees)
    values = [n.predicted_energy for n in out[0].root.walk() if n.id.endswith(tuple(f"/extra{i}" for i in range(100)))]
    assert values and all(np.isfinite(v) and v > 0 for v in values)


def test_missing_feature_is_a_clear_error(fitted, test_records):
    predictor = fitted("all")
    tree = test_records[0].model_copy(deep=True)
    node = next(n for n in tree.root.walk() if n.type == "Softmax")
    del node.features["gpu_energy_mean"]
    with pytest.raises(IreneError, match=r"node '.*Softmax' lacks the feature 'gpu_energy_mean'"):
        predictor.predict([tree])


def test_hardware_and_feature_set(train, model_predictor):
    predictor = Predictor(features="no-gpu-energy", hardware="my rig").fit(train[:2])  # labels: any data will do
    assert predictor.hardware == "my rig" and predictor.feature_set == "no-gpu-energy"
    assert "gpu_energy_mean" not in predictor.feature_names_
    assert model_predictor.hardware == "device_1"  # the records' device


def test_training_report_counts_skips(train):
    tiny = [r.model_copy(deep=True) for r in train]
    for record in tiny:
        for node in record.root.walk():
            if node.type == "Tanh":
                node.type = "RareOp"  # only a handful of rows: below min_rows
            if node.type == "Softmax" and node.scope.endswith("layer.0.attention.self"):
                node.ground_truth_energy = 0.0
    predictor = Predictor(features="model", min_rows=20).fit(tiny)
    report = predictor.training_
    assert report["leaves"]["skipped"] == {"RareOp": sum(1 for r in tiny for n in r.nodes() if n.type == "RareOp")}
    assert report["skipped_nodes"]["zero ground truth"] == sum(
        1 for r in tiny for n in r.nodes() if n.ground_truth_energy == 0.0
    )
    every_node = sum(1 for r in tiny for _ in r.nodes())  # the release has neither
    assert report["dropped_features"] == {"num_parameters": every_node, "mem_bytes_moved": every_node}
    (predicted,) = predictor.predict(tiny[:1])
    assert any("'RareOp'" in n.message for n in predicted.notices)


def test_single_model_and_constant_sizes_train(device1_records):
    one = [r for r in device1_records if r.model_name == "distilgpt2" and r.batch_size == 8 and r.seq_len == 64]
    predictor = Predictor(features="model").fit(one)  # one group, constant batch/seq: no crash
    _assert_adds_up(predictor.predict(one)[0], predictor)


def test_bad_training_input():
    with pytest.raises(IreneError, match="no training records"):
        Predictor().fit([])


def test_training_without_ground_truth_fails(train):
    bare = [r.model_copy(deep=True) for r in train[:2]]
    for record in bare:
        for node in record.root.walk():
            node.ground_truth_energy = None
    with pytest.raises(IreneError, match="positive ground-truth"):
        Predictor(features="model").fit(bare)


def test_config_errors_name_the_field_and_file(tmp_path):
    with pytest.raises(IreneError, match="aggregatorr"):
        Predictor(aggregatorr="end2end")
    bad = tmp_path / "cfg.json"
    bad.write_text('{"features": "everything"}')
    with pytest.raises(IreneError, match=rf"{bad}: features"):
        Predictor(bad)
    bad.write_text("{not json")
    with pytest.raises(IreneError, match="not valid JSON"):
        Predictor(bad)
    good = tmp_path / "paper.json"
    good.write_text('{"preset": "paper", "features": "model"}')
    config = Predictor(good).config
    assert (config.aggregator, config.leaf_method, config.features) == ("end2end", "ols", "model")
