"""IrEne feature plugin: resource features sampled while a node runs."""
