"""Predictor directories: JSON + npz, round trip, and clear errors for bad files."""

import copy
import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

from irene_core.errors import IreneError
from irene_core.predictor import artifacts
from irene_core.predictor.predictor import Predictor
from irene_core.tree.table import TreeTable


@pytest.fixture(scope="module")
def records(device1_records):
    keep = {"bert-base-uncased", "gpt2", "distilgpt2"}
    return [r for r in device1_records if r.model_name in keep and r.batch_size == 8 and r.seq_len in (32, 128, 256)]


@pytest.fixture(scope="module", params=["own-ops", "end2end"])
def saved(request, records, tmp_path_factory):
    config = {"features": "all"} if request.param == "own-ops" else {"preset": "paper"}
    predictor = Predictor(config).fit(records)
    directory = tmp_path_factory.mktemp("pred") / "p"
    predictor.save(directory)
    return predictor, directory


def test_round_trip_predicts_identically(saved, records):
    predictor, directory = saved
    loaded = Predictor.load(directory)
    table = TreeTable.from_records(records)
    for a, b in zip(predictor.predict_table(table), loaded.predict_table(table), strict=True):
        assert np.array_equal(a, b)
    assert (loaded.hardware, loaded.feature_set, loaded.feature_names_) == (
        predictor.hardware,
        predictor.feature_set,
        predictor.feature_names_,
    )
    assert loaded.training_["fingerprint"] == artifacts.fingerprint(table)


def test_files_are_json_and_pickle_free_npz(saved):
    _, directory = saved
    manifest = json.loads((directory / artifacts.MANIFEST).read_text())
    assert manifest["format"] == artifacts.FORMAT and manifest["schema_version"] == artifacts.SCHEMA_VERSION
    assert manifest["config"]["features"] in ("all", "model")
    with np.load(directory / artifacts.ARRAYS, allow_pickle=False) as npz:
        assert npz.files and all(npz[k].dtype != object for k in npz.files)


def _copy(directory, tmp_path):
    target = tmp_path / "copy"
    target.mkdir()
    for name in (artifacts.MANIFEST, artifacts.ARRAYS):
        (target / name).write_bytes((directory / name).read_bytes())
    return target


def test_truncated_manifest(saved, tmp_path):
    target = _copy(saved[1], tmp_path)
    text = (target / artifacts.MANIFEST).read_text()
    (target / artifacts.MANIFEST).write_text(text[: len(text) // 2])
    with pytest.raises(IreneError, match=rf"{artifacts.MANIFEST}: corrupt or truncated JSON"):
        Predictor.load(target)


def test_truncated_arrays(saved, tmp_path):
    target = _copy(saved[1], tmp_path)
    data = (target / artifacts.ARRAYS).read_bytes()
    (target / artifacts.ARRAYS).write_bytes(data[: len(data) // 2])
    with pytest.raises(IreneError, match=rf"{artifacts.ARRAYS}: does not match"):
        Predictor.load(target)


def test_arrays_that_are_not_a_zip_but_match_the_manifest(saved, tmp_path):
    target = _copy(saved[1], tmp_path)
    junk = b"not a zip file"
    (target / artifacts.ARRAYS).write_bytes(junk)
    manifest = json.loads((target / artifacts.MANIFEST).read_text())
    import hashlib

    manifest["arrays_sha256"] = hashlib.sha256(junk).hexdigest()
    (target / artifacts.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IreneError, match=rf"{artifacts.ARRAYS}: unreadable"):
        Predictor.load(target)


def _tampered(directory, tmp_path, array=None, manifest_change=None):
    """A copy of ``directory`` whose first float array is replaced by ``array(old)`` and whose manifest
    is changed by ``manifest_change``, with the npz hash updated so that the hash check passes."""
    target = _copy(directory, tmp_path)
    manifest = json.loads((target / artifacts.MANIFEST).read_text())
    with np.load(target / artifacts.ARRAYS, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    key = next(k for k in sorted(arrays) if arrays[k].dtype.kind == "f" and arrays[k].size > 1)
    if array is not None:
        arrays[key] = array(arrays[key])
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    (target / artifacts.ARRAYS).write_bytes(buffer.getvalue())
    manifest["arrays_sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    if manifest_change is not None:
        manifest_change(manifest)
    (target / artifacts.MANIFEST).write_text(json.dumps(manifest))
    return target, key


def _one_line_error(target):
    with pytest.raises(IreneError) as info:
        Predictor.load(target)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_array_of_the_wrong_shape(saved, tmp_path):
    target, key = _tampered(saved[1], tmp_path, array=lambda a: np.concatenate([a.ravel(), a.ravel()]))
    message = _one_line_error(target)
    assert message.startswith(str(target / artifacts.ARRAYS)) and f"array '{key}' has shape" in message


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_array_with_nan_or_inf(saved, tmp_path, bad):
    def poison(a):
        a = a.copy()
        a.flat[0] = bad
        return a

    target, key = _tampered(saved[1], tmp_path, array=poison)
    message = _one_line_error(target)
    assert message.startswith(str(target / artifacts.ARRAYS)) and f"array '{key}' holds NaN or infinite" in message


def test_invalid_config(saved, tmp_path):
    target, _ = _tampered(saved[1], tmp_path, manifest_change=lambda m: m["config"].update(features="bogus"))
    message = _one_line_error(target)
    assert message.startswith(str(target / artifacts.MANIFEST)) and "config: features: Input should be" in message


def test_foreign_and_future_files(saved, tmp_path):
    target = _copy(saved[1], tmp_path)
    (target / artifacts.MANIFEST).write_text('{"hello": "world"}')
    with pytest.raises(IreneError, match="not an IrEne predictor"):
        Predictor.load(target)
    manifest = json.loads((saved[1] / artifacts.MANIFEST).read_text())
    manifest["schema_version"] = 99
    (target / artifacts.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IreneError, match="schema version 99 is not supported"):
        Predictor.load(target)
    with pytest.raises(IreneError, match="not a predictor directory"):
        Predictor.load(tmp_path / "nowhere")


def test_a_predictor_fitted_on_the_older_power_terms_asks_to_be_trained_again(saved, tmp_path):
    target, _ = _tampered(saved[1], tmp_path, manifest_change=lambda m: m.pop("power_terms"))
    message = _one_line_error(target)
    assert message.startswith(str(target / artifacts.MANIFEST)) and "physical power model is revision 1" in message
    assert "train it again with `irene train`" in message


def test_a_predictor_saved_before_the_floor_rule_says_and_predicts_as_it_did(saved, tmp_path, records):
    """Saved before leaves below their range took the device's launch floor: its config says
    ``below_range: regressor`` (not the field's default) and its leaves predict as their regressors do."""
    predictor, directory = saved

    def older(manifest: dict) -> None:
        manifest["config"].pop("below_range")
        for key in ("below_range", "floor", "lows"):
            manifest["leaves"].pop(key)

    target, _ = _tampered(directory, tmp_path, manifest_change=older)
    loaded = Predictor.load(target)
    assert loaded.config.below_range == "regressor" and loaded.leaves_.floor is None
    table = TreeTable.from_records(records)
    leaf = table.is_leaf
    X = table.features[leaf][:, [table.feature_names.index(f) for f in loaded.feature_names_]]
    work = ("flops", "mem_bytes_moved", "mem_bytes", "times_mean", "gpu_energy_mean")
    X[:, [i for i, f in enumerate(loaded.feature_names_) if f in work]] /= 100  # less work than any trained on
    without_the_rule = copy.copy(predictor.leaves_)
    without_the_rule.floor = None
    types = table.type[leaf]
    assert np.array_equal(loaded.leaves_.predict(X, types), without_the_rule.predict(X, types))
    changed = not np.array_equal(predictor.leaves_.predict(X, types), without_the_rule.predict(X, types))
    assert changed == (predictor.config.below_range == "floor")  # the rule changes what these leaves cost


def test_missing_component_is_reported_with_the_file(saved, tmp_path):
    target = _copy(saved[1], tmp_path)
    manifest = json.loads((target / artifacts.MANIFEST).read_text())
    del manifest["aggregator"]
    (target / artifacts.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IreneError, match=rf"{artifacts.MANIFEST}: incomplete or inconsistent predictor"):
        Predictor.load(target)


def test_regressor_from_an_uninstalled_plugin(saved, tmp_path):
    target = _copy(saved[1], tmp_path)
    manifest = json.loads((target / artifacts.MANIFEST).read_text())
    entry = manifest["leaves"]["primitives"]["Linear"]
    entry["spec"], entry["distribution"] = "QuantumLinear", "irene-primitives-quantum"
    (target / artifacts.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IreneError, match="pip install irene-primitives-quantum"):
        Predictor.load(target)


def test_unfitted_predictor_cannot_save_or_predict(tmp_path, records):
    with pytest.raises(IreneError, match="not trained"):
        Predictor().save(tmp_path / "p")
    with pytest.raises(IreneError, match="not trained"):
        Predictor().predict(records[:1])


def test_save_over_a_file_fails(saved, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(IreneError, match="not a directory"):
        saved[0].save(blocker)


def test_zip_check_is_real(saved):
    assert zipfile.is_zipfile(saved[1] / artifacts.ARRAYS)
