"""Models by name, offline: presets, local configs, the local Hugging Face cache; random weights.

Nothing is downloaded: presets build configs in code, local paths and cached hub ids are read
with ``local_files_only=True``, and ``trust_remote_code`` is never enabled.  Weights are random
(energy does not depend on weight values; the paper's models are built with their exact hub
architectures).
"""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from irene_core import IreneError
from irene_framework_torch.presets_llm import LLM_DEFAULT_DTYPE, LLM_PRESETS

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PretrainedConfig

#: The paper's six models: transformers model type and config overrides (reference notes §3).
PAPER_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "bert-base-uncased": ("bert", {}),
    "distilbert-base-uncased": ("distilbert", {}),
    "roberta-base": ("roberta", {"max_position_embeddings": 514, "type_vocab_size": 1, "layer_norm_eps": 1e-5}),
    "gpt2": ("gpt2", {}),
    "distilgpt2": ("gpt2", {"n_layer": 6}),
    "openai-gpt": ("openai-gpt", {}),
}
#: The 24 BERT miniatures of Turc et al. (2019): L layers, H hidden, H/64 heads, 4H intermediate.
MINIATURE_LAYERS = (2, 4, 6, 8, 10, 12)
MINIATURE_HIDDEN = (128, 256, 512, 768)
MINIATURE_PATTERN = "bert-L{2,4,6,8,10,12}-H{128,256,512,768}"
WEIGHT_SEED = 0


def _miniatures() -> dict[str, tuple[str, dict[str, Any]]]:
    out = {}
    for layers in MINIATURE_LAYERS:
        for hidden in MINIATURE_HIDDEN:
            spec = ("bert", {
                "num_hidden_layers": layers,
                "hidden_size": hidden,
                "num_attention_heads": hidden // 64,
                "intermediate_size": 4 * hidden,
            })
            out[f"bert-L{layers}-H{hidden}"] = spec
            out[f"google/bert_uncased_L-{layers}_H-{hidden}_A-{hidden // 64}"] = spec
    return out


PRESETS: dict[str, tuple[str, dict[str, Any]]] = {**PAPER_PRESETS, **_miniatures(), **LLM_PRESETS}


def preset_names() -> list[str]:
    """The paper's six models, the miniatures by their short names, then the modern decoders."""
    return [name for name in PRESETS if not name.startswith("google/")]


def default_dtype(name: str) -> str:
    """bfloat16 for the modern decoder presets, float32 for everything else (the paper's world)."""
    return LLM_DEFAULT_DTYPE if name in LLM_PRESETS else "float32"


def _unknown(name: str, why: str = "") -> IreneError:
    return IreneError(
        f"unknown model '{name}'{why}: use a preset ({', '.join(PAPER_PRESETS)}, {MINIATURE_PATTERN}, "
        f"{', '.join(LLM_PRESETS)}), "
        "a path to a config.json or a model directory holding one, or a hub id already in the local "
        "Hugging Face cache (nothing is downloaded)"
    )


@dataclass(frozen=True)
class ResolvedModel:
    """A model config and where it came from (``preset``, ``local`` or ``hf-cache``), and the config
    attributes :func:`override` set."""

    name: str
    config: PretrainedConfig
    source: str
    overrides: Mapping[str, int] = field(default_factory=dict)


def resolve(name: str) -> ResolvedModel:
    """The config for ``name``: a preset, a local config.json / directory, or a cached hub id."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig

    if name in PRESETS:
        model_type, overrides = PRESETS[name]
        return ResolvedModel(name, AutoConfig.for_model(model_type, **overrides), "preset")
    path = Path(name).expanduser()
    if path.exists():
        if path.is_dir() and not (path / "config.json").is_file():
            raise IreneError(f"{path}: a model directory must hold a config.json")
        if path.is_file() and path.suffix != ".json":
            raise IreneError(f"{path}: name a config.json or the model directory that holds it")
        return ResolvedModel(name, _load_config(str(path), name), "local")
    if name.count("/") > 1 or name.startswith((".", "/", "~")):
        raise _unknown(name, f" (no such path: {path})")
    try:
        return ResolvedModel(name, _load_config(name, name), "hf-cache")
    except OSError:
        raise _unknown(name) from None


#: The generic architecture names of ``--vary`` and the transformers attribute each stands for (a config's
#: ``attribute_map`` takes it to its own name, e.g. GPT-2's ``n_layer``).
GENERIC = {"layers": "num_hidden_layers", "hidden": "hidden_size", "heads": "num_attention_heads"}
#: Where configs keep the feed-forward width (``intermediate``), first found wins.
INTERMEDIATE = ("intermediate_size", "n_inner", "hidden_dim", "d_ff", "ffn_dim")


def _int_setting(config: PretrainedConfig, attribute: str) -> int | None:
    value = getattr(config, attribute, None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _generic_names(config: PretrainedConfig, overrides: Mapping[str, int]) -> dict[str, str]:
    """Each override key's name in the rules below: a generic name (a config's own spelling of one, e.g.
    ``n_layer``, counts as it), else the raw attribute; a key given twice under two spellings is refused."""
    aliases = {alias: generic for generic, attribute in GENERIC.items()
               for alias in (attribute, config.attribute_map.get(attribute))}
    aliases.update(dict.fromkeys(INTERMEDIATE, "intermediate"))
    names: dict[str, str] = {}
    for key in overrides:
        name = key if key in (*GENERIC, "intermediate") else aliases.get(key, key)
        if name in names.values():
            raise IreneError(f"--vary {key}: sets the same as --vary {next(k for k, n in names.items() if n == name)}")
        names[key] = name
    return names


def override(resolved: ResolvedModel, overrides: Mapping[str, int]) -> ResolvedModel:
    """``resolved`` with architecture overrides applied to a copy of its config (``overrides`` of the result:
    the attributes set).  ``layers``, ``hidden``, ``heads``, ``intermediate`` or any integer attribute of the config;
    ``hidden`` without ``heads`` keeps the head size, without ``intermediate`` the intermediate/hidden ratio."""
    config = copy.deepcopy(resolved.config)
    what = f"{resolved.name}'s {type(config).__name__}"
    names = _generic_names(config, overrides)
    wanted = {names[k]: v for k, v in overrides.items()}
    flag = {names[k]: f"--vary {k}={v}" for k, v in overrides.items()}
    for key, value in overrides.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise IreneError(f"--vary {key}={value}: expected a positive integer")
        attribute = GENERIC.get(names[key], names[key])
        settable = hasattr(config, attribute) and getattr(config, attribute) in (None, _int_setting(config, attribute))
        if names[key] != "intermediate" and not settable:
            raise IreneError(f"--vary {key}: not an integer setting of {what} (use layers, hidden, heads, "
                             "intermediate or one of its integer attributes)")
    applied: dict[str, int] = {}
    if "layers" in wanted:
        applied["num_hidden_layers"] = wanted["layers"]
    if "hidden" in wanted or "heads" in wanted:
        applied.update(_width(config, wanted, flag, what))
    if "intermediate" in wanted:
        where = next((a for a in INTERMEDIATE if hasattr(config, a)), None)
        if where is None:
            raise IreneError(f"{flag['intermediate']}: {what} has no intermediate size to set")
        applied[where] = wanted["intermediate"]
    applied.update({k: v for k, v in wanted.items() if k not in (*GENERIC, "intermediate")})
    for attribute, value in applied.items():
        setattr(config, attribute, value)
    return replace(resolved, config=config, overrides=applied)


def display_name(model: str, overrides: Mapping[str, int] | None) -> str:
    """``bert-base-uncased[layers=4,hidden=256]``: a model with overrides, as its records name it."""
    return f"{model}[{','.join(f'{k}={v}' for k, v in overrides.items())}]" if overrides else model


def _width(config: PretrainedConfig, wanted: Mapping[str, int], flag: Mapping[str, str], what: str) -> dict[str, int]:
    """The attributes a new ``hidden`` and/or ``heads`` sets: heads = hidden / head size unless given, the
    intermediate size scaled with hidden unless given, key/value heads keeping their group size."""
    hidden0, heads0 = _int_setting(config, "hidden_size"), _int_setting(config, "num_attention_heads")
    if hidden0 is None or heads0 is None:
        raise IreneError(f"{flag.get('hidden') or flag['heads']}: {what} has no integer hidden_size and "
                         "num_attention_heads")
    head_dim = _int_setting(config, "head_dim")  # explicit in some configs (Llama, T5): kept as it is
    hidden = wanted.get("hidden", hidden0)
    heads = wanted.get("heads")
    if heads is None:
        size = head_dim or hidden0 // heads0
        if hidden % size:
            raise IreneError(f"{flag['hidden']}: not a multiple of the head size {size} (vary heads too)")
        heads = hidden // size
    elif head_dim is None and hidden % heads:
        raise IreneError(f"{flag['heads']}: hidden size {hidden} is not a multiple of {heads} heads")
    out = {"hidden_size": hidden, "num_attention_heads": heads}
    kv0 = _int_setting(config, "num_key_value_heads")
    if kv0 is not None and heads != heads0:
        group = heads0 // kv0
        if heads % group:
            raise IreneError(f"{flag.get('heads') or flag['hidden']}: {heads} heads do not split into the model's "
                             f"key/value groups of {group}")
        out["num_key_value_heads"] = heads // group
    if "hidden" in wanted and "intermediate" not in wanted:
        widths = {a: w for a in INTERMEDIATE if (w := _int_setting(config, a)) is not None}
        out.update({a: round(w * hidden / hidden0) for a, w in list(widths.items())[:1]})
    return out


def _load_config(location: str, name: str) -> PretrainedConfig:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(location, local_files_only=True, trust_remote_code=False)
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "trust_remote_code" in str(exc) or "custom code" in str(exc):
            raise IreneError(f"{name}: needs custom code (trust_remote_code), which IrEne never runs") from None
        raise IreneError(f"{name}: unusable config: {first}") from None


def family(config: PretrainedConfig) -> str:
    """``meta["family"]`` of a model: ``encoder-decoder``, ``decoder`` (a decoder config, or a model
    type with a causal language-model head and no masked one) or ``encoder``."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES as CAUSAL
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES as MASKED

    if getattr(config, "is_encoder_decoder", False):
        return "encoder-decoder"
    model_type = getattr(config, "model_type", "")
    causal_only = model_type in CAUSAL and model_type not in MASKED
    return "decoder" if getattr(config, "is_decoder", False) or causal_only else "encoder"


def build(
    resolved: ResolvedModel, attention: str, device: torch.device, meta: bool, *, causal: bool = False,
    dtype: torch.dtype | None = None,
) -> torch.nn.Module:
    """The base model (``AutoModel``), or with ``causal`` the causal-LM model (``AutoModelForCausalLM``:
    with its ``lm_head``, tied to the embedding where the config says so), in eval mode with parameters
    in ``dtype`` (default float32): random weights on ``device``, or on meta."""
    import torch
    from transformers import AutoModel, AutoModelForCausalLM
    from transformers.initialization import no_init_weights

    auto = AutoModelForCausalLM if causal else AutoModel
    try:
        with torch.device("meta" if meta else device), no_init_weights():
            model = auto.from_config(resolved.config, attn_implementation=attention,
                                     dtype=dtype or torch.float32)
    except (ValueError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0].split(". ")[0]
        raise IreneError(f"{resolved.name}: cannot build the model with --attention {attention}: {first}") from None
    model.tie_weights()  # no_init_weights skips it: a tied lm_head shares the embedding's weight
    if not meta:
        _random_weights(model, device)
    return model.eval()


def _random_weights(model: torch.nn.Module, device: torch.device) -> None:
    """Deterministic random weights: N(0, 0.02) matrices, unit norm scales, zero biases."""
    import torch

    generator = torch.Generator(device=device).manual_seed(WEIGHT_SEED)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() >= 2:
                param.normal_(0.0, 0.02, generator=generator)
            elif name.endswith("weight"):
                param.fill_(1.0)
            else:
                param.zero_()


def example_inputs(model: torch.nn.Module, batch_size: int, seq_len: int, device: torch.device) -> dict[str, Any]:
    """Keyword inputs for one forward pass: random token ids (and decoder ids for encoder-decoders).

    No attention mask (the models build an all-ones one), no cache (``use_cache=False``), so that
    every replay of a node does the same work.
    """
    import torch

    parameters = inspect.signature(model.forward).parameters
    if "input_ids" not in parameters:
        raise IreneError(f"{type(model).__name__} takes no input_ids: IrEne's torch tracer handles text models")
    vocab = int(getattr(model.config, "vocab_size", 0) or 0)
    if vocab < 1:
        raise IreneError(f"{type(model).__name__}: its config has no vocab_size")
    limit = _max_positions(model.config)
    if limit is not None and seq_len > limit:
        raise IreneError(f"--seq-len {seq_len} exceeds the model's {limit} positions")
    generator = torch.Generator().manual_seed(WEIGHT_SEED)
    ids = torch.randint(0, vocab, (batch_size, seq_len), generator=generator).to(device)
    inputs: dict[str, Any] = {"input_ids": ids}
    if "decoder_input_ids" in parameters:
        inputs["decoder_input_ids"] = ids.clone()
    if "use_cache" in parameters:
        inputs["use_cache"] = False
    return inputs


def _max_positions(config: PretrainedConfig) -> int | None:
    """The size of an absolute position table (RoBERTa-style offsets fail later, in the forward pass)."""
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return None
    for key in ("max_position_embeddings", "n_positions"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
