"""Patient-grouped, optionally stratified folds; splits.json checks."""

import pytest

from adversarial_seg.seg.splits import (
    SplitsError,
    check_splits,
    fold_splits,
    inner_split,
    read_splits,
    training_subset,
    write_splits,
)


def prostate158_like():
    """Shaped like ../shared/data/prostate158_slices: patient = stem prefix; 4 patients have two slices."""
    cases = [f"{p:03d}_{s}" for p in range(1, 29) for s in ((10, 14) if p <= 4 else (12,))]
    return cases, [c.split("_")[0] for c in cases]


def test_no_patient_in_two_folds_and_every_case_validated_once():
    cases, groups = prostate158_like()
    folds = fold_splits(cases, groups, k=5, seed=0)
    patient = dict(zip(cases, groups))
    for f in folds:
        assert not {patient[c] for c in f["train"]} & {patient[c] for c in f["val"]}
        assert sorted(f["train"] + f["val"]) == sorted(cases)
    check_splits(folds, cases, "test")
    assert fold_splits(cases, groups, k=5, seed=0) == folds
    assert fold_splits(cases, groups, k=5, seed=1) != folds


def test_stratification_keeps_class_shares():
    cases = [f"c{i}" for i in range(60)]
    strata = ["melanoma" if i % 3 == 0 else "nevus" for i in range(60)]  # 20 of 60
    folds = fold_splits(cases, cases, k=5, seed=0, strata=strata)
    share = dict(zip(cases, strata))
    for f in folds:
        assert sum(share[c] == "melanoma" for c in f["val"]) == 4  # 20 / 5 exactly


def test_too_few_patients_is_refused():
    with pytest.raises(SplitsError, match="only 2 patients"):
        fold_splits(["a", "b", "c"], ["p", "p", "q"], k=3, seed=0)


def test_inner_split_is_grouped():
    cases, groups = prostate158_like()
    train, val = inner_split(cases, groups, seed=0)
    assert val and not {c.split("_")[0] for c in train} & {c.split("_")[0] for c in val}


def test_splits_file_round_trip_and_checks(tmp_path):
    cases, groups = prostate158_like()
    folds = fold_splits(cases, groups, k=4, seed=0)
    write_splits(folds, tmp_path / "splits.json")
    assert read_splits(tmp_path / "splits.json") == folds
    folds[0]["val"].append("999_1")
    with pytest.raises(SplitsError, match=r"999_1.*not in the dataset"):
        check_splits(folds, cases, "splits.json")


def test_training_subset_is_nested_stratified_and_keeps_patients_whole():
    cases, groups = prostate158_like()  # 28 patients, the first 4 with two slices
    strata = ["a" if int(g) % 4 == 0 else "b" for g in groups]  # 7 of 28 patients in "a"
    subsets = {f: training_subset(cases, groups, f, seed=3, strata=strata) for f in (0.25, 0.5, 1.0)}
    assert subsets[1.0] == cases
    quarter, half = (set(subsets[f]) for f in (0.25, 0.5))
    assert quarter < half  # nested
    patient = dict(zip(cases, groups))
    for subset in (quarter, half):  # a patient's slices stay together
        kept = {patient[c] for c in subset}
        assert subset == {c for c in cases if patient[c] in kept}
    kept_quarter = {patient[c] for c in quarter}
    assert len(kept_quarter) == 7  # round(0.25 * 28)
    assert sum(int(g) % 4 == 0 for g in kept_quarter) == 2  # 7 / 4 = 1.75 of stratum "a"
    assert subsets[0.25] == [c for c in cases if c in quarter]  # the given order
    assert training_subset(cases, groups, 0.25, seed=4, strata=strata) != subsets[0.25]
    assert len(training_subset(cases, groups, 0.01, seed=0)) >= 1  # at least one patient
