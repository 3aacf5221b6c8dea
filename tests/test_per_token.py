"""Per-token figures derived from a record: tokens per call by phase, measured before predicted energy."""

from __future__ import annotations

import pytest

from irene_core.tree.per_token import describe, per_token
from irene_core.tree.schema import Node, TreeRecord


def _record(phase: str, *, measured: float | None, predicted: float | None, latency: float | None,
            context: int | None = None, meta: dict | None = None) -> TreeRecord:
    features = {"times_mean": latency} if latency is not None else {}
    root = Node(id=":M", scope="", type="M", level="model", features=features, ground_truth_energy=measured,
                predicted_energy=predicted)
    return TreeRecord(model_name="m", batch_size=8, seq_len=1 if phase == "decode" else 128, phase=phase,
                      context_len=context, dtype="bfloat16", meta=meta or {}, root=root)


def test_decode_divides_by_batch_and_prefers_the_measured_energy():
    record = _record("decode", measured=0.8, predicted=2.0, latency=0.04, context=1024,
                     meta={"kv_cache_bytes": 256 * 2**20, "kv_cache_dtype": "bfloat16"})
    figures = per_token(record)
    assert figures.tokens_per_call == 8
    assert (figures.energy_j_per_token, figures.energy_source) == (pytest.approx(0.1), "measured")
    assert figures.latency_s_per_token == pytest.approx(0.005) and figures.tokens_per_s == pytest.approx(200.0)
    assert (figures.kv_cache_mib, figures.kv_cache_dtype, figures.context_len) == (256.0, "bfloat16", 1024)
    assert describe(figures) == ("decode, context 1024, bfloat16 · 8 tokens/call · 100 mJ/token (measured) · "
                                 "5 ms/token, 200.0 tokens/s · KV cache 256.0 MiB (bfloat16)")


@pytest.mark.parametrize("phase", ["prefill", "forward"])
def test_prompt_phases_divide_by_every_token_and_fall_back_to_the_prediction(phase):
    figures = per_token(_record(phase, measured=None, predicted=2.048, latency=None))
    assert figures.tokens_per_call == 8 * 128
    assert (figures.energy_j_per_token, figures.energy_source) == (pytest.approx(0.002), "predicted")
    assert figures.latency_s_per_token is None and figures.tokens_per_s is None and figures.kv_cache_mib is None


def test_a_record_without_energy_or_latency_has_neither():
    figures = per_token(_record("forward", measured=None, predicted=None, latency=None))
    assert figures.energy_j_per_token is None and figures.energy_source is None
    assert describe(figures) == "forward, bfloat16 · 1024 tokens/call"
