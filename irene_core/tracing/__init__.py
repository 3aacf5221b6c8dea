"""Tracing: the framework contract (model → tree, node replay) and the replay timing loop."""
