"""Paired Wilcoxon tests and Holm's correction, against hand-computed values."""

import math

import pytest

from adversarial_seg.seg.compare import compare_schemes, compare_to_first, format_p, holm, paired_test, seed_averaged


def test_holm_steps_down_and_keeps_order_and_nans():
    # sorted 0.01 (x3), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04, raised to the running max 0.06)
    assert holm([0.04, float("nan"), 0.01, 0.03]) == pytest.approx([0.06, math.nan, 0.03, 0.06], nan_ok=True)
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_p_values_below_a_thousandth_keep_their_magnitude():
    assert [format_p(p) for p in (0.0492, 0.001, 0.00042, 8.7e-11)] == ["0.049", "0.001", "0.00042", "8.7e-11"]
    assert format_p(None) == format_p(float("nan")) == "n/a"


def test_wilcoxon_exact_p_for_five_positive_differences():
    first = {c: 0.5 for c in "abcdef"}
    other = {"a": 0.6, "b": 0.7, "c": 0.8, "d": 0.9, "e": 1.0, "f": 0.5}  # f: zero difference, dropped
    result = paired_test(first, other)
    # exact null distribution: all 5 signs positive has probability 1/32; two-sided 2/32
    assert result["p_value"] == pytest.approx(2 / 32)
    assert result["n_pairs"] == 6 and result["n_zero_differences"] == 1
    assert result["mean_difference"] == pytest.approx(1.5 / 6)
    assert result["median_difference"] == pytest.approx(0.25)


def test_pairs_use_cases_defined_in_both_runs():
    first = {"a": 0.1, "b": float("nan"), "c": 0.3}
    other = {"a": 0.2, "b": 0.5, "d": 0.9}
    result = paired_test(first, other)
    assert result["n_pairs"] == 1 and result["mean_difference"] == pytest.approx(0.1)
    assert math.isnan(paired_test({"a": 1.0}, {"a": 1.0})["p_value"])  # only zero differences: no test


def test_comparison_rows_are_holm_corrected_per_run_and_class():
    base = {"t": {"dsc": {c: 0.5 for c in "abcde"}, "sensitivity": {c: 0.5 for c in "abcde"}}}
    better = {"t": {"dsc": {c: 0.5 + 0.1 * (i + 1) for i, c in enumerate("abcde")},
                    "sensitivity": {c: 0.5 + 0.1 * (i + 1) for i, c in enumerate("abcde")}}}  # fmt: skip
    rows = compare_to_first([base, better], ["ce", "hybrid"], ("dsc", "sensitivity"))
    assert [(r["run"], r["metric"]) for r in rows] == [("hybrid", "dsc"), ("hybrid", "sensitivity")]
    assert [r["p_value"] for r in rows] == pytest.approx([2 / 32, 2 / 32])
    assert [r["p_holm"] for r in rows] == pytest.approx([4 / 32, 4 / 32])  # 2 metrics: x2 then the running max


def test_seeds_are_averaged_per_case_before_schemes_are_paired():
    ce = [{"lesion": {"dsc": {"a": 0.8, "b": 0.6, "c": 0.5}}}, {"lesion": {"dsc": {"a": 0.6, "b": 0.8}}}]
    hybrid = [{"lesion": {"dsc": {"a": 0.9, "b": 0.9, "c": 0.9}}}, {"lesion": {"dsc": {"a": 0.7, "b": 0.9, "c": 0.7}}}]
    schemes = ["ce", "ce", "hybrid", "hybrid"]
    averaged = seed_averaged(ce + hybrid, schemes)
    # c lacks a value in ce's second seed, so ce drops it; hybrid keeps it
    assert averaged["ce"]["lesion"]["dsc"] == pytest.approx({"a": 0.7, "b": 0.7})
    assert averaged["hybrid"]["lesion"]["dsc"] == pytest.approx({"a": 0.8, "b": 0.9, "c": 0.8})
    (row,) = compare_schemes(ce + hybrid, schemes, ["dsc"])
    # pairs a (+0.1) and b (+0.2): both positive, exact two-sided p of two pairs = 2 / 4
    assert (row["run"], row["seeds"], row["reference_seeds"], row["n_pairs"]) == ("hybrid", 2, 2, 2)
    assert row["mean_difference"] == pytest.approx(0.15)
    assert row["p_value"] == pytest.approx(0.5) and row["p_holm"] == pytest.approx(0.5)


def test_schemes_with_one_run_each_are_not_compared_twice():
    runs = [{"lesion": {"dsc": {"a": 0.8}}}, {"lesion": {"dsc": {"a": 0.9}}}]
    assert compare_schemes(runs, ["ce", "hybrid"], ["dsc"]) == []
    assert compare_schemes(runs, ["ce", "ce"], ["dsc"]) == []
