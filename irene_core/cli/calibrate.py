"""CLI command ``irene calibrate``: adapt a predictor to another device from a few measured trees."""

from __future__ import annotations

import math
from pathlib import Path

import click

from irene_core.cli.console import console, err_console
from irene_core.cli.data import fill_bytes_moved
from irene_core.cli.views import noise_floor_text
from irene_core.errors import IreneError


@click.command("calibrate")
@click.argument("predictor", metavar="PREDICTOR")
@click.argument("target", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Calibrated predictor to write.")
@click.option("--device", default=None, help="Use only TARGET's trees of this device label.")
def calibrate_cmd(predictor: str, target: Path, output: Path, device: str | None) -> None:
    """Adapt PREDICTOR to the device that measured TARGET (1–3 measured trees are enough): a shipped
    predictor (reference or model: model features; all) or a predictor directory."""
    from irene_core.predictor.calibration import calibrate
    from irene_core.predictor.predictor import load_predictor
    from irene_core.tree.jsonl import load_records

    source = load_predictor(predictor, "PREDICTOR")
    records = load_records(target)
    if device is not None:
        records = [r for r in records if r.device == device]
    if not records:
        raise IreneError(f"{target}: no tree{f' of device {device!r}' if device else ''} to calibrate on")
    if "mem_bytes_moved" in source.feature_names_:
        fill_bytes_moved(records, "this predictor needs it")
    calibrated = calibrate(source, records)
    calibrated.save(output)
    report = calibrated.training_["calibration"]
    for group, fit in report["groups"].items():
        if group != "*":
            err_console.print(f"  {group}: scale ×{fit['scale']:.3g}, slope {fit['slope']:+.3f}", highlight=False)
    for group, joules in report["free_groups_j"].items():
        err_console.print(f"  {group}: {1000 * joules:.3g} mJ per call (free on the source device)", highlight=False)
    widening = report["widening_per_log_unit"]
    err_console.print(
        "  beyond the calibration trees' sizes, intervals widen "
        f"{' / '.join(f'×{2 ** widening[lv]:.3f}' for lv in ('ml', 'module', 'model'))} (ml / module / model) "
        "each way per doubling" + ("; calibrate on 2–3 trees of other models and sizes to measure the transfer"
                          if len(records) == 1 else ""),
        highlight=False,
    )
    if any(report["measurement_noise"].values()):
        spread = noise_floor_text(report["measurement_noise"], "the larger of its nodes' round-to-round spread and "
                                  "how much the predictor's error on one node differed between training trees")
        err_console.print(f"  one tree: intervals widen at least {spread}", highlight=False)
    err_console.print(f"  a primitive kind the target trees lack: its intervals widen "
                      f"×{math.exp(report['unmeasured_kind_widening']):.2f} each way", highlight=False)
    for level, margin in report["unmeasured_structure_widening"].items():
        err_console.print(f"  a {level} of a structure the target trees lack (its level's scale): its intervals "
                          f"widen ×{math.exp(margin):.2f} each way", highlight=False)
    console.print(
        f"calibrated predictor → {output} (from {len(records)} tree(s): {', '.join(report['trees'])}; "
        f"hardware: {calibrated.hardware})"
    )
