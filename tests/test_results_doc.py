"""docs/results.md is exactly what its committed records render to."""

import subprocess
import sys
from pathlib import Path

from adversarial_seg.seg.results_doc import render_study

REPO = Path(__file__).resolve().parents[1]


def test_results_page_matches_its_records():
    check = subprocess.run(
        [sys.executable, "scripts/render_results.py", "--check"], cwd=REPO, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_study_table_formats_recorded_numbers():
    overall = {"dsc": {"mean": 0.9312, "std": 0.0456}, "sensitivity": {"mean": 0.95, "std": 0.05},
               "specificity": {"mean": 0.97, "std": None}}  # fmt: skip
    run = lambda scheme, seconds: {  # noqa: E731
        "run": scheme, "scheme": scheme, "git_commit": "abcdef1234567890", "image_size": [192, 256], "epochs": 60,
        "folds_finished": [0, 1], "n_cases": 150, "train_seconds": seconds, "median_epoch_seconds": seconds / 100, "config_hash": "h" + scheme,
        "classes": {"lesion": {"overall": overall, "folds": {"0": {"dsc": 0.92}, "1": {"dsc": 0.94}}}},
    }  # fmt: skip
    lines = render_study({"title": "T", "command": "c", "machine": "m", "runs": [run("ce", 600), run("hybrid", 720)]})
    assert (
        "| hybrid | 0.931 ± 0.046 | 0.950 ± 0.050 | 0.970 | 0.920, 0.940 | 12.0 min | 7.20 | 1.20 | `hhybrid` |"
        in lines
    )


def test_comparison_table_in_kohl_layout_with_tests_and_seed_spread():
    from adversarial_seg.seg.results_doc import render_comparison

    def run(scheme, seed, dsc):
        overall = {"dsc": {"mean": dsc, "std": 0.1}, "sensitivity": {"mean": 0.5, "std": 0.2},
                   "specificity": {"mean": 0.98, "std": 0.01}}  # fmt: skip
        lesions = {"detected_lesions": 7, "reference_lesions": 10, "detection_sensitivity": 0.7,
                   "false_positive_lesions_per_case": 0.25}  # fmt: skip
        return {"scheme": scheme, "seed": seed, "config_hash": "h", "n_folds": 4, "train_seconds": 60, "dataset": "d",
                "git_commit": "unknown", "classes": {"tumour": {"n_cases": 36, "overall": overall, "lesions": lesions, "n_empty_reference": 0}}}  # fmt: skip

    record = {
        "title": "T", "command": "seg-eval x", "machine": "m", "note": "", "lesion_overlap": 0.1,
        "runs": {"ce_seed0": run("ce", 0, 0.35), "ce_seed1": {**run("ce", 1, 0.37), "git_commit": "0123456789abcdef + fedcba9876543210"},
                 "hybrid_seed0": run("hybrid", 0, 0.39)},
        "comparison": [{"run": "hybrid_seed0", "class": "tumour", "metric": "dsc", "n_pairs": 36,
                        "mean_difference": 0.04, "p_value": 0.0123, "p_holm": 0.0492},
                       {"run": "hybrid_seed0", "class": "tumour", "metric": "iou", "n_pairs": 36,
                        "mean_difference": 0.03, "p_value": 0.02, "p_holm": 0.06}],
        "seed_spread": {"ce": {"runs": ["ce_seed0", "ce_seed1"],
                               "tumour": {m: {"mean": 0.36, "seed_std": 0.0141} for m in ("dsc", "sensitivity", "specificity")}}},
    }  # fmt: skip
    text = "\n".join(render_comparison(record))
    assert "| ce_seed0 | ce | 0 | 0.350 ± 0.100 | 0.500 ± 0.200 | 0.980 ± 0.010 |" in text
    assert "| hybrid_seed0 | tumour | dsc | 36 | +0.0400 | 0.012 | 0.049 |" in text
    assert (
        "iou" not in text.split("Paired per case")[1].split("Per scheme")[0]
    )  # only DSC / sensitivity / specificity (and HD95, specificity in region) shown
    assert "| ce | 2 | 0.360 (0.014) |" in text
    assert "| ce_seed0 | tumour | 7 / 10 | 0.700 | 0.25 |" in text
    assert "| ce_seed1 | `h` | 0123456789ab + fedcba987654 | 1.0 min |" in text  # resumed under newer code
    assert "| ce_seed0 | `h` | unknown | 1.0 min |" in text


def test_comparison_shows_hd95_partial_runs_and_calibration():
    from adversarial_seg.seg.results_doc import render_comparison

    overall = {"dsc": {"mean": 0.8, "std": 0.1}, "sensitivity": {"mean": 0.8, "std": 0.1},
               "specificity": {"mean": 0.99, "std": 0.01}, "hd95_mm": {"mean": 7.25, "std": 1.5}}  # fmt: skip
    lesions = {"detected_lesions": 6, "reference_lesions": 6, "detection_sensitivity": 1.0,
               "false_positive_lesions_per_case": 0.0}  # fmt: skip
    calibration = {
        "temperatures": [1.04], "scaling": "identity", "n_bins": 15,
        "metrics": {"gland": {"overall": {"before": {"ece": 0.0016, "brier": 0.0067}, "after": {"ece": 0.0029, "brier": 0.0068}}}},
        "uncertainty": {"gland": {"spearman": -0.414, "p": 0.0232, "mean_dsc": 0.826, "mean_dsc_after_review_5": 0.855}},
    }  # fmt: skip
    run = {"scheme": "ce", "seed": 0, "config_hash": "h", "n_folds": 2, "train_seconds": 60, "dataset": "d",
           "git_commit": "unknown", "missing": [2, 3, 4], "calibration": calibration,
           "classes": {"gland": {"n_cases": 12, "overall": overall, "lesions": lesions, "n_empty_reference": 0}}}  # fmt: skip
    record = {"title": "T", "command": "c", "machine": "m", "note": "", "lesion_overlap": 0.1, "runs": {"b": run},
              "comparison": [], "seed_spread": {}}  # fmt: skip
    text = "\n".join(render_comparison(record))
    assert "| run | gland HD95 (mm) |" in text and "| b | 7.250 ± 1.500 |" in text
    assert "`b` lacks folds 2, 3, 4" in text
    assert "| b | 1.040 (not applied: frozen T 1) | gland | overall | 0.0016 | 0.0029 | 0.0067 | 0.0068 |" in text
    assert "| b | gland | -0.414 | 0.023 | 0.826 | 0.855 |" in text


def test_calibration_of_a_single_fold_run_shows_n_a_after_scaling():
    from adversarial_seg.seg.results_doc import render_calibration

    block = {"temperatures": [0.64], "n_bins": 15, "uncertainty": {},
             "metrics": {"lesion": {"overall": {"before": {"ece": 0.1205, "brier": 0.0905},
                                                "after": {"ece": None, "brier": None}}}}}  # fmt: skip
    text = "\n".join(render_calibration({"r": {"calibration": block}}))
    assert "| r | 0.640 | lesion | overall | 0.1205 | n/a | 0.0905 | n/a |" in text
