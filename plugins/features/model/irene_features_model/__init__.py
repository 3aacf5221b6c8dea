"""IrEne feature plugin: model features (batch, sequence, flops, memory, parameters)."""
