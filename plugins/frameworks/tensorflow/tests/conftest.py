"""Fixtures of the TensorFlow tracer's tests: one TensorFlow session for all of them, traces cached.

Every test here is skipped, with the reason, when TensorFlow, Keras or KerasHub is not installed.
"""

from __future__ import annotations

import functools
import importlib.util

import pytest

MISSING = [m for m in ("tensorflow", "keras", "keras_hub") if importlib.util.find_spec(m) is None]


@pytest.fixture(autouse=True)
def _requires_tensorflow() -> None:
    if MISSING:
        pytest.skip(f"{', '.join(MISSING)} not installed (pip install irene-framework-tensorflow)")


@pytest.fixture(scope="session")
def keras_modules():
    """``(tf, keras)`` on the TensorFlow backend, one thread per op pool (the machine is shared)."""
    from irene_framework_tensorflow.keras_runtime import import_keras

    tf, keras = import_keras()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already initialised by an earlier test module: keep its pools
        pass
    return tf, keras


@pytest.fixture(scope="session")
def tf_framework(keras_modules):
    from irene_core.plugins import get_registry

    return get_registry().get("framework", "tensorflow")


@pytest.fixture(scope="session")
def meta_trace(tf_framework):
    """``meta_trace(framework, model, batch, seq)`` → the record of a meta-mode trace, cached."""
    import torch

    from irene_core.plugins import get_registry

    torch.set_num_threads(1)
    registry = get_registry()

    @functools.cache
    def trace(framework: str, model: str, batch_size: int, seq_len: int):
        return registry.get("framework", framework).trace(model, batch_size, seq_len, meta=True).record

    return trace
