"""One option vocabulary for the commands that trace, profile or predict (``trace``, ``run``, ``sweep``,
``predict``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

#: The one default input size.
DEFAULT_BATCH_SIZE = 8
DEFAULT_SEQ_LEN = 128
ATTENTIONS = ("eager", "sdpa")


if TYPE_CHECKING:
    _SizeListBase = click.ParamType[tuple[int, ...]]
    _FloatBase = click.ParamType[float]
else:  # click's ParamType takes type arguments only in recent versions (IrEne supports click >= 8.1)
    _SizeListBase = _FloatBase = click.ParamType


class SizeList(_SizeListBase):
    """``8`` or ``8,16,24``: positive integers, in the order given, without repeats."""

    name = "N[,N…]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        parts = [p.strip() for p in str(value).split(",")]
        try:
            items = [int(p) for p in parts]
        except ValueError:
            self.fail(f"expected positive integers such as 8 or 8,16, got {value!r}", param, ctx)
        if not items or any(i < 1 for i in items):
            self.fail(f"expected positive integers such as 8 or 8,16, got {value!r}", param, ctx)
        return tuple(dict.fromkeys(items))


class FiniteFloat(_FloatBase):
    """A finite number of at least ``low`` (above it when ``open_low``): no nan, no inf."""

    name = "NUMBER"

    def __init__(self, low: float, open_low: bool = False) -> None:
        self.low = low
        self.open_low = open_low

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"expected a number, got {value!r}", param, ctx)
        too_low = number <= self.low if self.open_low else number < self.low
        if not math.isfinite(number) or too_low:
            bound = f"{'>' if self.open_low else '>='} {self.low:g}"
            self.fail(f"expected a finite number {bound}, got {value!r}", param, ctx)
        return number


#: Durations and intervals that must be positive (a plugin may ask for more), amounts that may be zero.
POSITIVE = FiniteFloat(0.0, open_low=True)
NON_NEGATIVE = FiniteFloat(0.0)


def sizes(func: F) -> F:
    """``-b/--batch-size`` and ``-s/--seq-len`` (each one value or a comma-separated sweep)."""
    func = click.option("-s", "--seq-len", "--seq-lens", "seq_lens", type=SizeList(), default=str(DEFAULT_SEQ_LEN),
                        show_default=True, help="Sequence length, or several: 32,64,128.")(func)
    return click.option("-b", "--batch-size", "--batch-sizes", "batch_sizes", type=SizeList(),
                        default=str(DEFAULT_BATCH_SIZE), show_default=True, help="Batch size, or several: 8,16.")(func)


PHASES = ("forward", "prefill", "decode")
DTYPES = ("float32", "bfloat16", "float16")
LOGITS = ("last", "all")


def phases(func: F) -> F:
    """``--phase``, ``--context/--contexts`` (a sweep, like the sizes), ``--dtype``, ``--logits``."""
    func = click.option("--logits", type=click.Choice(LOGITS), default="last", show_default=True,
                        help="prefill: the language-model head on the last position, or on all.")(func)
    func = click.option("--dtype", type=click.Choice(DTYPES), default=None,
                        help="Parameter dtype (default: bfloat16 for the modern decoder presets, else float32).")(func)
    func = click.option("--context", "--contexts", "contexts", type=SizeList(), default=None,
                        help="decode: tokens already in the KV cache, or several: 128,1024,4096.")(func)
    return click.option("--phase", type=click.Choice(PHASES), default="forward", show_default=True,
                        help="forward (base model), prefill (prompt → KV cache) or decode (one token).")(func)


def phase_seq_lens(seq_lens: tuple[int, ...], phase: str) -> tuple[int, ...]:
    """The sequence lengths of a run: decode makes one token per sequence, so an unset ``--seq-len`` is 1."""
    source = click.get_current_context().get_parameter_source("seq_lens")
    return (1,) if phase == "decode" and source is click.core.ParameterSource.DEFAULT else seq_lens


def framework(func: F) -> F:
    return click.option("--framework", default="torch", show_default=True,
                        help="Framework plugin that traces the model (see 'irene plugins').")(func)


#: What every ``--predictor`` names (:func:`irene_core.predictor.predictor.load_predictor`).
PREDICTOR_NAMES = "a shipped predictor (reference or model: model features; all) or a predictor directory"


def predictor(func: F) -> F:
    return click.option("--predictor", default=None,
                        help=f"{PREDICTOR_NAMES.capitalize()} (default: reference).")(func)


def device(func: F) -> F:
    return click.option("--device", default="cpu", show_default=True,
                        help="Device to run on: cpu, cuda or cuda:N.")(func)


def attention(func: F) -> F:
    return click.option("--attention", type=click.Choice(ATTENTIONS), default="eager", show_default=True,
                        help="eager shows MatMul/Softmax leaves; sdpa one fused attention leaf.")(func)


def meter_options(func: F) -> F:
    """``--meter-option key=value`` (repeatable; ``--option`` is kept as an alias)."""
    return click.option("--meter-option", "--option", "meter_options", multiple=True, metavar="KEY=VALUE",
                        help="Meter option (repeatable), e.g. port=/dev/ttyUSB0.")(func)
