"""Fixtures for the data-layer tests: small datasets shaped like the real ones, written per test."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adversarial_seg.config import DataConfig
from adversarial_seg.data.phantoms import phantom_data_config, write_prostate_phantoms, write_skin_phantoms

# ../shared/data relative to the repository root (never copied into the repository).
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def shared_dataset(name: str) -> Path:
    """The real dataset folder, or skip the test with a message saying why."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real data {path} is absent (only on machines with ../shared/data); skipped")
    return path


def link_zonal_cases(root: Path, cases: dict[str, str]) -> Path:
    """A prostate_zonal-shaped dataset at ``root`` holding ``cases`` ({case: grid}) of the real set as
    symlinks (nothing is copied out of ../shared), with its cases.csv; skips without the real data."""
    source = shared_dataset("prostate_zonal")
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True)
    for case in cases:
        (root / "imagesTr" / f"{case}_0000.nii.gz").symlink_to(source / "imagesTr" / f"{case}_0000.nii.gz")
        (root / "labelsTr" / f"{case}.nii.gz").symlink_to(source / "labelsTr" / f"{case}.nii.gz")
    (root / "cases.csv").write_text("case,grid\n" + "".join(f"{c},{g}\n" for c, g in cases.items()))
    return root


@pytest.fixture(scope="session")
def two_sites(tmp_path_factory):
    """6 prostate phantoms whose patients lie on two sites: A for patients 0 and 2, B for 1 and 3."""
    root = write_prostate_phantoms(tmp_path_factory.mktemp("sites"), cases=6, seed=1, size=(64, 64, 6))
    rows = list(csv.DictReader(open(root / "cases.csv")))
    for row in rows:
        row["site"] = "A" if int(row["patient"].split("_")[1]) % 2 == 0 else "B"
    with open(root / "cases.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root, {row["case"]: row["site"] for row in rows}


def save_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


@pytest.fixture
def prostate158_like(tmp_path: Path) -> Path:
    """Like ../shared/data/prostate158_slices: grey PNG slices <patient>_<slice>.png, labels 0/1/2.

    6 patients, 4 of them with two slices (10 slices). Label: gland square 1, tumour corner 2.
    """
    root = tmp_path / "prostate158"
    names = [
        "10002_9",
        "10002_12",
        "10003_14",
        "10007_9",
        "10007_10",
        "10008_12",
        "10009_15",
        "10009_16",
        "10011_15",
        "10011_17",
    ]
    for index, name in enumerate(names):
        image = np.full((16, 16), 40 + index, dtype=np.uint8)
        label = np.zeros((16, 16), dtype=np.uint8)
        label[4:12, 4:12] = 1  # 64 gland pixels, 16 of which are tumour
        label[4:8, 4:8] = 2
        save_png(root / "images" / f"{name}.png", image)
        save_png(root / "labels" / f"{name}.png", label)
    return root


@pytest.fixture
def ph2_like(tmp_path: Path) -> Path:
    """Like ../shared/data/ph2: RGB PNG images, 0/255 masks, cases.csv with a diagnosis column."""
    root = tmp_path / "ph2"
    diagnoses = ["common_nevus", "atypical_nevus", "melanoma", "common_nevus", "atypical_nevus", "melanoma"]
    rows = ["case,diagnosis"]
    for index, diagnosis in enumerate(diagnoses):
        case = f"IMD{index + 2:03d}"
        image = np.zeros((12, 20, 3), dtype=np.uint8)
        image[..., 0], image[..., 1], image[..., 2] = 200, 150 + index, 120
        mask = np.zeros((12, 20), dtype=np.uint8)
        mask[3:9, 5:15] = 255
        image[mask > 0] = (90, 60, 50)
        save_png(root / "images" / f"{case}.png", image)
        save_png(root / "masks" / f"{case}.png", mask)
        rows.append(f"{case},{diagnosis}")
    (root / "cases.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="session")
def prostate_phantoms(tmp_path_factory) -> Path:
    """4 prostate phantom cases (nnU-Net layout), written once per session."""
    return write_prostate_phantoms(tmp_path_factory.mktemp("prostate") / "p", cases=4, seed=3)


@pytest.fixture(scope="session")
def skin_phantoms(tmp_path_factory) -> Path:
    return write_skin_phantoms(tmp_path_factory.mktemp("skin") / "s", cases=6, seed=3)


def phantom_config(kind: str, root: Path, **overrides) -> DataConfig:
    return DataConfig(**{**phantom_data_config(kind, root), **overrides})
