"""Predictors trained on a real GPU's measurements: the H200's traced trees (NVML board energy,
``benchmarks/data/h200-nvml.jsonl``), eleven trees of the paper's six models at four sizes of 2,048 and
8,192 tokens."""

from __future__ import annotations

import numpy as np
import pytest

from irene_core.predictor.predictor import Predictor
from irene_core.tree.schema import TreeRecord


def test_trained_on_measured_dropouts_a_predictor_predicts_their_dispatch_inside_its_intervals(
    h200_records: list[TreeRecord],
) -> None:
    """Traced trees measured on the H200 have Dropout leaves (25 of a BERT's 175), which run no kernel
    but cost the idle power over their call.  A predictor trained on five models' trees predicts the
    sixth's at the training calls' geometric mean, inside their intervals (held at 0 J, every one
    missed its interval [0, 0]; leave one model out, model features, the leaves erred 23.6 % on
    average instead of 10.8 %)."""
    train = [r for r in h200_records if r.model_name != "gpt2"]
    test = [r for r in h200_records if r.model_name == "gpt2"]
    predictor = Predictor(features="model").fit(train)
    measured = [n.ground_truth_energy for r in train for n in r.nodes() if n.type == "Dropout"]
    dispatch = float(np.exp(np.mean(np.log(measured))))
    dropouts = [n for r in predictor.predict(test) for n in r.nodes() if n.type == "Dropout"]
    assert len(dropouts) >= 20 and all(n.predicted_energy == pytest.approx(dispatch) for n in dropouts)
    assert np.mean([n.predicted_low <= n.ground_truth_energy <= n.predicted_high for n in dropouts]) >= 0.9


def test_a_physical_leaf_model_grows_at_most_as_its_work_beyond_the_training_range(
    h200_records: list[TreeRecord],
) -> None:
    """Every training tree of 2,048 tokens: a LayerNorm's flops and bytes never vary, nor does its memory
    controller's activity (0–0.03 %), and the wall-energy model's coefficient on it is anything the fit
    likes.  At 8,192 tokens (43 % memory activity) it said 334 mJ for 15.9 measured; held, as a
    log-space model is, between the energy at the range's edge and that grown as fast as the work (4×),
    it stays within a fifth of the truth (all features, BERT and GPT-2 held out)."""
    train = [r for r in h200_records if r.model_name not in ("gpt2", "bert-base-uncased")]
    predictor = Predictor(features="all").fit(train)
    assert predictor.training_["leaves"]["primitives"]["LayerNorm"]["model"].startswith("power-linear")
    big = [r for r in h200_records if r.model_name == "gpt2" and r.batch_size * r.seq_len == 8192]
    norms = [n for r in predictor.predict(big) for n in r.nodes() if n.type == "LayerNorm"]
    assert norms and all(n.extrapolated for n in norms)
    assert all(abs(n.predicted_energy / n.ground_truth_energy - 1) < 0.2 for n in norms)


def test_a_look_up_is_never_surer_than_the_measurement_repeats(h200_records: list[TreeRecord]) -> None:
    """RoBERTa's one tree has BERT's shapes, measured in the same run, yet its modules come out 1–11 %
    off BERT's: the H200's modules spread 6 % between two rounds (the median; RMS 9 %).  Trained
    without RoBERTa, its known modules take at least ± z₉₀ of that noise and fall inside their
    intervals (with the known modules' ± 5.8 % alone, 26 of 75 did)."""
    train = [r for r in h200_records if r.model_name != "roberta-base"]
    test = [r for r in h200_records if r.model_name == "roberta-base"]
    predictor = Predictor(features="model").fit(train)
    noise = predictor.training_["intervals"]["measurement_noise"]
    assert 0.05 < noise["module"] < 0.15 and set(noise) == {"ml", "module", "model"}
    modules = [n for r in predictor.predict(test) for n in r.nodes() if n.level == "module" and n.ground_truth_energy]
    half_widths = [np.log(n.predicted_high / n.predicted_energy) for n in modules]
    assert min(half_widths) >= 1.6 * noise["module"]
    assert np.mean([n.predicted_low <= n.ground_truth_energy <= n.predicted_high for n in modules]) >= 0.9
