"""Leaf regressors beyond the training range: a power law in the work, chosen on folds that leave out
the largest sizes as well as models, and below it the device's launch floor plus the edge's excess
scaled with the work; their state round-trips through saved arrays."""

from __future__ import annotations

import numpy as np
import pytest

from irene_core.predictor import artifacts, estimators
from irene_core.predictor.design import bounded, feature_names, power_terms
from irene_core.predictor.estimators import (
    KernelSmoother,
    RelativeLinear,
    Ridge,
    ShapeIndex,
    cluster_folds,
    range_folds,
    smooth,
    unique_rows,
)
from irene_core.predictor.leaf_models import LeafModels
from irene_core.predictor.leaf_regressor import LeafRegressor
from irene_core.tree.table import TreeTable

NAMES = ("batch_size", "seq_len", "flops", "mem_bytes")


@pytest.fixture(scope="module")
def leaves(device1_records):
    """``{type: (X, energy, model, seq)}`` of the paper models' leaves (bert held out of training)."""
    table = TreeTable.from_records([r for r in device1_records if r.model_name != "sshleifer/tiny-ctrl"])
    X = np.column_stack([table.column(n) for n in NAMES])
    out = {}
    for kind in ("MatMul", "Softmax", "Linear", "LayerNorm"):
        rows = table.is_leaf & (table.type == kind) & (table.truth > 0)
        out[kind] = (X[rows], table.truth[rows], table.model_name[rows])
    return out


def test_quadratic_terms_continue_along_the_tangent_beyond_the_range():
    low, high = np.array([0.0, 0.0]), np.array([1.0, 1.0])
    inside = np.array([[0.5, 0.25]])
    beyond = np.array([[3.0, 0.5]])  # z₀ beyond the edge: z₀² → 1 + 2(3 − 1), z₀z₁ → 0.5 + 0.5(3 − 1)
    assert bounded(inside, low, high, 2) == pytest.approx(np.array([[0.5, 0.25, 0.25, 0.125, 0.0625]]))
    assert bounded(beyond, low, high, 2) == pytest.approx(np.array([[3.0, 0.5, 5.0, 1.5, 0.25]]))
    assert bounded(np.array([[-2.0, 0.5]]), low, high, 1) == pytest.approx(np.array([[0.0, 0.5]]))  # floor below
    # a column that does not continue (one training never varied) is held at the edge above too: z₁ = 2 → 1
    held = bounded(np.array([[3.0, 2.0]]), low, high, 2, np.array([True, False]))
    assert held == pytest.approx(np.array([[3.0, 1.0, 5.0, 3.0, 1.0]]))


def test_a_busier_machine_than_training_saw_is_held_at_its_edge():
    """Host memory at 5 % on every training row (a run's state, not its work): a log-space fit may give it
    any slope, and products of it with the work are the work's own.  A call at 13.5 % costs what the same
    call at 5 % does, inside the training work and beyond it (device_2, no GPU energy: OpenAI GPT's
    layer norms came out 21 % low)."""
    names = ("batch_size", "seq_len", "flops", "mem")
    batch, seq, scale = (a.ravel() for a in np.meshgrid([8.0, 16.0, 24.0], [32.0, 64.0, 128.0], [1.0, 2.0, 3.0]))
    X = np.column_stack([batch, seq, batch * seq * scale, np.full(len(batch), 5.0)])
    regressor = LeafRegressor(names, degrees=(2,), power_alphas=()).fit(X, X[:, 2] ** 0.8 / 1e3)
    assert regressor.candidate_.kind == "log"
    queries = X[[0, -1]] * np.array([[1, 1, 1, 1], [1, 1, 4, 1]])  # inside the work, and 4× beyond it
    busier = queries * [1, 1, 1, 13.5 / 5.0]
    assert regressor.predict(busier) == pytest.approx(regressor.predict(queries), rel=1e-9)


@pytest.mark.parametrize("power", [3.0, -1.0])
def test_beyond_its_range_a_log_space_leaf_grows_at_most_as_its_work_and_never_falls(power):
    """A log-space fit may have any slope at the edge of a few rows (trained on one tree of each of six
    models, an Embedding grew as the 20th power of its bytes: 10¹¹ J roots); beyond the training range
    k times the work costs between the edge's energy and k times it, whatever the fit says."""
    batch, seq, scale = (a.ravel() for a in np.meshgrid([8.0, 16.0, 24.0], [32.0, 64.0], [1.0, 2.0, 3.0, 4.0]))
    X = np.column_stack([batch, seq, batch * seq * scale])
    regressor = LeafRegressor(("batch_size", "seq_len", "flops")).fit(X, X[:, 2] ** power / 1e6)
    assert regressor.predict(X) == pytest.approx(X[:, 2] ** power / 1e6, rel=0.1)  # the fit itself is good
    edge = X[np.argmax(X[:, 2])]
    ratio = regressor.predict(np.array([edge * [1, 1, 10], edge * [1, 1, 1.5]])) / regressor.predict(edge[None, :])
    assert ratio == pytest.approx([10.0, 1.5] if power > 1 else [1.0, 1.0], rel=0.01)


def test_without_a_range_fold_only_the_physical_candidates_are_offered():
    """Rows of one batch size and one sequence length give no fold that leaves out sizes, so none can
    judge how a log-space fit continues beyond them: a cubic trend in the flops, which a log-space fit
    matches exactly, is then fitted by the physical model, whether folds by model compare candidates
    or none does; with three batch sizes it is not."""
    def fitted(batches: list[float], models: int) -> LeafRegressor:  # each model has every row
        batch, scale, model = (a.ravel() for a in np.meshgrid(batches, np.arange(1.0, 9.0), np.arange(models)))
        X = np.column_stack([batch, np.full(len(batch), 64.0), batch * 64.0 * scale])
        return LeafRegressor(("batch_size", "seq_len", "flops")).fit(X, X[:, 2] ** 3 / 1e9, model)

    for regressor, kind in ((fitted([8.0], 2), "power"), (fitted([8.0], 1), "power"),
                            (fitted([8.0, 16.0, 24.0], 2), "log")):
        assert regressor.candidate_ is not None and regressor.candidate_.kind == kind


def test_range_folds_that_never_reach_more_work_offer_only_the_physical_candidates():
    """Three batch sizes and three sequence lengths, all of 2,048 tokens (as the H200's trees): a range
    fold holds out the largest batch or the longest sequences, but no more work than it trains on, so
    none judges how a log-space fit continues beyond the work (on the H200, a ``Conv1D``'s fit ran flat,
    6× low at 8,192 tokens): only the physical candidates are offered.  Where the held-out sizes do more
    work, a cubic trend in the flops is fitted in log space."""
    def fitted(more_work: bool) -> LeafRegressor:
        batch, scale, model = (a.ravel() for a in np.meshgrid([8.0, 16.0, 32.0], np.arange(1.0, 9.0), [0.0, 1.0]))
        seq = 2048.0 / batch
        X = np.column_stack([batch, seq, 2048.0 * scale * (batch / 8.0 if more_work else 1.0)])
        return LeafRegressor(("batch_size", "seq_len", "flops")).fit(X, X[:, 2] ** 3 / 1e12, model)

    for regressor, kind in ((fitted(False), "power"), (fitted(True), "log")):
        assert regressor.candidate_ is not None and regressor.candidate_.kind == kind


def test_range_folds_leave_out_the_largest_sizes():
    sizes = np.array([[8, 32], [16, 64], [24, 128], [32, 256], [8, 256]], float)
    (train_b, valid_b), (_, valid_s) = range_folds(sizes)
    assert valid_b.tolist() == [False, False, False, True, False]  # top third of {8, 16, 24, 32}: 32
    assert valid_s.tolist() == [False, False, False, True, True]  # of {32, 64, 128, 256}: 256
    assert (train_b == ~valid_b).all() and list(range_folds(np.array([[1.0], [2.0]]))) == []


def test_distinct_rows_pool_what_numpy_pools():
    """Rows equal in value pool (``-0.0`` with ``0.0``), rows differing in any column do not, and
    each row maps to its distinct row's first occurrence, as ``np.unique(axis=0)`` groups them."""
    rows = np.array([[1.0, 2.0], [0.0, 5.0], [1.0, 2.0], [-0.0, 5.0], [1.0, 2.0000001], [0.0, 5.0]])
    first, inverse = unique_rows(rows)
    assert len(first) == 3 and sorted(first) == [0, 1, 4]
    np.testing.assert_array_equal(rows[first][inverse], rows + 0.0)
    _, expected = np.unique(rows, axis=0, return_inverse=True)
    assert len(set(zip(inverse, expected.ravel(), strict=True))) == 3  # the same partition


def test_a_residual_smoother_says_nothing_beyond_the_keys_it_was_trained_on():
    """Inside the training keys' range the smoother returns the residual measured there; one step
    beyond the largest key in any column (however close, however many rows sit at the edge) nothing,
    so the smoothed model's own trend extrapolates; cross-validation's kernels agree."""
    keys = np.array([[b, s] for b in (1.0, 2.0, 3.0) for s in (5.0, 6.0)] * 50)  # 50 repeats at each key
    residuals = np.where(keys[:, 0] == 3.0, 0.2, 0.0)  # the largest batch measured 20 % above the trend
    smoother = KernelSmoother(bandwidth=0.3, shrinkage=0.1).fit(keys, residuals)
    queries = np.array([[3.0, 5.0], [2.9, 5.5], [3.05, 5.0], [3.0, 6.1], [0.9, 5.0]])
    corrections = smoother.predict(queries)
    assert corrections[0] == pytest.approx(0.2, abs=0.02) and 0.05 < corrections[1] < 0.2
    assert corrections[2:].tolist() == [0.0, 0.0, 0.0]
    index = ShapeIndex(keys)
    kernel = index.kernels(queries, [0.3])[0.3]
    assert smooth(kernel, index.sums(residuals), index.counts, 0.1) == pytest.approx(corrections)


def test_cluster_folds_leave_out_look_alikes_together_and_keep_two_models_to_train_on():
    groups = np.array(["bert", "roberta", "bert", "distilbert", "gpt2", "distilgpt2", "openai-gpt"], dtype=object)
    clusters = {"bert": 0, "roberta": 0, "distilbert": 1, "gpt2": 2, "distilgpt2": 2, "openai-gpt": 3}
    folds = list(cluster_folds(groups, clusters))
    assert [valid.tolist() for _, valid in folds] == [  # the singletons are group folds already
        [True, True, True, False, False, False, False],
        [False, False, False, False, True, True, False],
    ]
    assert all((train == ~valid).all() for train, valid in folds)
    encoders = groups[:4]  # leaving out BERT + RoBERTa would train on DistilBERT alone
    assert list(cluster_folds(encoders, clusters)) == []


@pytest.mark.parametrize("kind", ["MatMul", "Softmax", "Linear", "LayerNorm"])
def test_longer_sequences_than_any_trained_on(leaves, kind):
    """Trained on seq ≤ 128 of five models, bert's leaves at seq 256 (twice the longest, up to 4×
    the flops; the previous clamped quadratic predicted bert's MatMul five orders too low) come
    within 40 %, and from seq 128 to 256 the energy grows as a power of the work between ½ and 1."""
    X, y, model = leaves[kind]
    train = (model != "bert-base-uncased") & (X[:, 1] <= 128)
    test = (model == "bert-base-uncased") & (X[:, 1] == 256)
    regressor = LeafRegressor(NAMES).fit(X[train], y[train], model[train])
    assert np.median(np.abs(regressor.predict(X[test]) / y[test] - 1)) < 0.4
    small = (model == "bert-base-uncased") & (X[:, 1] == 128) & (X[:, 0] == 8)
    big = test & (X[:, 0] == 8)
    work = X[big, 2].mean() / X[small, 2].mean()
    growth = regressor.predict(X[big]).mean() / regressor.predict(X[small]).mean()
    assert work**0.5 <= growth <= 1.1 * work


def test_state_round_trips_through_saved_arrays(leaves, tmp_path):
    X, y, model = leaves["Softmax"]
    regressor = LeafRegressor(NAMES).fit(X, y, model)
    artifacts.save(tmp_path, {"state": regressor.get_state()})
    restored = LeafRegressor(NAMES).set_state(artifacts.load(tmp_path)["state"])
    assert not list(tmp_path.glob("*.pkl"))
    assert restored.work_ == regressor.work_ == [2, 3]  # flops and bytes: not batch and sequence length
    probe = X[::50] * np.array([1.0, 2.0, 4.0, 4.0])  # beyond the range too
    assert np.array_equal(restored.predict(probe), regressor.predict(probe))


def test_states_saved_before_work_columns_use_every_column(leaves):
    X, y, model = leaves["Softmax"]
    state = LeafRegressor(NAMES).fit(X, y, model).get_state()
    del state["work"]
    assert LeafRegressor(NAMES).set_state(state).work_ == [0, 1, 2, 3]


def test_the_physical_model_counts_busy_utilisations_not_host_memory_occupancy():
    names = ("flops", "times_mean", "cpu", "mem", "gpu", "gpu_mem", "gpu_clk")
    base = np.array([[1e9, 0.01, 20.0, 30.0, 80.0, 40.0, 1500.0]])
    other_run = base.copy()
    other_run[0, names.index("mem")] = 70.0  # the same work after other runs filled the host's memory
    busier = base.copy()
    busier[0, names.index("cpu")] = 60.0
    assert np.array_equal(power_terms(base, names), power_terms(other_run, names))
    assert not np.array_equal(power_terms(base, names), power_terms(busier, names))


def test_a_physical_power_model_never_trades_one_terms_energy_against_anothers(monkeypatch):
    """A busy GPU's utilisation is near 100 % on every training row, so time and time × utilisation are
    collinear: the free fit pays a negative power per utilisation with more power at rest, which holds
    on the training rows and drifts on a lightly loaded kernel; the non-negative fit cannot."""
    rng = np.random.default_rng(0)
    t, u = rng.uniform(1e-3, 1e-2, 400), rng.uniform(0.95, 1.0, 400)
    X = np.column_stack([t, t * u, np.ones(400)])  # power at rest, power per utilisation, launch floor
    y = 300.0 * t * (1.0 + 0.02 * rng.normal(size=400))  # 300 W whatever the utilisation
    free, physical = RelativeLinear(1e-8).fit(X, y), RelativeLinear(1e-8, nonnegative=True).fit(X, y)
    assert free.coef[1] < 0 <= physical.coef.min()
    assert np.mean(np.abs(physical.predict(X) / y - 1)) < 1.01 * np.mean(np.abs(free.predict(X) / y - 1))
    light = np.array([[5e-3, 5e-3 * 0.5, 1.0]])  # half as busy: still 300 W × 5 ms = 1.5 J
    assert abs(physical.predict(light)[0] / 1.5 - 1) < abs(free.predict(light)[0] / 1.5 - 1)
    # where every term draws energy the two fits agree, and the constraint survives a save
    exact = 200.0 * t + 100.0 * t * u + 1e-4
    assert RelativeLinear(1e-8, nonnegative=True).fit(X, exact).coef == pytest.approx([200.0, 100.0, 1e-4], rel=1e-3)
    assert RelativeLinear.from_state(physical.get_state()).nonnegative
    # an active set that does not settle falls back to the interior-point solver, still ≥ 0
    monkeypatch.setattr(estimators, "nnls", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("cycled")))
    fallback = RelativeLinear(1e-8, nonnegative=True).fit(X, y)
    assert fallback.coef.min() >= 0 and fallback.predict(X) == pytest.approx(physical.predict(X), rel=1e-3)
    # the leaf regressor offers both to its cross-validation
    names = ("flops", "times_mean", "gpu", "gpu_clk")
    offered = [c for c in LeafRegressor(names)._candidates() if c.kind == "power"]
    assert {c.nonnegative for c in offered} == {False, True}


def test_ridge_is_scikit_learns_on_standardised_columns_and_unpenalised_takes_the_least_norm_solution():
    """A penalised fit solves its normal equations directly: it is scikit-learn's ridge on the columns
    standardised by their weighted mean and spread, with the penalty per unit of normalised weight.
    Unpenalised, collinear columns (a duplicated one) leave the equations singular: least squares
    shares the coefficient between them."""
    from sklearn.linear_model import Ridge as SkRidge

    rng = np.random.default_rng(1)
    X, w = rng.normal(size=(60, 3)) * [1.0, 10.0, 0.1], rng.uniform(0.5, 2.0, 60)
    y = X @ [1.0, -0.2, 5.0] + 0.7 + 0.1 * rng.normal(size=60)
    ours = Ridge(0.3).fit(X, y, w)
    p = w / w.sum()
    Z = (X - p @ X) / np.sqrt(p @ (X - p @ X) ** 2)
    theirs = SkRidge(alpha=0.3).fit(Z, y, sample_weight=p)
    assert ours.predict(X) == pytest.approx(theirs.predict(Z), rel=1e-9)
    twice = np.column_stack([X[:, 0], X[:, 0]])
    exact = Ridge(0.0).fit(twice, 3.0 * X[:, 0] + 1.0)
    assert exact.coef == pytest.approx([1.5, 1.5]) and exact.intercept == pytest.approx(1.0)


#: The predictor's ``all`` features that device_1's release has on every node (no parameter counts).
ALL_FEATURES = tuple(f for f in feature_names("all", "mem_bytes_moved") if f != "num_parameters")


@pytest.fixture(scope="module")
def measured(device1_paper_records):
    """``(X, energy, type, model, leaf)`` of device_1's six models with every feature."""
    table = TreeTable.from_records(device1_paper_records)
    X = np.column_stack([table.column(n) for n in ALL_FEATURES])
    return X, table.truth, table.type, table.model_name, table.is_leaf & (table.truth > 0)


def test_with_the_gpus_own_energy_a_leaf_beyond_its_range_follows_the_metered_wall_energy_model(measured):
    """E ≈ a·E_gpu + p₀·t: trained on batch ≤ 16 and sequence ≤ 128 of five models, BERT's LayerNorm
    leaves at batch ≥ 24 and sequence ≥ 160 come within 0.5 % on average (the full wall-energy model,
    whose launch floor and utilisations fit the smallest shapes, came out 1.8 % low); offered only
    where both the GPU's energy and the time are features."""
    X, y, kind, model, leaf = measured
    b, s = X[:, 0], X[:, 1]
    rows = leaf & (kind == "LayerNorm")
    train = rows & (model != "bert-base-uncased") & (b <= 16) & (s <= 128)
    test = rows & (model == "bert-base-uncased") & (b >= 24) & (s >= 160)
    regressor = LeafRegressor(ALL_FEATURES).fit(X[train], y[train], model[train])
    assert regressor.candidate_ is not None and regressor.candidate_.kind == "metered"
    assert abs(np.mean(regressor.predict(X[test]) / y[test] - 1)) < 0.005
    without_gpu_energy = tuple(f for f in ALL_FEATURES if f != "gpu_energy_mean")
    assert {c.kind for c in LeafRegressor(without_gpu_energy)._candidates()} == {"log", "power"}


def test_below_its_range_a_metered_leaf_keeps_its_own_estimate(measured, monkeypatch):
    """The metered model is proportional to the measured work, launch overhead included: below its
    range it falls with the work by itself, where the floor rule scales the edge's energy by the largest
    shrink of any work measure.  Trained on batch ≥ 16 and sequence ≥ 96 of five models, BERT's
    LayerNorm, Softmax and MatMul leaves at batch 8 and sequence ≤ 64 come within 2 % (the rule: 16–37 %)."""
    X, y, kind, model, leaf = measured
    b, s = X[:, 0], X[:, 1]
    leaf &= np.isin(kind, ["LayerNorm", "Softmax", "MatMul", "Tanh"])
    train = leaf & (model != "bert-base-uncased") & (b >= 16) & (s >= 96)
    test = leaf & (model == "bert-base-uncased") & (b == 8) & (s <= 64) & (kind != "Tanh")

    def error(models: LeafModels) -> float:
        return float(np.mean(np.abs(models.predict(X[test], kind[test]) / y[test] - 1)))

    models = LeafModels(ALL_FEATURES, {"method": "auto"}, below_range="floor")
    models.fit(X[train], y[train], kind[train], model[train])
    assert all(models.entries[k].regressor.scales_with_work for k in ("LayerNorm", "Softmax", "MatMul"))
    assert error(models) < 0.02
    assert np.concatenate(models.reading_shares(X[test], kind[test])) == pytest.approx(1.0)
    monkeypatch.setattr(LeafRegressor, "scales_with_work", False)
    assert error(models) > 0.1


def test_the_fallback_for_unseen_kinds_offers_only_the_physical_model():
    """The regressor for kinds without one of their own (``fallback``) offers the wall-energy models with
    every coefficient ≥ 0 alone: a log-space power law in another kind's work predicts a new kind up to
    thousands of times off (docs/results.md); without work columns it keeps what there is."""
    names = ("flops", "times_mean", "gpu", "gpu_clk")
    offered = LeafRegressor(names, fallback=True)._candidates()
    assert offered and all(c.kind == "power" and c.nonnegative for c in offered)
    offered = LeafRegressor((*names, "gpu_energy_mean"), fallback=True)._candidates()
    assert {c.kind for c in offered} == {"power", "metered"} and all(c.nonnegative for c in offered)
    assert {c.kind for c in LeafRegressor(("batch_size", "seq_len"), fallback=True)._candidates()} == {"log"}


def _below_range_leaves(below_range: str) -> tuple[LeafModels, tuple[str, ...]]:
    """A Softmax proportional to its flops at batch ≥ 16 and seq ≥ 96, beside Tanh calls at the device's
    2 mJ launch floor."""
    names = ("batch_size", "seq_len", "flops", "mem_bytes_moved")
    batch, seq = (a.ravel() for a in np.meshgrid([16.0, 24.0, 32.0], [96.0, 128.0, 160.0, 192.0]))
    softmax = np.column_stack([batch, seq, batch * seq * seq / 1e3, batch * seq * seq / 1e3])
    tanh = np.column_stack([batch, seq, batch / 1e3, batch / 1e3])
    X = np.vstack([softmax, tanh])
    y = np.concatenate([1e-4 * softmax[:, 2], np.full(len(tanh), 2e-3)])
    types = np.array(["Softmax"] * len(softmax) + ["Tanh"] * len(tanh), dtype=object)
    models = LeafModels(names, {"method": "auto"}, below_range=below_range)
    models.fit(X, y, types, np.array(["a", "b", "c"] * (len(y) // 3), dtype=object))
    return models, names


def test_below_its_range_a_leaf_costs_the_devices_floor_plus_its_edges_excess_scaled_with_the_work():
    """A regressor fitted inside its range cannot know how energy falls below it (held at the edge, a
    Softmax at batch 8 and seq 32 trained on batch ≥ 16 and seq ≥ 96 came out 5× too high): below it in
    every measure of its work by k, a leaf costs the launch floor F plus (E₀ − F)/k, E₀ its energy with
    the work held at the edge, never less than F (this regressor, proportional to the work it was fitted
    on, goes under it); below in one measure only, the regressor's own estimate.  Its interval spans the
    rule's lower reading, the energy falling with the work down to the floor, and its upper reading, the
    excess falling with the amount of work (flops or bytes) that shrinks least."""
    models, _ = _below_range_leaves("floor")
    own, _ = _below_range_leaves("regressor")  # the regressors' own estimates
    assert models.floor == pytest.approx(2e-3)
    edge = np.array([[16.0, 96.0, 147.456, 147.456]])  # the smallest Softmax trained on
    smaller = edge / [2.0, 3.0, 18.0, 18.0]  # batch 8, seq 32: k = 18
    one_measure = edge * [0.5, 1.0, 1.0 / 18.0, 1.0]  # fewer flops, the same bytes
    softmax = np.array(["Softmax"] * 3, dtype=object)
    e0 = models.predict(edge, softmax[:1])[0]
    assert e0 == pytest.approx(1e-4 * 147.456, rel=0.02)
    predicted = models.predict(np.vstack([edge, smaller, one_measure]), softmax)
    assert predicted[1] == pytest.approx(models.floor + (e0 - models.floor) / 18.0, rel=1e-4)
    assert predicted[2] == pytest.approx(own.predict(one_measure, softmax[:1])[0])
    assert own.predict(smaller, softmax[:1])[0] < models.floor < predicted[1]  # fitted on no call that cheap
    # its readings, the interval's: the energy falls with the work down to the floor, max(F, E₀/k); the
    # excess falls with the amount that shrinks least, F + (E₀ − F)/j (a product bound by its bytes)
    half = edge / [1.0, 1.0, 2.0, 2.0]  # k = 2: E₀/2 lies above the floor
    rule = models.floor + (e0 - models.floor) / 2.0
    by_bytes = edge / [2.0, 3.0, 18.0, 6.0]  # k = 18 in flops, j = 6 in bytes
    lower, upper = models.reading_shares(np.vstack([edge, smaller, one_measure, half, by_bytes]),
                                         np.repeat(softmax[:1], 5))
    floor_share = models.floor / predicted[1]
    assert lower == pytest.approx([1.0, floor_share, 1.0, e0 / 2.0 / rule, floor_share], rel=1e-4)
    by_bytes_upper = (models.floor + (e0 - models.floor) / 6.0) / predicted[1]
    assert upper == pytest.approx([1.0, 1.0, 1.0, 1.0, by_bytes_upper], rel=1e-4) and by_bytes_upper > 1.5
    loaded = LeafModels.from_state(models.feature_names, models.get_state())
    assert np.array_equal(loaded.predict(smaller, softmax[:1]), predicted[1:2])
    # never below the floor, even where the estimate at the edge is (without the GPU energy, a run's low
    # utilisation lowered it: a Softmax at batch 8 and seq 32 came out 1.8 mJ on a 2.3 mJ floor)
    higher = LeafModels.from_state(models.feature_names, {**models.get_state(), "floor": 2 * e0})
    assert higher.predict(smaller, softmax[:1])[0] == pytest.approx(2 * e0)
    assert np.concatenate(higher.reading_shares(by_bytes, softmax[:1])) == pytest.approx([1.0, 1.0])


def test_below_its_range_a_leaf_spends_its_excess_as_its_kind_splits_it_between_flops_and_bytes():
    """A pooler's ``Linear`` multiplies one token per sequence by the weights every ``Linear`` reads: 32× fewer
    flops than the smallest one trained on, 1.6× fewer bytes.  Its excess over the launch floor follows the
    kind's own split of its training leaves' excess between flops and bytes (energy per flop and per byte
    ≥ 0, fitted on them), not the largest shrink (which left it at the floor, 60 % low on device_1); a
    predictor saved before keeps the largest shrink."""
    names = ("batch_size", "seq_len", "flops", "mem_bytes_moved")
    floor, per_flop, per_byte = 2e-3, 1e-4, 2e-3  # J, J per Mflop, J per MiB

    def linear(batch: np.ndarray, tokens: np.ndarray, seq: np.ndarray) -> np.ndarray:
        return np.column_stack([batch, seq, 2 * tokens * 768**2 / 1e6, (768**2 + 2 * tokens * 768) * 4 / 2**20])

    batch, seq = (a.ravel() for a in np.meshgrid([16.0, 24.0, 32.0], [96.0, 128.0, 160.0, 192.0]))
    trained = linear(batch, batch * seq, seq)
    tanh = np.column_stack([batch, seq, batch / 1e3, batch / 1e3])
    y = np.concatenate([floor + per_flop * trained[:, 2] + per_byte * trained[:, 3], np.full(len(tanh), floor)])
    types = np.array(["Linear"] * len(trained) + ["Tanh"] * len(tanh), dtype=object)
    models = LeafModels(names, {"method": "auto"}, below_range="floor")
    models.fit(np.vstack([trained, tanh]), y, types, np.array(["a", "b", "c"] * (len(y) // 3), dtype=object))
    assert models.excess["Linear"] == pytest.approx([0.0, 0.0, per_flop, per_byte], rel=1e-3)

    pooler = linear(np.array([8.0]), np.array([8.0]), np.array([128.0]))
    measured = floor + per_flop * pooler[0, 2] + per_byte * pooler[0, 3]
    kind = np.array(["Linear"], dtype=object)
    predicted = models.predict(pooler, kind)[0]
    assert predicted == pytest.approx(measured, rel=0.02)
    lower, upper = (share[0] * predicted for share in models.reading_shares(pooler, kind))
    assert lower < measured < upper  # between the largest and the least shrink
    state = models.get_state()
    loaded = LeafModels.from_state(names, state)
    assert loaded.predict(pooler, kind)[0] == predicted
    older = LeafModels.from_state(names, {key: value for key, value in state.items() if key != "excess"})
    assert older.predict(pooler, kind)[0] < 0.5 * measured  # the largest shrink: flops, 32×
