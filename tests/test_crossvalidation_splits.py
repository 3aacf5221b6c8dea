"""Cross-validation splits: the built-ins on a small subset of device_1, split files and their bad
input, leakage, twins, and the log-ridge baseline."""

import json

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from irene_core.errors import IreneError
from irene_core.predictor.crossvalidation import crossvalidate
from irene_core.predictor.predictor import Predictor
from irene_core.predictor.splits import BUILTIN_SPLITS, Side, Split, load_split_file, plan_folds, twin_of
from irene_core.predictor.workers import fold_workers
from irene_core.tracing.bytes_moved import add_bytes_moved
from irene_core.tree.jsonl import write_records
from irene_core.tree.paper_csv import PAPER_MODELS
from irene_core.tree.table import TreeTable

MODELS = ("distilbert-base-uncased", "gpt2", "distilgpt2")
SIZES = {(8, 64), (8, 256), (24, 64), (24, 256)}


@pytest.fixture(scope="module")
def small(device1_records):
    """Three models (one encoder, two decoders) at four sizes: 12 trees."""
    return [r for r in device1_records if r.model_name in MODELS and (r.batch_size, r.seq_len) in SIZES]


def _sides(records, fold):
    return (
        {(r.model_name, r.batch_size, r.seq_len) for r, t in zip(records, fold.train, strict=True) if t},
        {(r.model_name, r.batch_size, r.seq_len) for r, t in zip(records, fold.test, strict=True) if t},
    )


def test_family_is_recorded_by_the_importer(device1_records):
    families = {r.model_name: r.meta["family"] for r in device1_records}
    assert families["roberta-base"] == "encoder" and families["openai-gpt"] == "decoder"
    assert set(families.values()) == {"encoder", "decoder"}


def test_builtin_folds(small):
    plans = {name: plan_folds(split, small, MODELS) for name, split in BUILTIN_SPLITS.items()}
    assert [len(p) for p in plans.values()] == [3, 3, 2, 3, 3, 3]
    train, test = _sides(small, plans["model"][1])
    assert {m for m, _, _ in test} == {"gpt2"} and {m for m, _, _ in train} == {MODELS[0], MODELS[2]}
    assert len(test) == 4 and len(train) == 8
    train, test = _sides(small, plans["twin-out"][1])  # gpt2's twin: distilgpt2 (shares every ml shape)
    assert plans["twin-out"][1].twins == {"gpt2": "distilgpt2"} and {m for m, _, _ in train} == {MODELS[0]}
    train, test = _sides(small, plans["family"][0])
    assert {m for m, _, _ in test} == {MODELS[0]} and {m for m, _, _ in train} == {"gpt2", "distilgpt2"}
    for name, train_sizes, test_sizes in [
        ("extrapolate-batch", {(8, 64), (8, 256)}, {(24, 64), (24, 256)}),
        ("extrapolate-seq", {(8, 64), (24, 64)}, {(8, 256), (24, 256)}),
        ("extrapolate-both", {(8, 64)}, {(24, 256)}),
    ]:
        train, test = _sides(small, plans[name][2])
        assert {m for m, _, _ in test} == {"distilgpt2"} and "distilgpt2" not in {m for m, _, _ in train}
        assert {(b, s) for _, b, s in train} == train_sizes and {(b, s) for _, b, s in test} == test_sizes


@pytest.mark.parametrize("split", list(BUILTIN_SPLITS))
def test_each_builtin_split_runs(small, split):
    result = crossvalidate(small, {"features": "model", "leaf_method": "ols"}, MODELS, split=split)
    assert sorted(f.left_out for f in result.folds) == sorted(MODELS)
    for fold in result.folds:
        assert all(isinstance(fold.errors[lv], float) and fold.errors[lv] >= 0 for lv in ("ml", "module", "model"))
    assert result.overall["model"] == pytest.approx(np.mean([f.errors["model"] for f in result.folds]))
    report = result.as_json()
    assert report["worst_model"] == {"name": max(result.folds, key=lambda f: f.errors["model"]).left_out,
                                     "error": result.worst_model}
    assert ("twins" in report) == (split == "twin-out")
    tested = [r for fold in plan_folds(BUILTIN_SPLITS[split], small, MODELS) for r, t in zip(small, fold.test,
                                                                                             strict=True) if t]
    assert sum(t["n"] for t in report["per_type"].values()) == sum(
        1 for r in tested for n in r.nodes() if n.ground_truth_energy
    )


def test_folds_trained_side_by_side_score_as_one_after_the_other(small):
    """Worker processes (``--jobs``) train the folds: each fold goes to them, and every score is the
    sequential run's."""
    config = {"features": "model", "leaf_method": "ols"}
    alone = crossvalidate(small, config, MODELS, split="twin-out")
    with fold_workers(2) as workers:
        submit, submitted = workers.submit, []
        workers.submit = lambda *a, **k: submitted.append(a) or submit(*a, **k)  # type: ignore[method-assign]
        together = crossvalidate(small, config, MODELS, split="twin-out", executor=workers)
    assert len(submitted) == len(together.folds) == 3
    assert [(f.left_out, f.errors) for f in together.folds] == [(f.left_out, f.errors) for f in alone.folds]
    assert together.type_errors == alone.type_errors and together.coverage_counts == alone.coverage_counts
    assert together.twins == alone.twins


def test_lomo_scores_each_model_on_its_own_nodes(small):
    result = crossvalidate(small, {"features": "model", "leaf_method": "ols"}, MODELS[1:], split="model")
    table = TreeTable.from_records([r for r in small if r.model_name in MODELS[1:]])
    held = np.array([r.model_name == "gpt2" for r in table.records])
    predictor = Predictor({"features": "model", "leaf_method": "ols"}).fit_table(table.subset(~held))
    predicted = predictor.predict([r for r in table.records if r.model_name == "gpt2"])
    errors = [
        100 * abs(n.predicted_energy - n.ground_truth_energy) / n.ground_truth_energy
        for r in predicted for n in r.nodes() if n.level == "model"
    ]
    assert result.folds[0].left_out == "gpt2" and result.folds[0].errors["model"] == pytest.approx(np.mean(errors))
    widths = [(n.predicted_high - n.predicted_low) / n.predicted_energy
              for r in predicted for n in r.nodes() if n.level == "model"]
    assert result.interval_widths["model"][: len(widths)] == pytest.approx(widths)
    assert result.width["model"] == pytest.approx(100 * np.median(result.interval_widths["model"]))


def test_a_tree_without_a_feature_of_the_set_drops_it_from_every_fold(small):
    """A tree of a model no framework builds has no ``mem_bytes_moved``: the fold that tests it, whose
    training trees have it, predicts it without (as every fold does), instead of failing on it."""
    traced = [r.model_copy(deep=True) for r in small]
    add_bytes_moved(traced)
    without = [r.model_copy(deep=True) for r in traced]
    for record in without:
        if record.model_name == "gpt2":
            for node in record.nodes():
                del node.features["mem_bytes_moved"]
    config = {"features": "model", "leaf_method": "ols"}
    result = crossvalidate(without, config, MODELS, split="model")
    assert set(result.config.exclude_features) == {"num_parameters", "mem_bytes_moved"}
    assert [f.left_out for f in result.folds] == list(MODELS)
    assert all(isinstance(f.errors[lv], float) for f in result.folds for lv in ("ml", "module", "model"))
    with_bytes = crossvalidate(traced, config, MODELS)  # every tree has them: they are used
    assert with_bytes.config.exclude_features == ["num_parameters"]
    assert [f.errors for f in result.folds] != [f.errors for f in with_bytes.folds]


def test_twin_choice_and_ties():
    shapes = {"a": {1, 2, 3}, "b": {1, 2}, "c": {2, 3}, "d": {1}}
    assert twin_of("a", ["d", "c", "b"], shapes) == "b"  # b and c share two shapes: the first name wins
    assert twin_of("a", ["d", "c"], shapes) == "c"


def test_twins_of_the_paper_models(device1_records):
    records = [r for r in device1_records if r.model_name in PAPER_MODELS]
    folds = plan_folds(BUILTIN_SPLITS["twin-out"], records, PAPER_MODELS)
    twins = {k: v for fold in folds for k, v in fold.twins.items()}
    # openai-gpt shares all its shapes with gpt2 and with distilgpt2: the tie goes to the first name
    assert twins == {"bert-base-uncased": "roberta-base", "distilbert-base-uncased": "bert-base-uncased",
                     "roberta-base": "bert-base-uncased", "gpt2": "distilgpt2", "distilgpt2": "gpt2",
                     "openai-gpt": "distilgpt2"}


ISSUE_EXAMPLE = {
    "splits": [
        {"name": "longer sequences", "leave_one_model_out": True,
         "train": {"seq_len": [None, 128]}, "test": {"seq_len": [256, None]}},
        {"name": "to gpt2", "train": {"models": ["bert-base-uncased", "distilgpt2"]},
         "test": {"models": ["gpt2"], "batch_size": [24, None], "tokens": [4096, None]}},
    ]
}


def _write(tmp_path, document):
    path = tmp_path / "splits.json"
    path.write_text(json.dumps(document))
    return path


def test_split_file(tmp_path, small, device1_records):
    splits = load_split_file(_write(tmp_path, ISSUE_EXAMPLE))
    assert splits == [
        Split("longer sequences", Side(seq_len=(None, 128)), Side(seq_len=(256, None)), "model"),
        Split("to gpt2", Side(models=("bert-base-uncased", "distilgpt2")),
              Side(models=("gpt2",), batch_size=(24, None), tokens=(4096, None))),
    ]
    fold = plan_folds(splits[1], device1_records, ("bert-base-uncased", "gpt2", "distilgpt2"))[0]
    train, test = _sides(device1_records, fold)
    assert {m for m, _, _ in train} == {"bert-base-uncased", "distilgpt2"} and len(train) == 56
    assert test and all(m == "gpt2" and b >= 24 and b * s >= 4096 for m, b, s in test)
    assert {(b, s) for _, b, s in test} == {(24, 192), (24, 224), (24, 256)}  # gpt2 lacks batch 32 at seq >= 128


def test_a_key_of_several_ranges_selects_trees_in_any_of_them(tmp_path, device1_records):
    """Between the training sizes: trained on batch ≤ 8 and ≥ 32, tested on 16 to 24."""
    between = {"name": "between", "leave_one_model_out": True,
               "train": {"batch_size": [[None, 8], [32, None]]}, "test": {"batch_size": [16, 24]}}
    (split,) = load_split_file(_write(tmp_path, {"splits": [between]}))
    assert split.train == Side(batch_size=((None, 8), (32, None)))
    fold = plan_folds(split, device1_records, MODELS)[0]
    train, test = _sides(device1_records, fold)
    assert {b for _, b, _ in train} == {8, 32} and {b for _, b, _ in test} == {16, 24}


LOMO_SEQ = {
    "name": "s", "leave_one_model_out": True, "train": {"seq_len": [None, 64]}, "test": {"seq_len": [256, None]}
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"shuffle": True}, "split 's': unknown key 'shuffle'"),
        ({"train": {"seq_len": [None, 64], "layers": [1, 2]}}, "split 's': train: unknown key 'layers'"),
        ({"test": {"seq_len": [512, 256]}}, "split 's': test.seq_len: range [512, 256] is reversed"),
        ({"test": {"seq_len": [256]}}, "split 's': test.seq_len: must be [low, high]"),
        ({"test": {"seq_len": [[256, None], [64]]}}, "split 's': test.seq_len[1]: must be [low, high]"),
        ({"test": {"seq_len": [[256, None], [200, 100]]}}, "split 's': test.seq_len[1]: range [200, 100] is reversed"),
        ({"train": {"batch_size": [None, 4]}}, "split 's': train: selects no trees"),
        ({"test": {"tokens": [10**6, None]}}, "split 's': test: selects no trees"),
        ({"test": {"models": ["roberta-base"]}}, "split 's': test.models: roberta-base not in the experiment"),
        ({"train": {"models": []}}, "split 's': train.models: must be a non-empty list"),
        ({"leave_one_model_out": "yes"}, "split 's': leave_one_model_out: must be true or false"),
        ({"leave_one_model_out": False, "train": {"seq_len": [None, 256]}}, "split 's': train/test: 3 tree(s) on both "
         "sides (leakage), e.g. distilbert-base-uncased batch 8 seq 256"),
    ],
)
def test_bad_split_files(tmp_path, small, change, message):
    entry = {**LOMO_SEQ, **change}
    with pytest.raises(IreneError) as caught:
        for split in load_split_file(_write(tmp_path, {"splits": [entry]})):
            plan_folds(split, [r for r in small if r.batch_size == 8], MODELS)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_bad_split_file_shapes(tmp_path):
    for document, message in [
        ({"splits": []}, "splits: the list is empty"),
        ({"split": []}, 'a split file is an object with one key, "splits"'),
        ({"splits": [{"train": {}, "test": {}}]}, "split 1: name: a split needs a non-empty string name"),
        ({"splits": [{"name": "x", "test": {}}]}, "split 'x': train: missing"),
    ]:
        with pytest.raises(IreneError, match=message):
            load_split_file(_write(tmp_path, document))


def test_family_needs_the_family_of_every_tree(small):
    stripped = [r.model_copy(update={"meta": {}}) for r in small]
    with pytest.raises(IreneError, match=r"split 'family': meta\.family: missing on trees of distilbert-base-uncased"):
        plan_folds(BUILTIN_SPLITS["family"], stripped, MODELS)


def test_every_split_is_planned_before_any_trains(cli_main, small, tmp_path, monkeypatch):
    """A split that cannot be made (no family on the trees) stops the command before the splits
    ahead of it spend their minutes."""
    records = [r.model_copy(deep=True) for r in small]
    add_bytes_moved(records)  # traced here, so the command adds nothing (a trace would give each its family)
    for record in records:
        record.meta = {}
    data = tmp_path / "no-family.jsonl"
    write_records(data, records)
    trained = []
    monkeypatch.setattr(Predictor, "fit_table", lambda self, table: trained.append(table))
    proc = cli_main("crossvalidate", str(data), "--models", ",".join(MODELS), "--split", "model", "--split", "family",
                    check=False)
    assert proc.returncode == 1 and not trained and proc.stdout == ""
    assert proc.stderr.startswith("error: split 'family': meta.family: missing on trees of ")


def test_split_all_skips_the_built_ins_the_data_cannot_make(cli_main, small, tmp_path):
    """Measured at batch 8 only, no tree lies beyond batch 16: ``all`` runs the other built-ins and says
    which it skipped and why; named, such a split is an error."""
    data = tmp_path / "batch-8.jsonl"
    write_records(data, [r for r in small if r.batch_size == 8])
    args = ("crossvalidate", str(data), "--models", ",".join(MODELS), "--features", "model", "--config", "log-ridge")
    proc = cli_main(*args, "--split", "all", "--json")
    report = json.loads(proc.stdout)
    assert [s["name"] for s in report["splits"]] == ["model", "twin-out", "family", "extrapolate-seq"]
    assert set(report["skipped"]) == {"extrapolate-batch", "extrapolate-both"}
    assert report["skipped"]["extrapolate-batch"].startswith("split 'extrapolate-batch': test: selects no trees")
    assert proc.stderr.splitlines() == [f"warning: {report['skipped'][name]} (skipped by --split all)"
                                        for name in ("extrapolate-batch", "extrapolate-both")]
    named = cli_main(*args, "--split", "all", "--split", "extrapolate-batch", check=False)
    assert named.returncode == 1 and named.stderr.strip() == f"error: {report['skipped']['extrapolate-batch']}"


def test_crossvalidate_cli_json_and_errors(cli_main, small, tmp_path):
    data = tmp_path / "small.jsonl"
    write_records(data, small)
    path = _write(tmp_path, {"splits": [LOMO_SEQ]})
    proc = cli_main("crossvalidate", str(data), "--models", ",".join(MODELS), "--features", "model",
                    "--config", "log-ridge", "--split", "twin-out", "--split-file", str(path), "--json", "--jobs", "2")
    report = json.loads(proc.stdout)
    assert proc.stderr == ""  # the baseline's overflowed estimates (inf) say nothing there
    assert report["schema"] == 2 and [s["name"] for s in report["splits"]] == ["twin-out", "s"]
    twin, lomo = report["splits"]
    assert set(twin) == {"name", "features", "overall", "worst_model", "per_model", "per_type", "coverage", "twins",
                         "seconds"}
    assert set(lomo) == set(twin) - {"twins"} and twin["twins"]["gpt2"] == "distilgpt2"
    assert twin["features"] == "model" and set(twin["per_model"]) == set(MODELS)
    assert set(twin["overall"]) == set(twin["coverage"]) == {"ml", "module", "model"}
    assert set(twin["worst_model"]) == {"name", "error"} and set(twin["per_type"]["Conv1D"]) == {"n", "error"}
    proc = cli_main("crossvalidate", str(data), "--jobs", "0", check=False)
    assert proc.returncode == 2 and "Invalid value for '--jobs': 0 is not in the range x>=1" in proc.stderr
    bad = _write(tmp_path, {"splits": [{**LOMO_SEQ, "test": {"seq_len": [300, 200]}}]})
    proc = cli_main("crossvalidate", str(data), "--split-file", str(bad), check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: split 's': test.seq_len: range [300, 200] is reversed"
    bad = _write(tmp_path, {"splits": [{**LOMO_SEQ, "test": {"seq_len": [[300, None], [200]]}}]})
    proc = cli_main("crossvalidate", str(data), "--split-file", str(bad), check=False)  # brackets are not markup
    assert proc.stderr.strip() == ("error: split 's': test.seq_len[1]: must be [low, high] (inclusive; null = open) "
                                   "or a list of such ranges")
    leaking = _write(tmp_path, {"splits": [{"name": "s", "train": {"seq_len": [None, 64]},
                                            "test": {"seq_len": [64, None]}}]})
    proc = cli_main("crossvalidate", str(data), "--split-file", str(leaking), check=False)  # found while folding
    assert proc.returncode == 1 and proc.stderr.startswith("error: split 's': train/test: ")
    assert proc.stderr.count("\n") == 1  # the error only: no line left by the progress bar


# -- the log-ridge baseline -------------------------------------------------------------------------
def _direct_log_ridge(train, test, rows_train, rows_test):
    """The baseline as the issue defines it, for one group of rows, with model features."""

    def features(table, rows):
        f, m = np.log1p(table.column("flops")[rows]), np.log1p(table.column("mem_bytes")[rows])
        b, s = np.log(table.column("batch_size")[rows]), np.log(table.column("seq_len")[rows])
        return np.column_stack([f, m, b, s, f**2, m**2, f * m])

    model = make_pipeline(StandardScaler(), Ridge(alpha=1e-2))
    model.fit(features(train, rows_train), np.log(train.truth[rows_train]))
    return np.exp(model.predict(features(test, rows_test)))


def test_log_ridge_is_the_defined_baseline(small, tmp_path):
    held = [r.model_copy(deep=True) for r in small if r.model_name == "gpt2"]
    for node in (n for r in held for n in r.nodes() if n.type == "Softmax"):
        node.type = "UnseenOp"  # a kind absent from training: predicted by the fit on all leaves
    train = TreeTable.from_records([r for r in small if r.model_name != "gpt2"])
    test = TreeTable.from_records(held)
    predictor = Predictor("log-ridge", features="model").fit_table(train)
    raw = predictor.raw_estimates(test)
    good = train.truth > 0
    train_kinds = predictor.leaves_.canonical_array(train.type)
    test_kinds = predictor.leaves_.canonical_array(test.type)
    groups = [(good & (train.level == lv), test.level == lv) for lv in ("module", "model")]
    for kind in set(test_kinds[test.level == "ml"]):
        rows = good & (train.level == "ml") & (train_kinds == kind)
        groups.append((rows if kind != "UnseenOp" else good & (train.level == "ml"), test_kinds == kind))
    assert not (good & (train_kinds == "UnseenOp")).any() and len(groups) >= 6
    for rows_train, rows_test in groups:
        np.testing.assert_allclose(raw[rows_test], _direct_log_ridge(train, test, rows_train, rows_test), rtol=1e-9)
    root = predictor.predict(test.records)[0].root
    assert root.predicted_energy == pytest.approx(raw[0])  # reconcile 'none': the raw estimates are kept
    predictor.save(tmp_path / "lr")
    np.testing.assert_allclose(Predictor.load(tmp_path / "lr").raw_estimates(test), raw, rtol=1e-12)
