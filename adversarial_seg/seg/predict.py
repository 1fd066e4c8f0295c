"""``seg-predict``'s work: a batch of image files -> label maps that overlay them.

Inputs are files or folders (their top level) of NIfTI / MHA / MHD / NRRD volumes or PNG / JPG /
BMP images. A file named ``<case>_<4 digits>`` is one channel of ``<case>`` (the MSD / nnU-Net
way); any other file is a whole case, its channels in the file (a 4D NIfTI, an RGB image).

Each case is loaded and preprocessed with the run's transform definitions (``data_plan.json``),
predicted by the chosen fold models (probabilities averaged, mirror TTA optional), mapped back
onto its native grid before the argmax, post-processed as the run decided, and written
atomically as ``DIR/<case><input ending>`` (PNG for 2D images). A case that fails is named with
its reason and the batch goes on; a case whose outputs exist is skipped unless ``overwrite``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from adversarial_seg.atomic_files import remove_stale_temporaries
from adversarial_seg.data.dataset import native_label_values, prepare_case
from adversarial_seg.data.io import (
    format_of,
    label_suffix,
    read_label,
    split_suffix,
    write_label,
)
from adversarial_seg.data.layouts import CHANNEL_FILE, CaseRecord
from adversarial_seg.errors import InputError
from adversarial_seg.runtime import Precision
from adversarial_seg.seg.inference import predict_native, write_probabilities
from adversarial_seg.seg.postprocess import apply_postprocessing
from adversarial_seg.seg.run import TrainedRun, case_file
from adversarial_seg.seg.scoring import score_prediction

SUPPORTED = ".nii.gz, .nii, .mha, .mhd, .nrrd, .png, .jpg, .bmp"


@dataclass
class CaseFiles:
    case_id: str
    paths: list[Path]  # channel files in channel order
    problem: str | None = None  # set when the case cannot be predicted (named in the output)


@dataclass
class BatchResult:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (case, one-line reason)
    seconds: list[float] = field(default_factory=list)  # per predicted case
    metric_rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def collect_inputs(paths: list[Path]) -> tuple[list[CaseFiles], int]:
    """Cases from files and folders, in name order; also the number of folder entries ignored
    (other endings, hidden files). Raises InputError for a missing path or a case id given twice."""
    files: list[Path] = []
    ignored = 0
    for path in paths:
        if path.is_dir():
            for entry in sorted(path.iterdir()):
                if entry.is_file() and not entry.name.startswith(".") and split_suffix(entry)[1]:
                    files.append(entry)
                else:
                    ignored += 1
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"input {path} does not exist; pass image files or folders of them")
    if not files:
        raise InputError(f"no image files in {', '.join(map(str, paths))}; expected files ending in {SUPPORTED}")
    entries: dict[str, list[tuple[int | None, Path]]] = defaultdict(list)
    cases: dict[str, CaseFiles] = {}
    for path in files:
        stem, suffix = split_suffix(path)
        if not suffix:
            cases[path.name] = CaseFiles(path.name, [path], f"has an unsupported file ending; use one of {SUPPORTED}")
            continue
        match = CHANNEL_FILE.match(stem)
        case_id, channel = (match["case"], int(match["channel"])) if match else (stem, None)
        entries[case_id].append((channel, path))
    for case_id, given in entries.items():
        channels = [c for c, _ in given]
        if len(set(channels)) != len(channels) or (None in channels and len(given) > 1):
            raise InputError(
                f"case '{case_id}' is given twice ({', '.join(str(p) for _, p in given)}); keep one of them"
            )
        if channels == [None]:
            cases[case_id] = CaseFiles(case_id, [given[0][1]])
            continue
        by_channel = dict(given)
        missing = [i for i in range(max(by_channel) + 1) if i not in by_channel]
        problem = f"is missing channel file(s) {', '.join(f'{case_id}_{i:04d}' for i in missing)}" if missing else None
        cases[case_id] = CaseFiles(case_id, [by_channel[i] for i in sorted(by_channel)], problem)
    return [cases[c] for c in sorted(cases)], ignored


def describe(case: CaseFiles) -> str:
    """The input as a user named it: its file, or the case with its channel files."""
    if len(case.paths) == 1:
        return str(case.paths[0])
    return f"case '{case.case_id}' ({', '.join(p.name for p in case.paths)} in {case.paths[0].parent})"


def output_suffix(path: Path) -> str:
    """Ending of the label map for an input file (``io.label_suffix``), without reading it."""
    return label_suffix({"format": format_of(path), "suffix": split_suffix(path)[1]})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0]}" if text else exc.__class__.__name__


class BatchPredictor:
    """Predicts cases with a run's fold models; one instance per ``seg-predict`` call."""

    def __init__(self, run: TrainedRun, models, device: torch.device, output: Path, tta: bool = True,
                 probabilities: bool = False, overwrite: bool = False, labels: Path | None = None,
                 folds_label: str = "ensemble"):  # fmt: skip
        self.run, self.plan, self.models = run, run.plan, models
        self.device, self.output, self.tta = device, output, tta
        self.probabilities, self.overwrite, self.labels = probabilities, overwrite, labels
        self.folds_label = folds_label
        self.precision = Precision.for_device(device, run.config.train.amp)

    def outputs(self, case: CaseFiles) -> list[Path]:
        label = self.output / f"{case.case_id}{output_suffix(case.paths[0])}"
        return [label] + ([self.output / f"{case.case_id}.npz"] if self.probabilities else [])

    def check(self, case: CaseFiles) -> str | None:
        """Why ``case`` cannot be predicted without reading it (missing / empty file), else None."""
        if case.problem:
            return case.problem
        for path in case.paths:
            if not path.is_file():
                return f"{path.name} does not exist"
            if path.stat().st_size == 0:
                return f"{path.name} is empty (0 bytes); re-export it"
        return None

    def predict_case(self, case: CaseFiles) -> tuple[np.ndarray, dict]:
        """Label values on the native grid (post-processed) and the native geometry; writes outputs."""
        record = CaseRecord(case.case_id, case.paths, None, case.case_id)
        try:
            inputs = prepare_case(record, self.plan)
        except Exception as exc:  # any reader / transform error names the file, not a traceback
            raise ValueError(f"cannot be read ({_first_line(exc)}); check that it is a valid image file") from None
        props = inputs.props
        if len(props["spatial_shape"]) != self.plan.file_dims:
            raise ValueError(
                f"is {len(props['spatial_shape'])}D but the model was trained on {self.plan.file_dims}D images; "
                "pass images like the training ones"
            )
        channels = int(inputs.image.shape[0])
        if channels != self.plan.in_channels:
            raise ValueError(
                f"has {channels} channel(s) but the model takes {self.plan.in_channels}; give "
                f"{self.plan.in_channels} channel files (case_0000, case_0001, ...) or one file with them all"
            )
        if inputs.image.numel() == 0:
            raise ValueError("has no voxels")
        if not torch.isfinite(inputs.image.as_tensor()).all():
            raise ValueError("holds NaN or Inf values; replace them (e.g. with 0)")
        native = predict_native(self.models, inputs, self.run.config, self.device, self.precision, tta=self.tta)
        labels = native_label_values(native, inputs)
        labels = apply_postprocessing(labels, self.plan.labels, self.run.postprocessing)
        label_path, *rest = self.outputs(case)
        if rest:  # probabilities first: the label map's presence marks a finished case
            write_probabilities(rest[0], native)
        write_label(label_path, labels, props)
        return labels, props

    def score(self, case: CaseFiles, labels: np.ndarray, props: dict) -> list[dict]:
        """Rows against ``--labels`` (same columns as cases.csv); LookupError when there is no reference."""
        path = case_file(self.labels, case.case_id)
        if path is None:
            raise LookupError(f"no reference label for case '{case.case_id}' in {self.labels}")
        return score_prediction(
            labels, props, path, self.plan.labels, self.run.config.metrics.specificity_region,
            case=case.case_id, patient=case.case_id, fold=self.folds_label,
        )  # fmt: skip

    def run_batch(self, cases: list[CaseFiles], report: Callable[[str], None] = print, progress=None) -> BatchResult:
        """Predict every case; failures are collected, never raised."""
        result = BatchResult()
        remove_stale_temporaries(self.output)  # left by a run killed mid-write
        for case in cases:
            try:
                reason = self.check(case)
                if reason:
                    raise ValueError(reason)
                outputs = self.outputs(case)
                if not self.overwrite and all(p.is_file() for p in outputs):
                    result.skipped.append(case.case_id)
                    labels = props = None
                    if self.labels is not None:
                        labels, props = read_label(outputs[0])
                else:
                    started = time.perf_counter()
                    labels, props = self.predict_case(case)
                    result.seconds.append(time.perf_counter() - started)
                    result.done.append(case.case_id)
            except (ValueError, OSError, RuntimeError) as exc:
                message = str(exc) if isinstance(exc, ValueError) else _first_line(exc)
                line = f"{describe(case)}: {message}"
                result.failed.append((case.case_id, line))
                report(f"failed: {line}")
            else:
                if self.labels is not None:
                    try:
                        result.metric_rows += self.score(case, labels, props)
                    except (LookupError, ValueError, OSError) as exc:
                        result.notes.append(f"not scored: {exc}")
                        report(f"not scored: {exc}")
            if progress is not None:
                progress.update(1)
        return result
