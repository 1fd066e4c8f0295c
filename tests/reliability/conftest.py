"""Shared by the bad-input tables (issue 12): file snapshots, damaged files, tiny trained runs.

Each table case checks that a command refused or reported a bad input in one sentence and that
nothing already on disk changed: ``snapshot`` before and after, compared by ``assert_kept``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from adversarial_seg.data.phantoms import phantom_data_config, write_prostate_phantoms, write_skin_phantoms

from ..cli.conftest import train_tiny

DIRECTORY = "<dir>"  # the snapshot's entry for a folder: a created or removed folder is a change too


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (``DIRECTORY`` for folders) under ``folder``; {} if absent."""
    folder = Path(folder)
    entries: dict[str, str] = {}
    if not folder.exists():
        return entries
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_dir() and not path.is_symlink():
            entries[key] = DIRECTORY
        elif path.is_file():
            entries[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            entries[key] = "<link>"
    return entries


def assert_kept(before: dict[str, str], after: dict[str, str], new_allowed_under: tuple[str, ...] = ()) -> None:
    """Every entry of ``before`` is unchanged in ``after``; new entries only under ``new_allowed_under``."""
    changed = sorted(p for p, digest in before.items() if after.get(p) != digest)
    assert not changed, f"changed or deleted: {changed}"
    new = sorted(p for p in set(after) - set(before) if not any(p.startswith(prefix) for prefix in new_allowed_under))
    assert not new, f"written although nothing should have been: {new}"


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def check_messages(err: str, out: str, fragments: list[str | tuple[str, ...]]) -> None:
    """stderr holds exactly one ``error:`` line per fragment (in order; a tuple: all of its parts in
    that line), and no traceback anywhere."""
    sys.stderr.write(err)  # shown again by pytest on a failure (and with -rP)
    assert "Traceback" not in err + out
    lines = error_lines(err)
    assert len(lines) == len(fragments), lines
    for line, fragment in zip(lines, fragments):
        for part in (fragment,) if isinstance(fragment, str) else fragment:
            assert part in line, (part, line)


class Payload:
    """Unpickling this runs a shell command (a checkpoint someone tampered with)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def write_tampered_checkpoint(path: Path, marker: Path) -> None:
    """A checkpoint whose loading with plain ``torch.load`` would create ``marker``."""
    torch.save({"segmentor": Payload(marker), "modules": {"generator": Payload(marker)}}, path)


def truncate(path: Path) -> None:
    """Cut a file in half, as a copy interrupted mid-way leaves it."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])


def make_read_only(folder: Path) -> None:
    """chmod a folder read-only, or skip when that does not stop this user (root) from writing."""
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        folder.chmod(0o755)
        pytest.skip("running as root: a read-only folder is still writable")


@dataclass
class TinyRun:
    """A trained run and the dataset it was trained on (the run must be copied before it is changed)."""

    run: Path
    data_root: Path


@pytest.fixture(scope="session")
def prostate_run(tmp_path_factory) -> TinyRun:
    """Two folds of the tiny UNet on 4 prostate phantoms (T2 + ADC channel files, 48 x 40 x 5), 2D slices."""
    base = tmp_path_factory.mktemp("reliability_prostate")
    root = write_prostate_phantoms(base / "phantoms", cases=4, seed=3, size=(48, 40, 5))
    run = train_tiny(
        base, {**phantom_data_config("prostate", root), "size": [48, 48]}, scheme="ce", train={"epochs": 1}
    )
    return TinyRun(run, root)


@pytest.fixture(scope="session")
def skin_run(tmp_path_factory) -> TinyRun:
    """Two folds of the tiny UNet on 4 RGB skin-lesion PNG phantoms (40 x 56)."""
    base = tmp_path_factory.mktemp("reliability_skin")
    root = write_skin_phantoms(base / "skin", cases=4, seed=0, size=(40, 56))
    run = train_tiny(base, {**phantom_data_config("skin", root), "size": [32, 48]}, scheme="ce", train={"epochs": 1})
    return TinyRun(run, root)


def copy_run(tiny: TinyRun, destination: Path) -> Path:
    shutil.copytree(tiny.run, destination)
    return destination
