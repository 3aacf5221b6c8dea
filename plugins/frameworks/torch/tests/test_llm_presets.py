"""The modern decoder presets (published sizes, every leaf a known primitive on meta) and the one-line
refusals of bad phase, context, dtype and memory requests, before anything is profiled."""

from __future__ import annotations

import pytest
import torch

from irene_core import IreneError
from irene_core.cli.app import main
from irene_core.plugins import get_registry
from irene_framework_torch import models
from irene_framework_torch.phases import check_dtype_runs
from irene_framework_torch.presets_llm import LLM_PRESETS

#: Published parameter counts (model cards), in billions.
PUBLISHED_B = {
    "llama-3.2-1b": 1.24, "llama-3.2-3b": 3.21, "llama-3.1-8b": 8.03, "llama-3.1-70b": 70.6,
    "qwen2.5-0.5b": 0.494, "qwen2.5-7b": 7.62, "qwen3-0.6b": 0.596, "qwen3-8b": 8.19,
    "mistral-7b-v0.3": 7.25, "gemma-2-2b": 2.61, "gemma-2-9b": 9.24, "phi-3-mini-4k": 3.82,
    "mixtral-8x7b": 46.7, "qwen3-30b-a3b": 30.5,
}
def test_the_presets_are_the_published_decoders_in_bfloat16(framework):
    assert set(PUBLISHED_B) == set(LLM_PRESETS) <= set(framework.presets())
    assert {models.default_dtype(name) for name in PUBLISHED_B} == {"bfloat16"}
    assert models.default_dtype("bert-base-uncased") == models.default_dtype("bert-L2-H128") == "float32"


@pytest.mark.parametrize("name", PUBLISHED_B)
def test_preset_traces_decode_on_meta_with_known_leaf_kinds(framework, name):
    context = 2048 if name == "phi-3-mini-4k" else 4096
    record = framework.trace(name, 4, 1, meta=True, phase="decode", context_len=context).record
    assert record.root.features["num_parameters"] / 1e9 == pytest.approx(PUBLISHED_B[name], rel=0.01)
    layers = LLM_PRESETS[name][1]["num_hidden_layers"]
    types = [n.type for n in record.nodes() if n.level == "ml"]
    assert types.count("KVCacheUpdate") == layers and "lm_head:Linear" in {n.id for n in record.nodes()}
    assert record.dtype == "bfloat16"
    registry = get_registry()
    canonical = {registry.find("primitive", t).name for t in set(types)}  # no leaf kind falls to 'generic'
    assert {"RMSNorm", "RotaryEmbedding", "KVCacheUpdate", "Linear", "MatMul", "Softmax", "Embedding"} <= canonical
    assert canonical & {"SiLU", "GELU"}  # the gate activation of SwiGLU (GeGLU for gemma)


def _one_line_error(capsys, *argv: str) -> str:
    assert main(list(argv)) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


@pytest.mark.parametrize("argv, says", [
    (("trace", "gpt2", "--context", "128", "--meta"), "--context 128: a context is the KV cache of --phase decode"),
    (("trace", "llama-3.2-1b", "--phase", "decode", "--meta"), "--phase decode needs --context L"),
    (("trace", "bert-L2-H128", "--phase", "prefill", "--meta"), "bert-L2-H128 is not a decoder"),
    (("run", "--model", "llama-3.2-1b", "--phase", "decode", "--context", "64", "-s", "4"),
     "--seq-len 4: --phase decode generates one token per sequence"),
    (("run", "--model", "gpt2", "--contexts", "64,128"), "--context 64: a context is the KV cache of --phase decode"),
    (("run", "--model", "phi-3-mini-4k", "--phase", "decode", "--contexts", "1024,4096"),
     "--context 4096 + --seq-len 1 = 4097 tokens exceeds the model's 4096 positions"),
    (("run", "--model", "llama-3.1-70b", "--phase", "decode", "--context", "128", "--dtype", "float32"),
     "llama-3.1-70b (float32, batch 8, seq 1, context 128) needs about 263."),
    (("run", "--framework", "tensorflow", "--model", "bert-L2-H128", "--phase", "decode", "--context", "8", "-s", "1"),
     "--phase decode: framework 'tensorflow' traces forward only"),
])
def test_bad_input_is_one_line_before_anything_runs(capsys, tmp_path, argv, says):
    output = tmp_path / "out.jsonl"
    err = _one_line_error(capsys, *argv, *(("-o", str(output)) if argv[0] == "run" else ()))
    assert says in err
    assert not output.exists()


def test_a_dtype_the_device_cannot_run_is_one_line():
    with pytest.raises(IreneError, match=r"^--dtype uint16: cpu cannot run a uint16 matmul \("):
        check_dtype_runs(torch.uint16, torch.device("cpu"))
    check_dtype_runs(torch.bfloat16, torch.device("cpu"))
