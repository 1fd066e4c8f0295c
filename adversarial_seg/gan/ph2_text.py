"""PH2 lesions described in words, for text-conditional generation (StackGAN): each case's sentence is
built from its diagnosis and the experts' dermoscopic criteria in ``attributes.csv``.

    >>> describe({"diagnosis": "atypical_nevus", "asymmetry": "symmetric in one axis", "pigment_network": "atypical",
    ...           "dots_globules": "absent", "streaks": "absent", "regression_areas": "present",
    ...           "blue_whitish_veil": "absent", "colours": "light_brown dark_brown"})
    'atypical nevus, symmetric in one axis, atypical pigment network, no dots or globules, no streaks, regression areas, no blue-whitish veil, light brown and dark brown'

Words are numbered from a fixed vocabulary (every word any sentence can hold, sorted), so token ids do
not depend on which cases a folder holds. The attributes are also kept as class indices
(``ATTRIBUTES``; colours as six present / absent labels) for the attribute classifiers that measure
text-image agreement (``gan/ph2_encoders.py``).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import torch

from adversarial_seg.gan.paired_data import PairedDataError, _ph2_pairs

Tensor = torch.Tensor

# attribute -> its values in attributes.csv, in class-index order
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "diagnosis": ("common_nevus", "atypical_nevus", "melanoma"),
    "asymmetry": ("fully symmetric", "symmetric in one axis", "fully asymmetric"),
    "pigment_network": ("typical", "atypical"),
    "dots_globules": ("absent", "typical", "atypical"),
    "streaks": ("absent", "present"),
    "regression_areas": ("absent", "present"),
    "blue_whitish_veil": ("absent", "present"),
}
COLOURS = ("white", "red", "light_brown", "dark_brown", "blue_gray", "black")
LABELS = (*ATTRIBUTES, *(f"colour_{c}" for c in COLOURS))  # what the attribute classifiers predict
PAD = 0  # token id of padding; words count from 1


def _present(value: str, name: str) -> str:
    return name if value == "present" else f"no {name}"


def describe(row: dict) -> str:
    """The sentence of one attributes.csv row."""
    dots = "no dots or globules" if row["dots_globules"] == "absent" else f"{row['dots_globules']} dots and globules"
    colours = [c.replace("_", " ") for c in row["colours"].split()]
    colour_text = colours[0] if len(colours) == 1 else ", ".join(colours[:-1]) + " and " + colours[-1]
    parts = [
        row["diagnosis"].replace("_", " "),
        row["asymmetry"],
        f"{row['pigment_network']} pigment network",
        dots,
        _present(row["streaks"], "streaks"),
        _present(row["regression_areas"], "regression areas"),
        _present(row["blue_whitish_veil"], "blue-whitish veil"),
        colour_text,
    ]
    return ", ".join(parts)


def words(sentence: str) -> list[str]:
    return sentence.replace(",", " ,").split()


@lru_cache(maxsize=1)
def vocabulary() -> dict[str, int]:
    """Every word a sentence can hold -> its id (1, 2, ...), sorted, so ids never depend on the data."""
    vocab = {",", "and", "no", "dots", "or", "globules", "pigment", "network", "streaks", "regression", "areas",
             "blue-whitish", "veil", "nevus"}  # fmt: skip
    for values in ATTRIBUTES.values():
        for value in values:
            vocab.update(value.replace("_", " ").split())
    for colour in COLOURS:
        vocab.update(colour.split("_"))
    return {word: i + 1 for i, word in enumerate(sorted(vocab))}


def tokens(sentence: str, length: int) -> Tensor:
    """(length,) word ids of ``sentence``, padded with 0."""
    vocab = vocabulary()
    ids = [vocab[w] for w in words(sentence)][:length]
    return torch.tensor(ids + [PAD] * (length - len(ids)), dtype=torch.long)


MAX_WORDS = 40  # PH2's longest sentence has 34 words and commas


def attribute_labels(row: dict) -> Tensor:
    """(len(LABELS),) class index per categorical attribute, then 0 / 1 per colour."""
    values = [ATTRIBUTES[name].index(row[name]) for name in ATTRIBUTES]
    present = set(row["colours"].split())
    return torch.tensor(values + [int(c in present) for c in COLOURS], dtype=torch.long)


def read_attributes(root: Path) -> dict[str, dict]:
    """case -> its attributes.csv row; one sentence naming the file and the fix when it cannot be used."""
    table = root / "attributes.csv"
    if not table.is_file():
        raise PairedDataError(f"{table} is missing: text-conditional PH2 needs the experts' attributes per case")
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    needed = {"case", *ATTRIBUTES, "colours"}
    if not rows or not needed <= set(rows[0]):
        raise PairedDataError(f"{table} needs the columns {', '.join(sorted(needed))}")
    for row in rows:
        for name, values in ATTRIBUTES.items():
            if row[name] not in values:
                raise PairedDataError(f"{table}: case {row['case']} has {name} {row[name]!r}, not one of {values}")
        unknown = set(row["colours"].split()) - set(COLOURS)
        if unknown or not row["colours"].split():
            raise PairedDataError(f"{table}: case {row['case']} has colours {row['colours']!r}; use {COLOURS}")
    return {row["case"]: row for row in rows}


def ph2_text_splits(root: str | Path, size=(64, 64), split_seed: int = 0) -> dict[str, dict]:
    """``{"train"|"val"|"test": {"images" (N, 3, H, W) in [-1, 1], "tokens" (N, MAX_WORDS), "attributes"
    (N, len(LABELS)), "sentences", "cases"}}``: PH2's images (the split of ``gan/paired_data.py``) with
    their descriptions."""
    root = Path(root).expanduser().resolve()
    pairs = _ph2_pairs(str(root), tuple(size), split_seed)
    rows = read_attributes(root)
    out = {}
    for name, (images, _, cases) in pairs.items():
        missing = [c for c in cases if c not in rows]
        if missing:
            raise PairedDataError(f"{root / 'attributes.csv'} has no row for {', '.join(missing[:5])}; add them")
        sentences = [describe(rows[c]) for c in cases]
        out[name] = {
            "images": images,
            "tokens": torch.stack([tokens(s, MAX_WORDS) for s in sentences]),
            "attributes": torch.stack([attribute_labels(rows[c]) for c in cases]),
            "sentences": sentences,
            "cases": list(cases),
        }
    return out
