"""IrEne framework plugin: PyTorch / transformers tracer, model features and node replay."""
