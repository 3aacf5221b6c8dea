"""IrEne framework plugin: Keras 3 (TensorFlow backend) tracer, model features and node replay."""
