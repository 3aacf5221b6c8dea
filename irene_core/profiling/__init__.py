"""Profiling: ``irene run``'s session (trace, measure node by node, predict, write)."""
