"""The paired shift table (seg/shift_report.py) by hand, and its rendering for docs/results.md."""

import math

import pytest

from adversarial_seg.seg.shift_report import format_markdown, paired_summary, render_shift_record


def test_paired_summary_by_hand():
    rows = [
        {"shift": "original", "case": "a", "fold": 0, "class": "tz", "dsc": 0.90},
        {"shift": "original", "case": "b", "fold": 1, "class": "tz", "dsc": 0.80},
        {"shift": "original", "case": "c", "fold": 1, "class": "tz", "dsc": math.nan},  # empty reference
        {"shift": "gain4", "case": "a", "fold": 0, "class": "tz", "dsc": 0.90},
        {"shift": "gain4", "case": "b", "fold": 1, "class": "tz", "dsc": 0.70},
        {"shift": "gain4", "case": "c", "fold": 1, "class": "tz", "dsc": 0.50},
    ]
    (row,), pairs = paired_summary(rows, ["gain4"], ["tz"])
    assert row["cases"] == 2  # case c has no defined original DSC: left out of the pairs
    assert row["dsc_original"] == pytest.approx(0.85) and row["dsc_shifted"] == pytest.approx(0.80)
    assert row["difference"] == pytest.approx(-0.05) and row["worst_difference"] == pytest.approx(-0.10)
    assert row["difference_std"] == pytest.approx(math.sqrt(0.005))
    assert row["cases_dropping_over_goal"] == 1 and row["within_goal"]  # a mean drop of exactly 0.05 is within
    assert [(p["case"], p["fold"]) for p in pairs] == [("a", 0), ("b", 1)]
    assert "| gain4 | tz | 2 | 0.850 | 0.800 | -0.050 ± 0.071 | -0.100 | 1 | yes |" in format_markdown([row])


def test_a_record_renders_its_verdict():
    row = {"shift": "fov110", "region": "pz", "cases": 30, "dsc_original": 0.6, "dsc_shifted": 0.4,
           "difference": -0.2, "difference_std": 0.1, "worst_difference": -0.5, "cases_dropping_over_goal": 20,
           "within_goal": False}  # fmt: skip
    record = {"title": "T", "command": "python scripts/prostate_shift.py RUN --output DIR", "git_commit": "a" * 40,
              "trained_by": "b" * 40, "cases": 30, "folds": [0, 1], "tta": True, "device": "cpu",
              "wall_seconds": 600, "machine": "m", "shifts": {"fov110": [{"kind": "crop", "field_mm": 110.0}]},
              "table": [row, {**row, "shift": "gain4", "difference": 0.0, "within_goal": True}]}  # fmt: skip
    text = "\n".join(render_shift_record(record))
    assert "| fov110 | pz | 30 | 0.600 | 0.400 | -0.200 ± 0.100 | -0.500 | 20 | no |" in text
    assert "more than 0.05 (mean paired difference, some region) under: fov110." in text
    assert "`fov110` crop to 110 mm in-plane around the centre" in text
    assert "Wall time 10.0 min on m" in text and "`aaaaaaaaaaaa`" in text
