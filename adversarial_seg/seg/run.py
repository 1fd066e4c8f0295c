"""A finished run directory, read back: config, data plan, fold models, post-processing.

``seg-train`` writes the run (DESIGN.md, "Run directory"); ``seg-predict`` and ``seg-eval``
open it here. Besides the contract's files a run holds ``data_plan.json`` (what the transform
definitions are built from: label set, 2D/3D switch, slice axis, size / spacing, channels)
and, once every fold has finished, ``report/postprocessing.json`` (the keep-largest-component
decisions taken on the pooled cross-validation predictions) and ``report/calibration.json`` (the
temperatures fitted on them).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from adversarial_seg.atomic_files import atomic_write_bytes
from adversarial_seg.checkpoint import CheckpointError, load_checkpoint
from adversarial_seg.config import Config, ConfigError, config_from_mapping
from adversarial_seg.data.io import split_suffix
from adversarial_seg.data.transforms import DataPlan
from adversarial_seg.errors import InputError
from adversarial_seg.provenance import read_resolved_config
from adversarial_seg.runtime import to_device

FOLD_DONE = "fold_done.json"
DATA_PLAN = "data_plan.json"
POSTPROCESSING = Path("report") / "postprocessing.json"


class RunStateError(InputError):
    """The run directory's state does not allow the requested work (exit code 2)."""


def case_file(folder: Path, case: str) -> Path | None:
    """The image or label file named ``<case>.<image ending>`` in ``folder`` (a fold's
    ``predictions/``, a folder of reference labels; never the ``.npz`` probabilities), or None."""
    for path in sorted(folder.glob(f"{case}.*")):
        stem, suffix = split_suffix(path)
        if stem == case and suffix:
            return path
    return None


# What to do about a run file that cannot be read, per file (each sentence ends with the fix).
_FIXES = {
    DATA_PLAN: "restore it, or run the run's seg-train command again with --resume to write it again",
    FOLD_DONE: "delete it and run seg-train --resume on the run to finish the fold again",
    POSTPROCESSING.name: "delete it and run seg-train on the run again (finished folds are kept) to decide again",
}
_FOLD_DIR = re.compile(r"^fold_(\d+)$")
_PLAN_KEYS = ("file_dims", "model_dims", "slice_axis", "size", "spacing", "patch_size")


def read_run_json(path: Path) -> dict:
    """A run's JSON file as a dict; RunStateError naming the file and the fix when it is not one."""
    fix = _FIXES.get(path.name, "restore it from a copy of the run")
    try:
        body = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:  # truncated, binary, unreadable
        raise RunStateError(f"{path} cannot be read as JSON ({exc.__class__.__name__}); {fix}") from None
    if not isinstance(body, dict):
        raise RunStateError(f"{path} does not hold a JSON object; {fix}")
    return body


def fold_done(fold_dir: Path) -> dict | None:
    """A finished fold's ``fold_done.json`` (seconds, case counts, ``git_commit`` of the code that
    trained it), or None while the fold has not finished; RunStateError when it cannot be read."""
    path = Path(fold_dir) / FOLD_DONE
    return read_run_json(path) if path.is_file() else None


def trained_by(done: list[dict]) -> str:
    """The commit(s) whose code trained these folds: one commit, several joined by " + " when a
    resume ran newer code, "unknown" for folds finished before commits were recorded per fold (or
    trained outside a git checkout)."""
    commits = list(dict.fromkeys(str(d.get("git_commit") or "unknown") for d in done))
    return " + ".join(commits) if commits else "unknown"


def short_commits(trained: str) -> str:
    """``trained_by``'s text with each commit shortened to 12 characters, for tables; a commit whose
    checkout had uncommitted changes keeps its ``-dirty`` mark.

    >>> short_commits("d84f495ae77ea4b4cacf + 2eb2f5d7513fdef89ea4-dirty")
    'd84f495ae77e + 2eb2f5d7513f-dirty'
    """
    return " + ".join(c[:12] + ("-dirty" if c.endswith("-dirty") else "") for c in trained.split(" + "))


def write_data_plan(plan: DataPlan, run_dir: Path) -> None:
    atomic_write_bytes(run_dir / DATA_PLAN, json.dumps(plan.to_json(), indent=1).encode())


@dataclass
class RunSpec:
    """One scheme and one seed of a ``seg-train`` call, to be trained into ``run_dir``."""

    config: Config
    run_dir: Path
    name: str


@dataclass
class TrainedRun:
    """One scheme and one seed, as ``seg-train`` left it."""

    run_dir: Path
    config: Config
    plan: DataPlan
    finished_folds: list[int]
    postprocessing: dict | None
    provenance: dict = field(default_factory=dict)  # config_hash, versions, seed, commit that started it
    calibration: dict | None = None  # report/calibration.json: frozen temperatures (seg.calibration_run)

    def checkpoint(self, fold: int) -> Path:
        """The fold's selected model: the inner-validation best with ``select: inner_val``, else the last."""
        name = "checkpoint_best.pt" if self.config.train.select == "inner_val" else "checkpoint_last.pt"
        return self.run_dir / f"fold_{fold}" / name

    def load_models(self, folds: list[int], device: torch.device) -> list[nn.Module]:
        from adversarial_seg.seg.networks import build_segmentor

        segmentor = self.config.model.segmentor
        models = []
        for fold in folds:
            model = build_segmentor(segmentor.name, segmentor.kwargs(), self.plan.model_dims,
                                    self.plan.model_in_channels, self.plan.labels.num_classes)  # fmt: skip
            path = self.checkpoint(fold)
            state = load_checkpoint(path)
            try:
                model.load_state_dict(state["segmentor"] if "segmentor" in state else state["modules"]["segmentor"])
            except (KeyError, TypeError, RuntimeError) as exc:  # other keys or shapes: not this run's model
                raise CheckpointError(
                    f"checkpoint {path} does not hold this run's segmentor ({exc.__class__.__name__}); "
                    f"restore it from a copy, or train fold {fold} again"
                ) from None
            models.append(to_device(model, device).eval())
        return models


def open_run(run_dir: Path) -> TrainedRun:
    """Read a single-scheme run directory, or raise RunStateError saying what to pass instead."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        inner = sorted(p.parent.name for p in run_dir.glob("*/config.yaml"))
        if inner:
            raise RunStateError(
                f"{run_dir} holds runs in subfolders ({', '.join(inner)}); pass one of them, e.g. {run_dir / inner[0]}"
            )
        raise RunStateError(f"{run_dir} is not a run directory (no config.yaml); pass a folder written by seg-train")
    if not (run_dir / DATA_PLAN).is_file():
        raise RunStateError(
            f"{run_dir} has no {DATA_PLAN} (written by seg-train since it stores the preprocessing); "
            "train the run again with this version"
        )
    mapping, provenance = read_resolved_config(run_dir / "config.yaml")
    try:
        config = config_from_mapping(mapping, source=str(run_dir / "config.yaml"))
    except ConfigError as exc:
        raise RunStateError(str(exc)) from None
    plan = read_data_plan(run_dir / DATA_PLAN)
    finished = finished_folds(run_dir)
    post_path = run_dir / POSTPROCESSING
    postprocessing = read_postprocessing(post_path, plan.labels.names) if post_path.is_file() else None
    from adversarial_seg.seg.calibration_run import CALIBRATION, read_calibration

    calibration_path = run_dir / CALIBRATION
    calibration = read_calibration(calibration_path, plan.labels.names) if calibration_path.is_file() else None
    return TrainedRun(run_dir, config, plan, finished, postprocessing, provenance, calibration)


def read_data_plan(path: Path) -> DataPlan:
    """``data_plan.json`` -> DataPlan; RunStateError naming the file when a key is missing or wrong."""
    body = read_run_json(path)
    missing = [key for key in _PLAN_KEYS if key not in body] + ([] if {"labels", "scheme"} & set(body) else ["labels"])
    if missing:
        raise RunStateError(f"{path} does not hold a data plan (no {', '.join(missing)}); {_FIXES[DATA_PLAN]}")
    try:
        plan = DataPlan.from_json(body)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a value of another type
        raise RunStateError(
            f"{path} does not hold a data plan ({exc.__class__.__name__}); {_FIXES[DATA_PLAN]}"
        ) from None
    if plan.file_dims not in (2, 3) or plan.model_dims not in (2, 3) or not isinstance(plan.in_channels, int):
        raise RunStateError(f"{path} holds impossible dimensions or channels; {_FIXES[DATA_PLAN]}")
    return plan


def finished_folds(run_dir: Path) -> list[int]:
    """Folds whose ``fold_done.json`` exists (each read, so a corrupt one is named now, not later)."""
    folds = []
    for path in run_dir.glob(f"fold_*/{FOLD_DONE}"):
        match = _FOLD_DIR.match(path.parent.name)
        if match and fold_done(path.parent) is not None:
            folds.append(int(match[1]))
    return sorted(folds)


def read_postprocessing(path: Path, class_names: tuple[str, ...]) -> dict:
    """``report/postprocessing.json``; RunStateError naming it unless it maps the run's classes to on/off."""
    body = read_run_json(path)
    decisions = body.get("keep_largest_component") or {}
    if not isinstance(decisions, dict) or not all(
        name in class_names and isinstance(on, bool) for name, on in decisions.items()
    ):
        raise RunStateError(
            f"{path}: 'keep_largest_component' must map the run's classes ({', '.join(class_names[1:])}) to "
            f"true/false; {_FIXES[POSTPROCESSING.name]}"
        )
    return body


def parse_folds(text: str, run: TrainedRun) -> list[int]:
    """``all`` (every finished fold) or ``0,2`` -> fold numbers; RunStateError names a missing one."""
    if not run.finished_folds:
        raise RunStateError(f"{run.run_dir} has no finished fold; wait for seg-train (or --resume it)")
    if text.strip() == "all":
        return run.finished_folds
    try:
        folds = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise RunStateError(f"--folds {text!r}: give 'all' or fold numbers like 0,2") from None
    missing = [f for f in folds if f not in run.finished_folds]
    if missing or not folds:
        raise RunStateError(
            f"--folds {text}: fold(s) {missing} not finished in {run.run_dir}; finished: {run.finished_folds}"
        )
    return folds
