"""Models by name, offline: presets, local configs and directories, the local HF cache, bad names."""

from __future__ import annotations

import json

import pytest

from irene_core.errors import IreneError
from irene_core.plugins import get_registry
from irene_core.tree.jsonl import record_from_dict
from irene_framework_torch import models
from irene_framework_torch.framework import TorchFramework

#: Parameter counts of the paper's models as built by transformers 5 (reference notes §3).
PAPER_PARAMETERS = {
    "bert-base-uncased": 109_482_240,
    "distilbert-base-uncased": 66_362_880,
    "roberta-base": 124_645_632,
    "gpt2": 124_439_808,
    "distilgpt2": 81_912_576,
    "openai-gpt": 116_534_784,
}


def test_registered_as_the_torch_framework():
    assert isinstance(get_registry().get("framework", "torch"), TorchFramework)


def test_presets_are_the_paper_models_then_the_miniatures_then_the_decoders(framework):
    names = framework.presets()
    assert names[:6] == list(PAPER_PARAMETERS)
    assert len(names) == 6 + 24 + 14 and "bert-L12-H768" in names and "bert-L2-H128" in names
    assert names[-14:][0] == "llama-3.2-1b" and {"qwen3-8b", "mixtral-8x7b"} <= set(names[-14:])


@pytest.mark.parametrize("name", PAPER_PARAMETERS)
def test_paper_presets_have_the_hub_architectures(framework, name):
    record = framework.trace(name, 1, 8, meta=True).record
    assert record.root.features["num_parameters"] == PAPER_PARAMETERS[name]
    assert record.meta["model_source"] == "preset" and record.meta["traced_on"] == "meta"


def test_miniatures_follow_turc_et_al():
    config = models.resolve("bert-L4-H256").config
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.intermediate_size) == (
        4, 256, 4, 1024,
    )
    alias = models.resolve("google/bert_uncased_L-4_H-256_A-4").config
    assert alias.to_dict() == config.to_dict()


def test_local_config_file_and_directory(model_dir):
    from transformers import GPT2Config

    directory = model_dir("tiny-gpt2", GPT2Config(n_layer=1, n_embd=64, n_head=2, vocab_size=100))
    for location in (directory, f"{directory}/config.json"):
        resolved = models.resolve(location)
        assert resolved.source == "local" and resolved.config.n_layer == 1 and resolved.config.n_embd == 64


def test_bad_local_paths_say_what_is_wrong(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(IreneError, match=r"must hold a config\.json"):
        models.resolve(str(tmp_path / "empty"))
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"\0")
    with pytest.raises(IreneError, match=r"name a config\.json"):
        models.resolve(str(weights))
    with pytest.raises(IreneError, match=r"unknown model .*no such path"):
        models.resolve(str(tmp_path / "missing" / "config.json"))
    no_type = tmp_path / "notype"
    no_type.mkdir()
    (no_type / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(IreneError, match="unusable config"):
        models.resolve(str(no_type))


def test_unknown_name_is_one_line_listing_presets_and_local_ways():
    with pytest.raises(IreneError) as info:
        models.resolve("no-such-model-anywhere")
    message = str(info.value)
    assert "\n" not in message
    for part in ("bert-base-uncased", "openai-gpt", "bert-L{2,4,6,8,10,12}-H{128,256,512,768}", "config.json",
                 "model directory", "Hugging Face cache"):
        assert part in message


def test_remote_code_is_refused(tmp_path):
    directory = tmp_path / "custom"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": "acme", "auto_map": {"AutoConfig": "acme.Cfg"}}))
    with pytest.raises(IreneError, match="trust_remote_code"):
        models.resolve(str(directory))


def test_bad_trace_arguments(framework):
    with pytest.raises(IreneError, match="--batch-size"):
        framework.trace("bert-L2-H128", 0, 8)
    with pytest.raises(IreneError, match="--attention"):
        framework.trace("bert-L2-H128", 1, 8, attention="flash")
    with pytest.raises(IreneError, match="--device cuda: CUDA is not available"):
        framework.trace("bert-L2-H128", 1, 8, device="cuda")
    with pytest.raises(IreneError, match="--seq-len 600 exceeds the model's 512 positions"):
        framework.trace("bert-L2-H128", 1, 600)
    with pytest.raises(IreneError, match="openai-gpt: cannot build the model with --attention sdpa"):
        framework.trace("openai-gpt", 1, 8, attention="sdpa", meta=True)


def _fake_hub_cache(root, repo: str, config) -> None:
    """The layout huggingface_hub leaves after a download: refs/main → snapshots/<commit>/."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    base = root / f"models--{repo.replace('/', '--')}"
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit)
    (base / "snapshots" / commit).mkdir(parents=True)
    config.to_json_file(str(base / "snapshots" / commit / "config.json"))


def test_hub_id_in_the_local_cache_traces_offline(cli_run, tmp_path):
    import os

    from transformers import BertConfig

    cache = tmp_path / "hub"
    _fake_hub_cache(cache, "acme/tiny-bert", BertConfig(num_hidden_layers=1, hidden_size=64, num_attention_heads=1,
                                                        intermediate_size=128, vocab_size=500))
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    out = cli_run("trace", "acme/tiny-bert", "-b", "1", "-s", "4", "--meta", "--json", env=env).stdout
    record = record_from_dict(json.loads(out))
    assert record.model_name == "acme/tiny-bert" and record.meta["model_source"] == "hf-cache"
    assert record.root.type == "BertModel" and record.root.find("encoder.layer.0") is not None
