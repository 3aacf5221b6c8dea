"""The default energy regressor for one primitive type (and the generic fallback).

``method="auto"`` (default) chooses, by cross-validation *inside the training rows* on folds that
leave out one model each and folds that leave out the largest batch sizes and sequence lengths
(:func:`irene_core.predictor.estimators.range_folds`), the candidate with the least mean error among:

- log-space ridge regressions of log E on the work features (flops, bytes, parameters and, when
  present, resources; batch and sequence length only say how the work is split), linear or
  quadratic, for several penalties; beyond the training range they continue along their tangent,
  a power law in the work (see :func:`irene_core.predictor.design.bounded`), held between the
  energy at the range's edge and that edge's energy grown as fast as the work grows
  (:data:`MAX_ELASTICITY`): k times the work never costs less, nor more than k times as much.  A
  fit on a few rows may have any slope at its edge: trained on one tree of each of six models
  (batch 8, seq 64), an ``Embedding`` fit grew as the 20th power of its bytes, and the six models
  at batch 16 and seq 128 were predicted at 10¹¹ J;
- the linear wall-energy model of :func:`irene_core.predictor.design.power_terms` fitted for
  relative error (with model features alone: energy affine in flops and bytes), free or with every
  coefficient ≥ 0 as physics has them (power at rest and per unit of activity or clock, energy per
  flop and per byte, the launch floor): the free fit may trade collinear terms against each other
  (a negative power per GPU utilisation against a large one per clock), which fits inside the
  training range and can drift outside it; beyond the range it is held as the log-space models are,
  as a term the training rows never varied has any coefficient the fit likes (trained on an H200's
  trees of 2,048 tokens, a ``LayerNorm``'s memory-controller activity 0–0.03 %, it said 334 mJ at
  8,192 tokens and 43 % for 15.9 mJ measured; held, 18.1 mJ);
- where the GPU's own energy is a feature, the metered wall-energy model of
  :func:`irene_core.predictor.design.metered_terms`, E ≈ a·E_gpu + p₀·t with a, p₀ ≥ 0, held alike:
  the two terms every machine has, in proportion to the work.  The full model's launch floor,
  utilisations and clocks fit the smallest shapes (a ``LayerNorm`` at batch 8 and sequence 32 drew
  194 W, every larger one 235–241 W) and pay for it in the slopes: trained on batch ≤ 16 and sequence
  ≤ 128, BERT's ``LayerNorm`` leaves at batch ≥ 24 and sequence ≥ 160 came out 1.8 % low, the metered
  model's 0.1 %;

each optionally followed by a kernel smoother of the log residuals over the node's shape (batch,
sequence length, flops, bytes): GPU kernels make energy a bumpy function of shape, and shapes
measured in training are corrected to their measured energy while new shapes fall back to the
smooth model.  The chosen candidate is refitted on all rows.

When the training rows give no range fold (fewer than three batch sizes and three sequence
lengths), or none whose held-out rows do more work (flops or bytes) than its training rows, no fold
can judge how a log-space candidate continues beyond the range, and only the physical candidates
are offered where there are some: trained on one tree of each of six models (batch 8, seq 64, no
GPU energy), a degree-2 ``Softmax`` fit chosen on folds by model ran flat beyond its range, 41× low
at batch 24, seq 256; trained on the H200's trees, whose batch sizes and sequence lengths vary but
not their 2,048 tokens, a ``Conv1D`` fit ran flat, 6× low at 8,192 tokens.

``fallback=True`` makes the regressor that predicts kinds without a regressor of their own (the
predictor's generic fallback, fitted on every training leaf): it offers only the linear wall-energy
models with every coefficient ≥ 0, the models whose terms carry over from one kind to another
(power × time, energy per flop and per byte, the launch floor; the GPU's metered energy), and the
predictor gives it folds that hold out whole computations.  On device_1, each computation held out
in turn, the log-space candidates it would otherwise choose on the others predict the held-out kind
up to 3,600× off (an ``Embedding`` from the parameters of dense layers); see ``docs/results.md``.

``method="ols"`` is the paper's regressor: ordinary least squares on standardised raw features
plus the input size (batch × sequence length).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from irene_core.errors import IreneError
from irene_core.predictor.design import (
    BYTE_FEATURES,
    bounded,
    extensive,
    has_metered_terms,
    has_power_terms,
    layout_features,
    metered_terms,
    power_terms,
    shape_columns,
    transform,
    untransform,
)
from irene_core.predictor.estimators import (
    FoldSmoothing,
    KernelSmoother,
    RelativeLinear,
    Ridge,
    deduplicate,
    group_folds,
    range_folds,
    weighted_mean,
)

METHODS = ("auto", "ols")
#: Features that say how the work is split, not how much there is.
_SIZES = ("batch_size", "seq_len")
#: The steepest power of the work a log-space model grows by beyond its training range (see the
#: module docstring): energy in proportion to the largest growth of an extensive work feature.
MAX_ELASTICITY = 1.0
#: The candidates held within :data:`MAX_ELASTICITY` beyond the training range: log-space and physical.
_HELD = ("log", "power", "metered")
#: The candidates linear in their terms, fitted for relative error (not in log space).
_LINEAR = ("power", "metered")
#: How far (log units) a range fold's held-out work must exceed its training work to judge extrapolation.
_MARGIN = float(np.log(1.01))


@dataclass(frozen=True)
class Candidate:
    """One base model of the ``auto`` search."""

    kind: str  # "log" | "power" | "metered" | "ols"
    degree: int
    alpha: float
    nonnegative: bool = False  # "power", "metered": every coefficient ≥ 0


class LeafRegressor:
    """Energy of one primitive type from its raw features (see the module docstring)."""

    def __init__(
        self,
        feature_names: Sequence[str],
        method: str = "auto",
        alphas: Sequence[float] = (1e-6, 1e-4, 1e-2),
        degrees: Sequence[int] = (1, 2),
        power_alphas: Sequence[float] = (1e-8, 1e-5),
        smoothers: Sequence[tuple[float, float]] = ((0.03, 0.1), (0.1, 0.1), (0.03, 1.0), (0.3, 1.0)),
        fallback: bool = False,
    ):
        if method not in METHODS:
            raise IreneError(f"unknown leaf regressor method '{method}' (choose from: {', '.join(METHODS)})")
        self.feature_names = tuple(feature_names)
        self.method = method
        self.alphas = tuple(alphas)
        self.degrees = tuple(degrees)
        self.power_alphas = tuple(power_alphas)
        self.smoothers: tuple[tuple[float, ...], ...] = tuple(tuple(s) for s in smoothers)
        self.fallback = fallback
        self.candidate_: Candidate | None = None
        self.low_: np.ndarray | None = None
        self.high_: np.ndarray | None = None
        self.floor_: float = 0.0
        self.base_: Ridge | RelativeLinear | None = None
        self.smoother_: KernelSmoother | None = None
        self.cv_error_: float | None = None
        size = [i for i, f in enumerate(self.feature_names) if f in layout_features(self.feature_names)]
        #: Columns of the log-space models: the work (flops, bytes, parameters, resources), not the
        #: layout features that only say how the work is split (see the module docstring).
        self.work_: list[int] = [i for i in range(len(self.feature_names)) if i not in size] or size

    # -- design -----------------------------------------------------------------------------------
    def _candidates(self) -> list[Candidate]:
        if self.method == "ols":
            return [Candidate("ols", 1, 0.0)]
        physical = has_power_terms(self.feature_names)
        out = [] if self.fallback and physical else [Candidate("log", d, a) for d in self.degrees for a in self.alphas]
        if physical:
            signs = (True,) if self.fallback else (False, True)
            out += [Candidate("power", 1, a, nonneg) for nonneg in signs for a in self.power_alphas]
        if has_metered_terms(self.feature_names):
            out += [Candidate("metered", 1, a, True) for a in self.power_alphas]
        return out

    def _design(self, X: np.ndarray, candidate: Candidate, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        if candidate.kind == "power":
            return power_terms(X, self.feature_names)
        if candidate.kind == "metered":
            return metered_terms(X, self.feature_names)
        if candidate.kind == "ols":
            return np.hstack([X, self._input_size(X)])
        cols = self.work_
        return bounded(self._work_logs(X), low[cols], high[cols], candidate.degree, self._continues(low, high))

    def _continues(self, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Which log-space columns continue beyond the training range [low, high] (:func:`bounded`): those
        that training varied."""
        cols = self.work_
        mask: np.ndarray = high[cols] > low[cols]
        return mask

    def _work_logs(self, X: np.ndarray) -> np.ndarray:
        """The log-space models' columns before :func:`bounded`: the work features, transformed."""
        return transform(X[:, self.work_], [self.feature_names[c] for c in self.work_])

    def _edge(
        self, X: np.ndarray, candidate: Candidate, low: np.ndarray, high: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """For a log-space or physical candidate: the design at each row's work clipped to the training
        range from above, and each row's largest growth (log units) of an extensive work feature beyond
        it; None when no row lies above the range (nothing to hold)."""
        cols = self.work_
        names = [self.feature_names[c] for c in cols]
        Z = self._work_logs(X)
        above = Z - high[cols]
        if not (above > 0).any():
            return None
        growth: np.ndarray = np.max(np.where(extensive(names), above, 0.0), axis=1, initial=0.0)
        clipped = np.minimum(Z, high[cols])
        if candidate.kind in _LINEAR:
            at_edge = X.copy()
            at_edge[:, cols] = untransform(clipped, names)
            return self._design(at_edge, candidate, low, high), growth
        return bounded(clipped, low[cols], high[cols], candidate.degree, self._continues(low, high)), growth

    def _beyond_work(self, Zt: np.ndarray, train: np.ndarray, valid: np.ndarray) -> bool:
        """Whether a fold's held-out rows ``valid`` lie above its ``train`` rows in flops or bytes (by more
        than 1 %; ``Zt``: the rows transformed): whether it judges how a candidate continues beyond the
        work it was fitted on."""
        amounts = [c for c in self.work_ if self.feature_names[c] in ("flops", *BYTE_FEATURES)]
        Z = Zt[:, amounts]
        return bool(amounts) and bool((Z[valid].max(axis=0) > Z[train].max(axis=0) + _MARGIN).any())

    def _sizes(self, X: np.ndarray) -> np.ndarray:
        """The batch size and sequence length columns of ``X`` (those that are features)."""
        return X[:, [self.feature_names.index(f) for f in _SIZES if f in self.feature_names]]

    def _input_size(self, X: np.ndarray) -> np.ndarray:
        """batch × sequence length (the paper's ``input_size``), if both are features."""
        if not {"batch_size", "seq_len"} <= set(self.feature_names):
            return np.zeros((len(X), 0))
        size: np.ndarray = X[:, [self.feature_names.index("batch_size")]] * X[:, [self.feature_names.index("seq_len")]]
        return size

    def _shape(self, X: np.ndarray) -> np.ndarray | None:
        cols = shape_columns(self.feature_names)
        return transform(X[:, cols], [self.feature_names[c] for c in cols]) if cols else None

    def _fit_base(
        self, X: np.ndarray, y: np.ndarray, w: np.ndarray, candidate: Candidate, low: np.ndarray, high: np.ndarray
    ) -> Ridge | RelativeLinear:
        return self._fit_design(self._design(X, candidate, low, high), y, w, candidate)

    @staticmethod
    def _fit_design(D: np.ndarray, y: np.ndarray, w: np.ndarray, candidate: Candidate) -> Ridge | RelativeLinear:
        if candidate.kind in _LINEAR:
            return RelativeLinear(candidate.alpha, nonnegative=candidate.nonnegative).fit(D, y, w)
        if candidate.kind == "ols":
            return Ridge(0.0).fit(D, y, w)
        return Ridge(candidate.alpha).fit(D, np.log(y), w)

    def _log_base(
        self,
        model: Ridge | RelativeLinear,
        X: np.ndarray,
        candidate: Candidate,
        low: np.ndarray,
        high: np.ndarray,
        floor: float,
    ) -> np.ndarray:
        """log of the base model's energy (linear models floored at ``floor`` > 0; log-space and physical
        ones held within their growth beyond the training range)."""
        edge = self._edge(X, candidate, low, high) if candidate.kind in _HELD else None
        return self._log_design(model, self._design(X, candidate, low, high), candidate, floor, edge)

    @staticmethod
    def _log_design(
        model: Ridge | RelativeLinear, D: np.ndarray, candidate: Candidate, floor: float,
        edge: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """log of the base model's energy on design ``D`` (a linear model's floored at ``floor``), held
        between its energy at the training range's ``edge`` (:meth:`_edge`) and that grown by
        :data:`MAX_ELASTICITY`."""

        def log_energy(design: np.ndarray) -> np.ndarray:
            raw: np.ndarray = model.predict(design)
            return raw if candidate.kind == "log" else np.log(np.maximum(raw, floor))

        logs = log_energy(D)
        if edge is None:
            return logs
        at_edge = log_energy(edge[0])
        capped: np.ndarray = np.clip(logs, at_edge, at_edge + MAX_ELASTICITY * edge[1])
        return capped

    # -- fitting ----------------------------------------------------------------------------------
    def fit(
        self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, sample_weight: np.ndarray | None = None
    ) -> LeafRegressor:
        X = np.asarray(X, float)
        y = np.asarray(y, float)
        if len(y) == 0 or np.any(~(y > 0)):
            raise IreneError("a primitive regressor needs rows with positive energies")
        groups = np.zeros(len(y), dtype=object) if groups is None else np.asarray(groups, dtype=object)
        if sample_weight is None:
            X, y, groups, w = deduplicate(X, y, groups)
        else:
            w = np.asarray(sample_weight, float)
        self.floor_ = float(0.1 * y.min())
        Zt = transform(X, self.feature_names)
        self.low_, self.high_ = Zt.min(axis=0), Zt.max(axis=0)
        candidates = self._candidates()
        if not any(self._beyond_work(Zt, train, valid) for train, valid in range_folds(self._sizes(X))):
            candidates = [c for c in candidates if c.kind != "log"] or candidates
        smoothers: list[tuple[float, ...] | None] = [None] + ([] if self.method == "ols" else list(self.smoothers))
        if self._shape(X) is None:
            smoothers = [None]
        scores = self._cross_validate(X, y, groups, w, candidates, smoothers)
        if scores:
            candidate, smoother = min(scores, key=lambda k: float(np.mean(scores[k])))
            self.cv_error_ = float(np.mean(scores[candidate, smoother]))
        else:  # no fold (one group, no range fold): no honest way to compare, take the physical model
            physical = next((c for c in candidates if c.kind == "power" and c.nonnegative), Candidate("log", 1, 1e-4))
            candidate, smoother = (candidates[0] if self.method == "ols" else physical), None
        self.candidate_ = candidate
        self.base_ = self._fit_base(X, y, w, candidate, self.low_, self.high_)
        self.smoother_ = None
        if smoother is not None:
            shape = self._shape(X)
            assert shape is not None  # smoothers are only tried when there are shape columns
            residual = np.log(y) - self._log_base(self.base_, X, candidate, self.low_, self.high_, self.floor_)
            bandwidth, shrinkage = smoother  # a pair: cross-validation unpacked it
            self.smoother_ = KernelSmoother(bandwidth, shrinkage).fit(shape, residual, w)
        return self

    def _cross_validate(
        self,
        X: np.ndarray,
        y: np.ndarray,
        groups: np.ndarray,
        w: np.ndarray,
        candidates: list[Candidate],
        smoothers: list[tuple[float, ...] | None],
    ) -> dict[tuple[Candidate, tuple[float, ...] | None], list[float]]:
        """Mean relative error of every (candidate, smoother) pair on each fold: one per left-out
        group and one per size column (batch, sequence length) with its largest values left out."""
        errors: dict[tuple[Candidate, tuple[float, ...] | None], list[float]] = {}
        shape = self._shape(X)
        folds = [*group_folds(groups), *range_folds(self._sizes(X))]
        for train, valid in folds:
            floor = 0.1 * y[train].min()
            Zt = transform(X[train], self.feature_names)
            low, high = Zt.min(axis=0), Zt.max(axis=0)
            bandwidths = (s[0] for s in smoothers if s is not None)
            smoothing = None if shape is None else FoldSmoothing(shape[train], w[train], shape[valid], bandwidths)
            # shared by a design's penalties: the training and held-out designs, the held-out rows' edge
            designs: dict[tuple[str, int], tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]] = {}
            for candidate in candidates:
                design = (candidate.kind, candidate.degree)
                if design not in designs:
                    designs[design] = (self._design(X[train], candidate, low, high),
                                       self._design(X[valid], candidate, low, high),
                                       self._edge(X[valid], candidate, low, high) if candidate.kind in _HELD else None)
                D_train, D_valid, edge = designs[design]
                model = self._fit_design(D_train, y[train], w[train], candidate)
                fitted = self._log_design(model, D_train, candidate, floor)
                predicted = self._log_design(model, D_valid, candidate, floor, edge)
                corrections = (  # every smoother scored at once, a row each
                    np.zeros((len(smoothers), len(predicted))) if smoothing is None
                    else smoothing.corrections(np.log(y[train]) - fitted, smoothers)
                )
                scores = weighted_mean(np.abs(np.exp(predicted + corrections) - y[valid]) / y[valid], w[valid])
                for smoother, err in zip(smoothers, scores, strict=True):
                    errors.setdefault((candidate, smoother), []).append(float(err))
        return errors

    @property
    def scales_with_work(self) -> bool:
        """Whether the estimate is proportional to the node's measured work (the metered model): below
        the training range it falls with the work by itself (see :mod:`~irene_core.predictor.regressor`)."""
        return self.candidate_ is not None and self.candidate_.kind == "metered"

    # -- prediction -------------------------------------------------------------------------------
    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.base_ is None:
            raise IreneError("the primitive regressor is not fitted")
        # set together with base_ by fit / set_state
        assert self.candidate_ is not None and self.low_ is not None and self.high_ is not None
        X = np.asarray(X, float)
        if self.candidate_.kind == "ols":
            energy: np.ndarray = np.maximum(
                self.base_.predict(self._design(X, self.candidate_, self.low_, self.high_)), 0.0
            )
            return energy
        log_e = self._log_base(self.base_, X, self.candidate_, self.low_, self.high_, self.floor_)
        if self.smoother_ is not None:
            shape = self._shape(X)
            assert shape is not None  # a smoother is only fitted when there are shape columns
            log_e = log_e + self.smoother_.predict(shape)
        energy = np.exp(log_e)
        return energy

    # -- state ------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        assert self.candidate_ is not None and self.base_ is not None  # only fitted regressors are saved
        return {
            "method": self.method,
            "candidate": asdict(self.candidate_),
            "low": self.low_,
            "high": self.high_,
            "floor": self.floor_,
            "work": list(self.work_),
            "cv_error": self.cv_error_,
            "base": self.base_.get_state(),
            "smoother": None if self.smoother_ is None else self.smoother_.get_state(),
        }

    def set_state(self, state: dict[str, Any]) -> LeafRegressor:
        self.method = state["method"]
        self.candidate_ = Candidate(**state["candidate"])
        self.low_ = np.asarray(state["low"], float)
        self.high_ = np.asarray(state["high"], float)
        self.floor_ = float(state["floor"])
        self.work_ = [int(c) for c in state.get("work", range(len(self.feature_names)))]  # older saves: all
        self.cv_error_ = state.get("cv_error")
        base_cls = RelativeLinear if self.candidate_.kind in _LINEAR else Ridge
        self.base_ = base_cls.from_state(state["base"])
        self.smoother_ = None if state.get("smoother") is None else KernelSmoother.from_state(state["smoother"])
        return self

    def describe(self) -> str:
        """One line: the chosen model, for training reports."""
        c = self.candidate_
        if c is None:
            return "unfitted"
        power = "power-linear" + " ≥ 0" * c.nonnegative
        names = {"log": f"log-ridge deg {c.degree} α={c.alpha:g}", "power": f"{power} α={c.alpha:g}",
                 "metered": f"metered GPU energy + time ≥ 0 α={c.alpha:g}", "ols": "OLS"}
        text = names[c.kind]
        if self.smoother_ is not None:
            text += f" + shape smoother (h={self.smoother_.bandwidth:g}, λ={self.smoother_.shrinkage:g})"
        return text
