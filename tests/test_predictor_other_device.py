"""The same code path on another device's data: a machine with another power model, faster
kernels, a smaller GPU-energy share, a clock that never changes and separately measured (noisy)
identical layers.  Nothing in the predictor may depend on device_1's scales."""

import numpy as np
import pytest

from irene_core.predictor.crossvalidation import crossvalidate
from irene_core.tree.schema import TreeRecord

MODELS = ("bert-base-uncased", "distilbert-base-uncased", "gpt2", "distilgpt2")
STATIC_W = 30.0  # the other machine's power beyond what scales with device_1's energy


def _subset(records: list[TreeRecord]) -> list[TreeRecord]:
    return [r for r in records if r.model_name in MODELS and r.batch_size in (8, 24)]


def _other_device(records: list[TreeRecord]) -> list[TreeRecord]:
    rng = np.random.default_rng(7)
    out = []
    for record in records:
        copy = record.model_copy(deep=True)
        copy.device = "device_x"
        for node in copy.nodes():
            f = node.features
            f["times_mean"] *= 0.7
            f["gpu_energy_mean"] *= 0.8
            f["gpu_mem_clk"] = 5005.0
            if node.ground_truth_energy:
                wall = 0.55 * node.ground_truth_energy + STATIC_W * f["times_mean"]
                node.ground_truth_energy = wall * (1 + 0.004 * rng.standard_normal())
        out.append(copy)
    return out


@pytest.mark.parametrize("features", ["all", "model"])
def test_another_device_is_predicted_as_well_as_device_1(device1_records, features):
    here = _subset(device1_records)
    there = _other_device(here)
    reference = crossvalidate(here, {"features": features})
    result = crossvalidate(there, {"features": features})
    assert [f.left_out for f in result.folds] == sorted(MODELS)
    assert {r.device for r in there} == {"device_x"}
    for level, error in result.overall.items():
        # 0.4 % measurement noise was added to every node of the other device
        assert error is not None and error < 1.2 * reference.overall[level] + 0.2, (
            level,
            error,
            reference.overall[level],
        )
