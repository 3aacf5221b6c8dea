"""Integrating timestamped samples over a window: edge samples count for their overlap only."""

from __future__ import annotations

import math

import pytest

from irene_core.errors import IreneError
from irene_core.metering.integration import SampleSeries
from irene_core.metering.meter import parse_option_pairs, positive_float, positive_int, resolution_warning


def _series() -> SampleSeries:
    # 10 W over (0, 1], 20 W over (1, 2], 40 W over (2, 4]
    series = SampleSeries(["p"], start=0.0)
    for t, watts in ((1.0, 10.0), (2.0, 20.0), (4.0, 40.0)):
        series.append(t, [watts])
    return series


def test_straddling_samples_are_weighted_by_their_overlap():
    integral = _series().integrate(0.5, 2.5)
    assert integral.totals["p"] == pytest.approx(0.5 * 10 + 1.0 * 20 + 0.5 * 40)
    assert integral.covered_s["p"] == pytest.approx(2.0)
    assert integral.samples == 3
    assert integral.mean("p") == pytest.approx(45.0 / 2.0)


def test_window_inside_one_sample_and_beyond_the_data():
    series = _series()
    assert series.integrate(2.5, 3.0).totals["p"] == pytest.approx(20.0)
    beyond = series.integrate(3.0, 6.0)  # data ends at 4
    assert beyond.totals["p"] == pytest.approx(40.0) and beyond.covered_s["p"] == pytest.approx(1.0)
    assert series.integrate(5.0, 6.0).samples == 0
    assert math.isnan(series.integrate(5.0, 6.0).mean("p"))


def test_without_a_start_the_first_sample_only_marks_the_start():
    series = SampleSeries(["p"])
    series.append(1.0, [99.0])
    series.append(2.0, [10.0])
    assert series.integrate(0.0, 2.0).totals["p"] == pytest.approx(10.0)
    assert series.start == 1.0


def test_nan_values_are_left_out_of_coverage():
    series = SampleSeries(["a", "b"], start=0.0)
    series.append(1.0, [1.0, math.nan])
    series.append(2.0, [3.0, 5.0])
    integral = series.integrate(0.0, 2.0)
    assert integral.mean("a") == pytest.approx(2.0)
    assert integral.mean("b") == pytest.approx(5.0) and integral.covered_s["b"] == pytest.approx(1.0)


def test_out_of_order_samples_are_ignored_and_width_is_checked():
    series = _series()
    series.append(3.0, [1000.0])
    assert series.integrate(0.0, 4.0).totals["p"] == pytest.approx(10 + 20 + 80)
    with pytest.raises(ValueError, match="expected 1 values, got 2"):
        series.append(5.0, [1.0, 2.0])


def test_pruning_keeps_the_coverage_of_later_windows():
    series = _series()
    series.prune(1.5)  # drops the sample ending at 1.0
    assert len(series) == 2 and series.start == 1.0
    assert series.integrate(1.0, 2.5).totals["p"] == pytest.approx(20 + 0.5 * 40)
    assert series.integrate(0.0, 1.0).samples == 0


def test_retention_drops_old_samples_and_compacts():
    series = SampleSeries(["p"], start=0.0, retain_s=10.0)
    for i in range(1, 5001):
        series.append(i * 0.01, [1.0])
    assert 39.98 <= series.start <= 40.0 and 1000 <= len(series) <= 1002  # the last 10 s are kept
    assert series.integrate(45.0, 50.0).totals["p"] == pytest.approx(5.0)


def test_option_parsers_and_pairs():
    assert positive_float("0.5") == 0.5 and positive_int("3") == 3
    for bad in ("0", "-1", "nan", "inf", "x"):
        with pytest.raises(ValueError, match="expected a positive number"):
            positive_float(bad)
    for bad in ("0", "1.5", "-2", "x"):
        with pytest.raises(ValueError, match="expected a positive integer"):
            positive_int(bad)
    assert parse_option_pairs(["port=/dev/ttyUSB0", "baud = 38400", "x=a=b"]) == {
        "port": "/dev/ttyUSB0", "baud": "38400", "x": "a=b"}
    with pytest.raises(IreneError, match=r"--meter-option 'port': expected key=value"):
        parse_option_pairs(["port"])


def test_resolution_warning():
    assert resolution_warning(1.0, 0.1, "x") is None
    warning = resolution_warning(0.5, 0.17, "sample interval")
    assert warning.startswith("the sample interval (0.17 s) is coarse for a 0.5 s window")
    assert "up to 68 %" in warning and "at least 1.7 s" in warning
