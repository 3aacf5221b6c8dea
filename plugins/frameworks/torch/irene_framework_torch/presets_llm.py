"""Modern decoder LLMs by name, from their published hyperparameters (the ``config.json`` of each hub
release, transcribed): built offline with random weights, bf16 by default.  Two are mixtures of
experts (Mixtral 8×7B: 8 experts, 2 per token; Qwen3-30B-A3B: 128, 8 per token).

Parameter counts (of the causal-LM model, embeddings tied where the release ties them) are checked
in the tests against the published sizes.
"""

from __future__ import annotations

from typing import Any

_LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 500000.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192}
_LLAMA: dict[str, Any] = {"vocab_size": 128256, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
                          "num_key_value_heads": 8, "bos_token_id": 128000, "eos_token_id": 128001}
_QWEN: dict[str, Any] = {"vocab_size": 151936, "rms_norm_eps": 1e-6, "bos_token_id": 151643, "eos_token_id": 151643}
_GEMMA2: dict[str, Any] = {"vocab_size": 256000, "head_dim": 256, "max_position_embeddings": 8192,
                           "sliding_window": 4096, "query_pre_attn_scalar": 256, "attn_logit_softcapping": 50.0,
                           "final_logit_softcapping": 30.0, "hidden_activation": "gelu_pytorch_tanh",
                           "rms_norm_eps": 1e-6, "tie_word_embeddings": True}

#: name → (transformers model type, config fields).
LLM_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "llama-3.2-1b": ("llama", {**_LLAMA, "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
                               "num_attention_heads": 32, "head_dim": 64, "tie_word_embeddings": True,
                               "rope_parameters": {**_LLAMA3_ROPE, "factor": 32.0}}),
    "llama-3.2-3b": ("llama", {**_LLAMA, "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 28,
                               "num_attention_heads": 24, "head_dim": 128, "tie_word_embeddings": True,
                               "rope_parameters": {**_LLAMA3_ROPE, "factor": 32.0}}),
    "llama-3.1-8b": ("llama", {**_LLAMA, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                               "num_attention_heads": 32, "rope_parameters": {**_LLAMA3_ROPE, "factor": 8.0}}),
    "llama-3.1-70b": ("llama", {**_LLAMA, "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80,
                                "num_attention_heads": 64, "rope_parameters": {**_LLAMA3_ROPE, "factor": 8.0}}),
    "qwen2.5-0.5b": ("qwen2", {**_QWEN, "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
                               "num_attention_heads": 14, "num_key_value_heads": 2, "max_position_embeddings": 32768,
                               "tie_word_embeddings": True, "rope_parameters": {"rope_type": "default",
                                                                                "rope_theta": 1000000.0}}),
    "qwen2.5-7b": ("qwen2", {**_QWEN, "vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944,
                             "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
                             "max_position_embeddings": 32768,
                             "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}}),
    "qwen3-0.6b": ("qwen3", {**_QWEN, "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
                             "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
                             "max_position_embeddings": 40960, "tie_word_embeddings": True,
                             "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}}),
    "qwen3-8b": ("qwen3", {**_QWEN, "hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36,
                           "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
                           "max_position_embeddings": 40960,
                           "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}}),
    "mistral-7b-v0.3": ("mistral", {"vocab_size": 32768, "hidden_size": 4096, "intermediate_size": 14336,
                                    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                                    "max_position_embeddings": 32768, "sliding_window": None, "rms_norm_eps": 1e-5,
                                    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}}),
    "mixtral-8x7b": ("mixtral", {"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336,
                                 "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                                 "num_local_experts": 8, "num_experts_per_tok": 2, "max_position_embeddings": 32768,
                                 "sliding_window": None, "rms_norm_eps": 1e-5,
                                 "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}}),
    "qwen3-30b-a3b": ("qwen3_moe", {**_QWEN, "hidden_size": 2048, "intermediate_size": 6144,
                                    "moe_intermediate_size": 768, "num_hidden_layers": 48, "num_attention_heads": 32,
                                    "num_key_value_heads": 4, "head_dim": 128, "num_experts": 128,
                                    "num_experts_per_tok": 8, "norm_topk_prob": True, "max_position_embeddings": 40960,
                                    "tie_word_embeddings": False,
                                    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}}),
    "gemma-2-2b": ("gemma2", {**_GEMMA2, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
                              "num_attention_heads": 8, "num_key_value_heads": 4}),
    "gemma-2-9b": ("gemma2", {**_GEMMA2, "hidden_size": 3584, "intermediate_size": 14336, "num_hidden_layers": 42,
                              "num_attention_heads": 16, "num_key_value_heads": 8}),
    "phi-3-mini-4k": ("phi3", {"vocab_size": 32064, "hidden_size": 3072, "intermediate_size": 8192,
                               "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
                               "max_position_embeddings": 4096, "original_max_position_embeddings": 4096,
                               "sliding_window": 2047, "rms_norm_eps": 1e-5, "pad_token_id": 32000,
                               "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}}),
}

#: The parameter dtype these presets are built in unless ``dtype`` says otherwise.
LLM_DEFAULT_DTYPE = "bfloat16"
