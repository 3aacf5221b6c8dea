"""Feature sets (``--features``) and the design matrices built from raw node features.

- ``all``: model features and resource features (the paper's Table 5 setting).
- ``no-gpu-energy``: everything but the GPU-driver energy (hardware without that counter).
- ``model``: model features only, known before anything runs: a what-if estimate for a model never
  run on the target hardware (the paper's Table 8 "w/o resource" row).
- ``resource``: resource features only (the paper's Table 8 ablation).

Bytes as work enter as one feature, ``bytes_feature``: IrEne's predictors use ``mem_bytes_moved``
(what the kernels read and write, the same for every primitive that does the same product), the
paper's method its own ``mem_bytes`` (a byte model of torch 1.7's calls that charges a GPT-2
``Conv1D`` 3.75 MiB and a BERT ``Linear`` of the same shape 21 MiB).  With ``mem_bytes_moved`` as
work, ``mem_bytes`` stays in the set as a *layout* feature (:func:`layout_features`): like batch and
sequence length it tells apart calls that do the same work differently (a 3-D input run as
matmul + bias add, a 2-D one as one addmm), so it keys the shape smoothers, never the power law.

Transforms: counts and extensive quantities (flops, bytes, parameters, time, energy) enter in log
space, utilisations as fractions, clocks in GHz.  ``power_terms`` are the physical regressors of a
wall-energy model, E ≈ a·E_gpu + t·(p₀ + Σ pᵢ·utilisationᵢ) + …, linear in its coefficients.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from irene_core.errors import IreneError
from irene_core.tree.schema import MODEL_FEATURES, RESOURCE_FEATURES

#: The byte features a predictor can use (see the module docstring).
BYTE_FEATURES: tuple[str, ...] = ("mem_bytes_moved", "mem_bytes")
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "all": MODEL_FEATURES + RESOURCE_FEATURES,
    "no-gpu-energy": MODEL_FEATURES + tuple(f for f in RESOURCE_FEATURES if f != "gpu_energy_mean"),
    "model": MODEL_FEATURES,
    "resource": RESOURCE_FEATURES,
}

#: Additive floor inside log(x + floor) for extensive features that may be 0.
_LOG_FLOORS: dict[str, float] = {
    "batch_size": 0.0,
    "seq_len": 0.0,
    "flops": 1e-3,
    "mem_bytes": 1e-3,
    "mem_bytes_moved": 1e-3,
    "num_parameters": 1.0,
    "times_mean": 1e-6,
    "gpu_energy_mean": 1e-6,
}
_PERCENT = ("cpu", "mem", "gpu", "gpu_mem")
#: The utilisations that draw power (time busy).  Host memory occupancy (``mem``) does not: DRAM power
#: follows traffic, not how full it is, and in measured data the level encodes the run's state (what
#: ran before), not the node's work, so the physical model leaves it out.
_ACTIVITY = ("cpu", "gpu", "gpu_mem")
#: The revision of :func:`power_terms` a saved predictor's fitted coefficients belong to (2: without
#: host memory occupancy).
POWER_TERMS_REVISION = 2
_CLOCKS = ("gpu_clk", "gpu_mem_clk")
#: The features that describe a node's shape (keys of the kernel smoother).
SHAPE_FEATURES: tuple[str, ...] = ("batch_size", "seq_len", "flops", *BYTE_FEATURES)


def feature_names(feature_set: str, bytes_feature: str = "mem_bytes") -> tuple[str, ...]:
    """The raw features of ``feature_set`` with bytes as work in ``bytes_feature`` (see the module docstring)."""
    try:
        names = FEATURE_SETS[feature_set]
    except KeyError:
        raise IreneError(f"unknown feature set '{feature_set}' (choose from: {', '.join(FEATURE_SETS)})") from None
    if bytes_feature not in BYTE_FEATURES:
        raise IreneError(f"unknown byte feature '{bytes_feature}' (choose from: {', '.join(BYTE_FEATURES)})")
    if "mem_bytes" not in names or bytes_feature == "mem_bytes":
        return names
    at = names.index("mem_bytes")
    return (*names[:at], bytes_feature, *names[at + 1 :], "mem_bytes")


def layout_features(names: Sequence[str]) -> tuple[str, ...]:
    """Those of ``names`` that describe how a call's work is laid out, not how much there is: batch,
    sequence length, and the paper's ``mem_bytes`` when ``mem_bytes_moved`` measures the bytes."""
    layout = ("batch_size", "seq_len", "mem_bytes") if "mem_bytes_moved" in names else ("batch_size", "seq_len")
    return tuple(f for f in names if f in layout)


def transform(X: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Raw features → model space: logs of extensive quantities, fractions, GHz."""
    cols = []
    for j, name in enumerate(names):
        v = X[:, j]
        if name in _LOG_FLOORS:
            cols.append(np.log(np.maximum(v, 0.0) + (_LOG_FLOORS[name] or 1e-12)))
        elif name in _PERCENT:
            cols.append(v / 100.0)
        elif name in _CLOCKS:
            cols.append(v / 1000.0)
        else:
            cols.append(v)
    return np.column_stack(cols) if cols else np.zeros((len(X), 0))


def untransform(Z: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Model space → raw features: the inverse of :func:`transform`."""
    cols = []
    for j, name in enumerate(names):
        z = Z[:, j]
        if name in _LOG_FLOORS:
            cols.append(np.exp(z) - (_LOG_FLOORS[name] or 1e-12))
        elif name in _PERCENT:
            cols.append(z * 100.0)
        elif name in _CLOCKS:
            cols.append(z * 1000.0)
        else:
            cols.append(z)
    return np.column_stack(cols) if cols else np.zeros((len(Z), 0))


def bounded(
    Z: np.ndarray, low: np.ndarray, high: np.ndarray, degree: int, continues: np.ndarray | None = None
) -> np.ndarray:
    """The columns of a log-space model, safe outside the training range [low, high].

    Below the range every column is held at ``low``: a smaller shape than any seen costs what the
    smallest did (the predictor scales it down with the work from there, see
    :mod:`irene_core.predictor.leaf_models`).  Above it the columns that ``continues`` (default: all;
    the leaf regressor's: those that training varied) continue along the model's tangent at the edge:
    linear terms keep growing and, for ``degree`` 2, each product ``zᵢ·zⱼ`` is replaced by its
    first-order expansion at the clamped point ``c``, ``cᵢcⱼ + cⱼ(zᵢ − cᵢ) + cᵢ(zⱼ − cⱼ)``.  Energy
    beyond the range is then a power law in the work with the exponents the fit has at the edge, never a
    frozen curvature.  The others are held at the edge above too: a column that training never varied
    has any slope the fit likes (its products with another column are that column's own).  Host memory
    lay at 5 % in every training leaf of device_2 without OpenAI GPT, whose runs held 6–17 %: followed
    beyond the range, it put OpenAI GPT's layer norms 21 % low (no GPU energy, sequences ≥ 256 trained
    on ≤ 128).
    """
    L: np.ndarray = np.maximum(Z, low)
    if continues is not None:
        L = np.where(continues, L, np.minimum(L, high))
    if degree == 1:
        return L
    C = np.minimum(L, high)
    iu, ju = np.triu_indices(Z.shape[1])
    beyond = L - C
    return np.hstack([L, C[:, iu] * C[:, ju] + C[:, ju] * beyond[:, iu] + C[:, iu] * beyond[:, ju]])


def extensive(names: Sequence[str]) -> np.ndarray:
    """Which of ``names`` are extensive quantities (counts, work, time, energy), in log space after
    :func:`transform`: a node doing k times the work has each of them k times as large."""
    mask: np.ndarray = np.array([name in _LOG_FLOORS for name in names], dtype=bool)
    return mask


def work_features(names: Sequence[str]) -> np.ndarray:
    """Which of ``names`` measure how much work a call does (flops, bytes, time, GPU energy), not how it is
    laid out (batch, sequence length) nor how large the module is (parameters)."""
    work = ("flops", *BYTE_FEATURES, "times_mean", "gpu_energy_mean")
    mask: np.ndarray = np.array([name in work and name not in layout_features(names) for name in names], dtype=bool)
    return mask


def work_bytes(names: Sequence[str]) -> str | None:
    """The byte feature of ``names`` that measures work (``mem_bytes_moved`` before ``mem_bytes``)."""
    return next((f for f in BYTE_FEATURES if f in names), None)


def has_power_terms(names: Sequence[str]) -> bool:
    """Whether :func:`power_terms` has a column that grows with the work (time, flops or bytes)."""
    return any(f in names for f in ("times_mean", "flops", *BYTE_FEATURES))


def has_metered_terms(names: Sequence[str]) -> bool:
    """Whether :func:`metered_terms` has its columns: the node's time and its GPU's own energy."""
    return {"times_mean", "gpu_energy_mean"} <= set(names)


def power_terms_changed(names: Sequence[str]) -> bool:
    """Whether :func:`power_terms` of ``names`` differ between revisions (time and host memory present)."""
    return "times_mean" in names and "mem" in names


def power_terms(X: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Columns of the linear wall-energy model E ≈ a·E_gpu + t·(p₀ + Σ pᵢ·utilisationᵢ) + e_f·flops
    + e_b·bytes + c, with the terms of the features present (model features alone: energy affine in
    the work, a power law of exponent 1 beyond the launch floor ``c``); the utilisations are those
    that draw power (:data:`_ACTIVITY`)."""
    col = {name: X[:, j] for j, name in enumerate(names)}
    t = col.get("times_mean")
    cols = [] if t is None else [t]
    if "gpu_energy_mean" in col:
        cols.append(col["gpu_energy_mean"])
    if t is not None:
        cols += [t * col[f] / 100.0 for f in _ACTIVITY if f in col]
        cols += [t * col[f] / 1000.0 for f in _CLOCKS if f in col]
    cols += [col[f] / 1000.0 for f in ("flops", work_bytes(names)) if f in col]
    cols.append(np.ones(len(X)))
    return np.column_stack(cols)


def metered_terms(X: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Columns of the metered wall-energy model E ≈ a·E_gpu + p₀·t: the energy the GPU's own meter
    reads, through the power supply, plus the rest of the machine's power over the time.  No launch
    floor, no utilisation or clock: with the GPU's energy measured, they are what the fit trades
    against the two terms inside the training range (see :mod:`~irene_core.predictor.leaf_regressor`).
    Needs :func:`has_metered_terms`."""
    return np.column_stack([X[:, list(names).index(f)] for f in ("gpu_energy_mean", "times_mean")])


def direct_terms(X: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Columns of a log-linear model of a node's energy on its own work and activity: log time, log GPU
    energy, log flops and bytes (:func:`work_bytes`), the utilisations that draw power and the clocks
    (:func:`transform`); not sizes, parameters or host memory, which tell models apart, not work."""
    physical = ("times_mean", "gpu_energy_mean", "flops", work_bytes(names), *_ACTIVITY, *_CLOCKS)
    keep = [j for j, name in enumerate(names) if name in physical]
    return transform(X[:, keep], [names[j] for j in keep])


def shape_columns(names: Sequence[str]) -> list[int]:
    """Indices of the shape features among ``names`` (empty: no kernel smoothing possible)."""
    present = [names.index(f) for f in SHAPE_FEATURES if f in names]
    return present if any(f in names for f in ("flops", *BYTE_FEATURES)) else []
