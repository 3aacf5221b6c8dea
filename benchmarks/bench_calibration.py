"""Device transfer (``irene calibrate``): a device_1 predictor on a synthetic second device, before
and after calibration on 1, 2 or 3 of its measured trees; its section of ``docs/results.md``.

The default predictor (model features) is trained on the paper's six models (device_1, with the
tracer's bytes moved).  The synthetic device (:mod:`synthetic_device`) scales each primitive's energy
by its own factor, adds an idle power over 0.7× shorter times and 3 % noise.  Calibration trees are
taken from the synthetic device's trees (spread over models and sizes); errors and 90 % interval
coverage are measured on all the other synthetic trees.

    python benchmarks/bench_calibration.py
"""

from __future__ import annotations

import time

import numpy as np
from bench_predictor import paper_records
from results import update
from synthetic_device import synthetic_device

from irene_core.predictor.calibration import calibrate
from irene_core.predictor.predictor import Predictor
from irene_core.tree.schema import LEVELS
from irene_core.tree.table import TreeTable

#: Calibration trees: (model, batch, seq), one to three of them.
TARGETS = [("bert-base-uncased", 8, 64), ("gpt2", 24, 128), ("distilbert-base-uncased", 16, 256)]


def scores(predictor: Predictor, records) -> dict[str, tuple[float, float]]:
    """Per level: (mean % error, 90 % interval coverage %) over the nodes with ground truth."""
    predicted = TreeTable.from_records(predictor.predict(records))
    out = {}
    for level in LEVELS:
        nodes = [n for n, lv in zip(predicted.nodes, predicted.level, strict=True) if lv == level]
        nodes = [n for n in nodes if n.ground_truth_energy]
        errors = [abs(n.predicted_energy / n.ground_truth_energy - 1) * 100 for n in nodes]
        covered = [n.predicted_low <= n.ground_truth_energy <= n.predicted_high for n in nodes]
        out[level] = (float(np.mean(errors)), 100 * float(np.mean(covered)))
    return out


def section(argv: list[str] | None = None) -> str:
    records = paper_records(argv, __doc__)
    start = time.perf_counter()
    predictor = Predictor(features="model").fit(records)
    print(f"device_1 predictor (model features, {len(records)} trees): {time.perf_counter() - start:.0f} s", flush=True)
    synthetic = synthetic_device(records)
    keys = {(r.model_name, r.batch_size, r.seq_len): r for r in synthetic}
    targets = [keys[t] for t in TARGETS]
    rest = [r for r in synthetic if r not in targets]
    rows = [("device_1 predictor, uncalibrated", 0, scores(predictor, rest), 0.0)]
    for n in range(1, len(targets) + 1):
        start = time.perf_counter()
        calibrated = calibrate(predictor, targets[:n])
        seconds = time.perf_counter() - start
        rows.append((f"calibrated on {n} tree(s)", n, scores(calibrated, rest), seconds))
        print(f"  {rows[-1][0]}: {rows[-1][2]} ({seconds:.1f} s)", flush=True)
    out = [
        "## Device transfer: `irene calibrate` on a synthetic second device",
        "",
        "The default predictor (model features) trained on device_1's six models, then calibrated on 1–3",
        "measured trees of a synthetic device (per-kind energy factors 0.6–2.5, an idle power of 40 W over",
        "0.7× shorter times, 3 % noise; `benchmarks/synthetic_device.py`).  Errors: mean % error per level",
        f"over the {len(rest)} other synthetic trees; coverage: share of their nodes inside the 90 % interval.",
        f"Calibration trees, in order: {', '.join(f'{m} {b}×{s}' for m, b, s in TARGETS)}.",
        "",
        "| predictor | ml % | module % | model % | coverage ml / module / model % | calibration s |",
        "|---|---|---|---|---|---|",
    ]
    for label, _, result, seconds in rows:
        out.append(
            f"| {label} | " + " | ".join(f"{result[lv][0]:.2f}" for lv in LEVELS)
            + " | " + " / ".join(f"{result[lv][1]:.1f}" for lv in LEVELS) + f" | {seconds:.2f} |"
        )
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    update({"bench_calibration": section()})
