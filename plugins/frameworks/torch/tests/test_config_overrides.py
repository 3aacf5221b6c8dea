"""Architecture overrides (``config=``, ``irene whatif --vary``): generic names through each config's own
spelling, derived head counts and widths, what the record says, one-line refusals."""

from __future__ import annotations

import pytest

from irene_core.errors import IreneError


def _parameters(framework, model: str, config: dict[str, int] | None = None) -> float:
    return framework.trace(model, 1, 8, meta=True, config=config).record.root.features["num_parameters"]


@pytest.mark.parametrize(
    ("base", "config", "same_as"),
    [
        ("bert-L2-H128", {"layers": 4}, "bert-L4-H128"),
        ("bert-L2-H128", {"hidden": 256}, "bert-L2-H256"),  # 4 heads of 64, intermediate 4 × 256
        ("bert-L4-H512", {"layers": 2, "hidden": 128}, "bert-L2-H128"),
        ("gpt2", {"layers": 6}, "distilgpt2"),  # through GPT-2's attribute_map: n_layer
        ("gpt2", {"n_layer": 6}, "distilgpt2"),  # the config's own spelling counts as the generic name
    ],
)
def test_overrides_build_the_architecture_they_name(framework, base, config, same_as):
    assert _parameters(framework, base, config) == _parameters(framework, same_as)


def test_the_record_names_the_variant_and_says_its_overrides(framework):
    record = framework.trace("bert-L2-H128", 1, 8, meta=True, config={"hidden": 256, "layers": 3}).record
    assert record.model_name == "bert-L2-H128[hidden=256,layers=3]"
    assert record.meta["config_overrides"] == {"hidden": 256, "layers": 3}
    assert record.meta["config_attributes"] == {
        "num_hidden_layers": 3, "hidden_size": 256, "num_attention_heads": 4, "intermediate_size": 1024,
    }
    layers = [n for n in record.root.walk() if n.type == "BertLayer"]
    assert len(layers) == 3


def test_no_overrides_leave_the_record_as_it_was(framework):
    record = framework.trace("bert-L2-H128", 1, 8, meta=True).record
    assert record.model_name == "bert-L2-H128" and "config_overrides" not in record.meta


def test_hidden_keeps_an_explicit_head_size_and_the_key_value_groups(framework):
    meta = framework.trace("llama-3.2-1b", 1, 8, meta=True, config={"hidden": 1024}).record.meta
    # llama-3.2-1b: hidden 2048, 32 heads of 64, 8 key/value heads (groups of 4), intermediate 8192
    assert meta["config_attributes"] == {
        "hidden_size": 1024, "num_attention_heads": 16, "num_key_value_heads": 4, "intermediate_size": 4096,
    }


def test_intermediate_finds_the_configs_own_attribute(framework):
    meta = framework.trace("gpt2", 1, 8, meta=True, config={"intermediate": 1000}).record.meta
    assert meta["config_attributes"] == {"n_inner": 1000}


@pytest.mark.parametrize(
    ("model", "config", "message"),
    [
        ("bert-L2-H128", {"depth": 2}, "--vary depth: not an integer setting of bert-L2-H128's BertConfig"),
        ("bert-L2-H128", {"hidden_act": 2}, "--vary hidden_act: not an integer setting"),
        ("bert-L2-H128", {"layers": 0}, "--vary layers=0: expected a positive integer"),
        ("bert-L2-H128", {"hidden": 100}, "--vary hidden=100: not a multiple of the head size 64"),
        ("bert-L2-H128", {"heads": 3}, "--vary heads=3: hidden size 128 is not a multiple of 3 heads"),
        ("bert-L2-H128", {"layers": 2, "num_hidden_layers": 3}, "--vary num_hidden_layers: sets the same as"),
        ("openai-gpt", {"intermediate": 100}, "--vary intermediate=100: openai-gpt's OpenAIGPTConfig has no"),
        ("llama-3.2-1b", {"heads": 6}, "--vary heads=6: 6 heads do not split into the model's key/value groups"),
    ],
)
def test_bad_overrides_are_one_line_naming_the_flag(framework, model, config, message):
    with pytest.raises(IreneError) as caught:
        framework.trace(model, 1, 8, meta=True, config=config)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
