"""Example IrEne plugin: a regressor for rotary position embeddings (Llama-style models)."""
