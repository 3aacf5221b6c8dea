"""Train the reference predictors shipped in ``irene_core/data/reference/`` (``make reference-predictors``).

From the paper's device_1 measurements (``$IRENE_DATA_DIR/device_1``, default
``../shared/datasets/irene-original/device_1``), the six paper models (the set the cross-validation
checks; ``sshleifer/tiny-ctrl`` is left out as in the paper): one predictor with all features, one
with model features only (what ``irene predict`` uses when no predictor is given).  The release's
trees get the tracer's ``mem_bytes_moved`` first (a meta trace per tree size, about a minute).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from irene_core.predictor.predictor import REFERENCE_DIR, Predictor
from irene_core.tracing.bytes_moved import add_bytes_moved
from irene_core.tree.paper_csv import PAPER_MODELS, import_csv_dir

ROOT = Path(__file__).resolve().parent.parent
HARDWARE = "device_1: i9-7900X + GTX 1080 Ti (emonPi wall power), from the IrEne release"
FEATURE_SETS = ("all", "model")
#: Features left out of the shipped predictors. None: the tracers count ``mem_bytes`` with the
#: paper's byte model (see docs/torch-tracer.md), so the release's values and traced trees agree, and
#: ``mem_bytes_moved`` is added to the release's trees (:mod:`irene_core.tracing.bytes_moved`).
EXCLUDE: list[str] = []


def default_data_dir() -> Path:
    return Path(os.environ.get("IRENE_DATA_DIR", ROOT.parent / "shared" / "datasets" / "irene-original")) / "device_1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_data_dir(), help="the device_1 CSV directory")
    parser.add_argument("--output", type=Path, default=REFERENCE_DIR, help="where the predictor directories go")
    args = parser.parse_args(argv)
    records = import_csv_dir(args.data, device="device_1", models=list(PAPER_MODELS))
    report = add_bytes_moved(records)
    if report.skipped:
        label, why = next(iter(report.skipped.items()))
        raise SystemExit(f"mem_bytes_moved could not be added to {len(report.skipped)} trees, e.g. {label}: {why}")
    for features in FEATURE_SETS:
        predictor = Predictor(features=features, exclude_features=EXCLUDE, hardware=HARDWARE)
        target = predictor.fit(records).save(args.output / features)
        size = sum(p.stat().st_size for p in target.iterdir())
        print(f"{features:6s} → {target} ({size / 1024:.0f} KiB, {len(records)} trees)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
