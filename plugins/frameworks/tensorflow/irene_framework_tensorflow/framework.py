"""The ``tensorflow`` framework: Keras 3 models by name, a ``.keras`` file or a ``keras.Model``; trace; replay.

Importing this module is cheap: TensorFlow, Keras and KerasHub are imported only when a model is
traced, so the plugin's entry point keeps ``irene --help`` and ``irene plugins`` fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from irene_core import Framework, IreneError
from irene_framework_tensorflow.presets import ALIASES, MINIATURE_PATTERN, PAPER_PRESETS, PRESETS

if TYPE_CHECKING:  # pragma: no cover
    from irene_framework_tensorflow.tracer import KerasTracedModel

#: TensorFlow has no fused attention kernel: attention always runs as explicit matmul/softmax ops.
ATTENTIONS = ("eager",)


def _unknown(name: str) -> IreneError:
    return IreneError(
        f"unknown model '{name}' for framework 'tensorflow': use a preset ({', '.join(PAPER_PRESETS)}, "
        f"{MINIATURE_PATTERN}) or a path to a saved Keras model (.keras); nothing is downloaded"
    )


def load_keras_file(path: Path) -> Any:
    """A model saved with ``model.save('x.keras')`` (safe mode: no arbitrary code from the file)."""
    if not path.is_file():
        raise IreneError(f"{path}: no such Keras model file")
    from irene_framework_tensorflow.keras_runtime import import_keras

    _, keras = import_keras()
    import keras_hub  # noqa: F401 - registers KerasHub's layers so saved backbones deserialize

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise IreneError(f"{path}: cannot load the Keras model: {type(exc).__name__}: {message}") from None


@dataclass(frozen=True)
class ResolvedModel:
    """A model to trace, its name, where it came from (preset, file, object) and its vocabulary size."""

    name: str
    model: Any
    source: str
    vocabulary_size: int | None = None


def resolve(model: Any, meta: bool = False) -> ResolvedModel:
    """A preset name, a ``.keras`` path or a ``keras.Model`` → the model to trace (a preset with
    ``meta`` gets no weights allocated)."""
    if not isinstance(model, (str, Path)):
        return ResolvedModel(getattr(model, "name", type(model).__name__), model, "object")
    name = str(model)
    if name in PRESETS or name in ALIASES:
        from irene_framework_tensorflow.presets import build_preset

        preset = PRESETS[ALIASES.get(name, name)]
        return ResolvedModel(name, build_preset(name, meta), "preset", preset.vocabulary_size)
    if name.endswith(".keras"):
        path = Path(name)
        return ResolvedModel(path.stem, load_keras_file(path), "file")
    raise _unknown(name)


class TensorFlowFramework(Framework):
    """Keras 3 on TensorFlow: layer tree, functional ops, flops and bytes per node, node replay."""

    name = "tensorflow"
    description = "Keras 3 / TensorFlow: layer tree, functional ops, flops and bytes per node, node replay"

    def presets(self) -> list[str]:
        return list(PRESETS)

    def trace(
        self,
        model: Any,
        batch_size: int,
        seq_len: int,
        *,
        device: str = "cpu",
        attention: str = "eager",
        meta: bool = False,
    ) -> KerasTracedModel:
        """Build or load ``model`` (preset name, ``.keras`` path or ``keras.Model``) and trace it.

        ``meta=True`` computes structure and model features from the traced graph without running
        the forward pass (and, for presets, without allocating weights); such a trace cannot replay.
        """
        if attention not in ATTENTIONS:
            raise IreneError(
                f"--attention {attention}: the tensorflow framework supports only 'eager' "
                "(TensorFlow runs attention as explicit matmul and softmax ops)"
            )
        from irene_framework_tensorflow.keras_runtime import tf_device
        from irene_framework_tensorflow.tracer import trace_keras_model

        tf_device(device)  # a bad --device fails before a model is built
        resolved = resolve(model, meta)
        return trace_keras_model(
            resolved.model, batch_size, seq_len, name=resolved.name, vocabulary_size=resolved.vocabulary_size,
            device=device, meta=meta, source=resolved.source,
        )
