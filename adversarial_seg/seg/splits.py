"""k-fold splits grouped by patient (scikit-learn), written once to ``splits.json``.

``splits.json`` is a list ``[{"fold": 0, "train": [case ids], "val": [case ids]}, ...]`` with
0-based folds (DESIGN.md, "Run directory"). Once written it is reused, so every scheme and
seed of a study sees the same folds.

Example:
    >>> folds = fold_splits(["a1", "a2", "b1", "c1"], ["a", "a", "b", "c"], k=2, seed=0)
    >>> any({"a1", "a2"} & set(f["train"]) and {"a1", "a2"} & set(f["val"]) for f in folds)
    False
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

from adversarial_seg.atomic_files import atomic_write_bytes
from adversarial_seg.errors import InputError


class SplitsError(InputError):
    """Splits cannot be made or do not fit the dataset; the message says why and what to do."""


def fold_splits(
    cases: Sequence[str],
    groups: Sequence[str],
    k: int,
    seed: int,
    strata: Sequence[str] | None = None,
) -> list[dict]:
    """Patient-grouped (and optionally stratified) k folds over ``cases``.

    Cases keep their given order inside each list, so the result depends only on the inputs.
    """
    n_groups = len(set(groups))
    if n_groups < k:
        raise SplitsError(f"cv.folds = {k} but the data has only {n_groups} patients; lower cv.folds")
    index = np.arange(len(cases))
    if strata is not None:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        parts = splitter.split(index, list(strata), list(groups))
    else:
        # GroupKFold has no shuffle before scikit-learn 1.6; permute the groups ourselves.
        rng = np.random.default_rng(seed)
        names = sorted(set(groups))
        relabel = dict(zip(names, rng.permutation(len(names))))
        parts = GroupKFold(n_splits=k).split(index, groups=[relabel[g] for g in groups])
    try:
        parts = list(parts)
    except ValueError as exc:  # scikit-learn: more folds than the members of every stratum
        raise SplitsError(
            f"cv.folds = {k} cannot be stratified on data.stratify ({exc}); lower cv.folds or drop data.stratify"
        ) from None
    return [
        {"fold": fold, "train": [cases[i] for i in sorted(train_idx)], "val": [cases[i] for i in sorted(val_idx)]}
        for fold, (train_idx, val_idx) in enumerate(parts)
    ]


def inner_split(
    train_cases: Sequence[str], groups: Sequence[str], seed: int, fraction: float = 0.2
) -> tuple[list, list]:
    """Hold out about ``fraction`` of a fold's training patients for model selection
    (half of them when there are fewer than 1 / fraction patients)."""
    n_groups = len(set(groups))
    if n_groups < 2:
        raise SplitsError("train.select: inner_val needs at least 2 patients in each fold's training cases")
    k = max(2, min(round(1 / fraction), n_groups))
    fold = fold_splits(train_cases, groups, k=k, seed=seed)[0]
    return fold["train"], fold["val"]


def training_subset(
    cases: Sequence[str], groups: Sequence[str], fraction: float, seed: int, strata: Sequence[str] | None = None
) -> list[str]:
    """The cases of a seeded ``fraction`` of the patients of ``cases`` (``train.fraction``), in
    their given order; at least one patient.

    Nested: for one seed, a smaller fraction keeps a subset of a larger one's patients. With
    ``strata`` every stratum keeps about its share: each patient's key is its shuffled rank inside
    its stratum (plus a random offset under one) over the stratum's size, and patients are kept in
    key order, so the first n of any length interleave the strata in proportion.
    """
    if fraction >= 1:
        return list(cases)
    patients = list(dict.fromkeys(groups))
    stratum_of = dict(zip(groups, strata)) if strata is not None else dict.fromkeys(patients, "")
    rng = np.random.default_rng(seed)
    keys = {}
    for stratum in sorted(set(stratum_of.values())):
        members = [p for p in patients if stratum_of[p] == stratum]
        for rank, i in enumerate(rng.permutation(len(members))):
            keys[members[i]] = (rank + rng.random()) / len(members)
    kept = set(sorted(patients, key=keys.__getitem__)[: max(1, round(fraction * len(patients)))])
    return [case for case, group in zip(cases, groups) if group in kept]


def check_splits(folds: list[dict], cases: Sequence[str], source: str) -> None:
    """Refuse splits that do not cover exactly the dataset's cases, each validated once."""
    problems = []
    val = [c for f in folds for c in f["val"]]
    missing = sorted(set(cases) - set(val))
    unknown = sorted(set(c for f in folds for c in f["train"] + f["val"]) - set(cases))
    duplicated = sorted({c for c in val if val.count(c) > 1})
    if missing:
        problems.append(f"cases {missing[:5]} are in no fold's val list")
    if unknown:
        problems.append(f"cases {unknown[:5]} are not in the dataset")
    if duplicated:
        problems.append(f"cases {duplicated[:5]} are validated in more than one fold")
    if [f.get("fold") for f in folds] != list(range(len(folds))):
        problems.append("folds must be numbered 0, 1, ... in order")
    if problems:
        raise SplitsError(f"{source}: " + "; ".join(problems) + "; fix the file or remove it to make new splits")


def read_splits(path: Path) -> list[dict]:
    try:
        folds = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SplitsError(f"{path} cannot be read as JSON ({exc}); fix or remove it") from None
    if not isinstance(folds, list) or not all(isinstance(f, dict) and {"train", "val"} <= set(f) for f in folds):
        raise SplitsError(f'{path} must be a list of {{"fold", "train", "val"}} objects')
    return folds


def write_splits(folds: list[dict], path: Path) -> None:
    atomic_write_bytes(path, (json.dumps(folds, indent=1) + "\n").encode())


def scored_folds(config, folds: list[dict], records: dict) -> list[dict]:
    """The folds as scored: with ``domain`` set, each fold's validation cases of the target sites
    only (what seg-train predicts and seg-eval reads); the folds themselves otherwise."""
    if config.domain is None:
        return folds
    target = set(config.domain.target)
    return [{**fold, "val": [c for c in fold["val"] if c in records and records[c].domain in target]} for fold in folds]
