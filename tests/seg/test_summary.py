import math

import pytest

from adversarial_seg.seg.summary import format_table, read_cases_csv, summarise, write_cases_csv


def rows():
    nan = float("nan")
    return [
        {
            "case": "a",
            "patient": "a",
            "fold": 0,
            "class": "t",
            "dsc": 0.9,
            "sensitivity": 1.0,
            "specificity": 0.9,
            "ref_voxels": 5,
            "pred_voxels": 6,
        },
        {
            "case": "b",
            "patient": "b",
            "fold": 0,
            "class": "t",
            "dsc": 0.5,
            "sensitivity": 0.5,
            "specificity": 1.0,
            "ref_voxels": 4,
            "pred_voxels": 2,
        },
        {
            "case": "c",
            "patient": "c",
            "fold": 1,
            "class": "t",
            "dsc": 0.7,
            "sensitivity": 0.6,
            "specificity": 0.8,
            "ref_voxels": 3,
            "pred_voxels": 3,
        },
        {
            "case": "d",
            "patient": "d",
            "fold": 1,
            "class": "t",
            "dsc": nan,
            "sensitivity": nan,
            "specificity": 0.95,
            "ref_voxels": 0,
            "pred_voxels": 7,
        },
        {
            "case": "e",
            "patient": "e",
            "fold": 1,
            "class": "t",
            "dsc": nan,
            "sensitivity": nan,
            "specificity": 1.0,
            "ref_voxels": 0,
            "pred_voxels": 0,
        },
    ]


def test_pooled_mean_std_per_fold_and_empty_references():
    s = summarise(rows(), metrics=("dsc", "specificity"))["t"]
    dsc = s["overall"]["dsc"]
    assert dsc["mean"] == pytest.approx(0.7)  # (0.9 + 0.5 + 0.7) / 3
    assert dsc["std"] == pytest.approx(0.2)  # sqrt(((.2)^2 + (.2)^2 + 0) / 2)
    assert (dsc["n"], dsc["n_undefined"]) == (3, 2)
    assert s["folds"]["0"]["dsc"] == pytest.approx(0.7) and s["folds"]["1"]["dsc"] == pytest.approx(0.7)
    assert s["folds"]["1"]["specificity"] == pytest.approx((0.8 + 0.95 + 1.0) / 3)
    assert s["n_empty_reference"] == 2
    assert s["false_positive_case_rate"] == pytest.approx(0.5)
    assert s["mean_false_positive_voxels_on_empty"] == pytest.approx(3.5)


def test_cases_csv_round_trip(tmp_path):
    write_cases_csv(rows(), tmp_path / "cases.csv")
    back = read_cases_csv(tmp_path / "cases.csv")
    assert back[0]["dsc"] == pytest.approx(0.9) and math.isnan(back[3]["dsc"])
    assert (tmp_path / "cases.csv").read_text().splitlines()[0].startswith("case,patient,fold,class,dsc,iou")


def test_table_has_fold_and_overall_rows():
    table = format_table(summarise(rows()), metrics=("dsc",))
    assert "| t | overall | 5 | 0.700 ± 0.200 |" in table
    assert "| t | 0 | 2 | 0.700 |" in table


def test_median_and_quartiles_interpolate_linearly():
    s = summarise(rows(), metrics=("specificity",))["t"]["overall"]["specificity"]
    # sorted 0.8, 0.9, 0.95, 1.0, 1.0: positions 1 (q25), 2 (median), 3 (q75)
    assert (s["q25"], s["median"], s["q75"]) == pytest.approx((0.9, 0.95, 1.0))
    four = summarise([{**r, "dsc": v} for r, v in zip(rows(), [1, 2, 3, 4, float("nan")])], metrics=("dsc",))
    d = four["t"]["overall"]["dsc"]
    assert (d["q25"], d["median"], d["q75"]) == pytest.approx((1.75, 2.5, 3.25))  # 25 % of the way from 1 to 2, ...
