"""IrEne primitive plugin: per-primitive energy regressors for transformer ML primitives."""
