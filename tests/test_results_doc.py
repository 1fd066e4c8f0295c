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
    assert "| hybrid | 0.931 ± 0.046 | 0.950 ± 0.050 | 0.970 | 0.920, 0.940 | 12.0 min | 7.20 | 1.20 | `hhybrid` |" in lines
