"""Import Keras 3 on the TensorFlow backend (lazily: only tracing needs it) and pick the TF device."""

from __future__ import annotations

import os
import sys
from types import ModuleType

from irene_core import IreneError

#: ``--device`` values → TensorFlow device names.
_DEVICES = {"cpu": "/CPU:0", "cuda": "/GPU:0", "gpu": "/GPU:0"}


def import_keras() -> tuple[ModuleType, ModuleType]:
    """``(tensorflow, keras)`` with Keras on the TensorFlow backend; fails if Keras already runs another."""
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no banner about CPU instructions / CUDA
    try:
        import keras
        import tensorflow as tf
    except ImportError as exc:  # pragma: no cover - the plugin's own dependencies
        raise IreneError(
            f"framework 'tensorflow': cannot import TensorFlow/Keras ({exc}); "
            "install it with: pip install irene-framework-tensorflow"
        ) from None
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise IreneError(
            f"framework 'tensorflow': Keras runs on the '{backend}' backend in this process "
            "(KERAS_BACKEND or ~/.keras/keras.json); set KERAS_BACKEND=tensorflow"
        )
    return tf, keras


def tf_device(device: str) -> str:
    """The TensorFlow device for ``--device`` (cpu, cuda/gpu, or a TF name like ``/GPU:1``)."""
    tf, _ = import_keras()
    name = _DEVICES.get(device.lower(), device)
    if not name.startswith("/"):
        raise IreneError(f"--device {device}: not a device (use cpu, cuda or a TensorFlow name like /GPU:0)")
    kind = name.strip("/").split(":")[0].upper()
    if kind == "GPU" and not tf.config.list_physical_devices("GPU"):
        raise IreneError(f"--device {device}: TensorFlow sees no GPU on this machine")
    return name
