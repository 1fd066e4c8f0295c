"""``seg-predict``'s work: a batch of image files -> label maps that overlay them.

Inputs are files or folders (their top level) of NIfTI / MHA / MHD / NRRD volumes or PNG / JPG /
BMP images. A file named ``<case>_<4 digits>`` is one channel of ``<case>`` (the MSD / nnU-Net
way); any other file is a whole case, its channels in the file (a 4D NIfTI, an RGB image).

Each case is loaded and preprocessed with the run's transform definitions (``data_plan.json``),
predicted by the chosen fold models (probabilities averaged, mirror TTA optional), mapped back
onto its native grid before the argmax, post-processed as the run decided, and written
atomically as ``DIR/<case><input ending>`` (PNG for 2D images). A case that fails is named with
its reason and the batch goes on; a case whose outputs exist is skipped unless ``overwrite``.

``--probabilities`` writes ``DIR/<case>.npz``, scaled by the run's ``report/calibration.json``
temperatures when it has them (the label map stays the uncalibrated argmax). ``--uncertainty``
writes float32 voxel maps on the input's grid, ``DIR/uncertainty/<case>_entropy<ending>`` (entropy
of the mean over fold models and mirror passes, nats) and ``<case>_mutual_information<ending>``,
and one row per case into ``DIR/uncertainty.csv`` (``UNCERTAINTY_COLUMNS``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from adversarial_seg.atomic_files import check_output_folder, remove_stale_temporaries
from adversarial_seg.data.dataset import PreparedCase, native_label_values, prepare_case
from adversarial_seg.data.io import (
    ITK_FORMATS,
    PIL_FORMATS,
    format_of,
    label_suffix,
    read_image,
    read_label,
    split_suffix,
    write_image,
    write_label,
)
from adversarial_seg.data.layouts import CHANNEL_FILE, CaseRecord
from adversarial_seg.errors import InputError
from adversarial_seg.runtime import Precision
from adversarial_seg.seg.calibration import scale_probabilities
from adversarial_seg.seg.calibration_run import temperature_vector
from adversarial_seg.seg.inference import predict_native, predict_native_with_information, write_probabilities
from adversarial_seg.seg.postprocess import apply_postprocessing
from adversarial_seg.seg.run import TrainedRun, case_file
from adversarial_seg.seg.scoring import ReferenceMismatch, score_prediction
from adversarial_seg.seg.uncertainty import entropy, foreground_mean

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
    unscored: list[tuple[str, str]] = field(default_factory=list)  # (case, why --labels could not score it)
    uncertainty_rows: list[dict] = field(default_factory=list)  # --uncertainty: one per predicted or skipped case


class OutputNotWritten(OSError):
    """A label map could not be written into the output folder (disk full, read-only, permissions).

    Unlike a bad input file this stops the batch: every later case would fail the same way.
    """


def check_output(output: Path, inputs: list[Path], labels: Path | None = None) -> None:
    """Refuse an ``--output`` that cannot hold the label maps, before anything is read or written.

    The outputs are ``<case>.<ending>``, the inputs' own names, so an output folder that is an
    --input folder, lies inside one, or holds an --input file could replace the images (and the
    --labels folder its references). Paths are compared resolved (symlinks followed). Raises
    InputError naming the folder and the fix.
    """
    check_output_folder(output)
    target = output.resolve()
    if labels is not None and target == labels.resolve():
        raise InputError(
            f"--output {output} is the --labels folder; the label maps could replace the references, so choose "
            "another folder"
        )
    for path in inputs:
        source = path.resolve()
        if path.is_dir() and (target == source or source in target.parents):
            raise InputError(
                f"--output {output} is or lies inside the --input folder {path}; the label maps could replace "
                "the images there, so choose a folder outside the inputs"
            )
        if path.is_file() and target == source.parent:
            raise InputError(
                f"--output {output} is the folder holding the --input file {path}; its label map could replace "
                "it, so choose another folder"
            )


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


def header_dims(path: Path) -> int:
    """Spatial dimensions (2 or 3) of an image file from its header, without reading the voxels.

    Checked before the file is loaded: a volume given to a model of 2D images (or the reverse)
    would otherwise fail inside the preprocessing and be reported as unreadable.
    """
    fmt = format_of(path)
    if fmt == "nifti":
        import nibabel as nib

        shape = nib.load(str(path)).shape  # (X, Y[, Z[, C]]); a 4D/5D NIfTI holds channels (io.read_image)
        return 3 if len(shape) >= 4 else len(shape)
    if fmt in ITK_FORMATS:
        import SimpleITK as sitk

        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        return reader.GetDimension()
    return 2  # PNG / JPG / BMP


def training_cases(run: TrainedRun, folds: list[int]) -> set[str]:
    """The case ids the chosen fold models were trained on (their ``train`` lists in the run's
    splits.json; empty when it cannot be read): scores on them are optimistic."""
    from adversarial_seg.seg.evaluate import read_run_splits

    try:
        splits = read_run_splits(run.run_dir / "splits.json")
    except InputError:
        return set()
    return {case for split in splits if split["fold"] in folds for case in split["train"]}


UNCERTAINTY_MAPS = ("entropy", "mutual_information")
UNCERTAINTY_COLUMNS = ["case", "foreground_voxels", "mean_entropy_foreground", "mean_mutual_information_foreground",
                       "mean_entropy"]  # fmt: skip


def uncertainty_paths(output: Path, case: CaseFiles) -> list[Path]:
    """``DIR/uncertainty/<case>_entropy<ending>`` and ``..._mutual_information<ending>``: the input's
    ending for volumes, ``.nii.gz`` for 2D images (PNG cannot hold float32 maps)."""
    fmt, suffix = format_of(case.paths[0]), split_suffix(case.paths[0])[1]
    ending = ".nii.gz" if fmt in PIL_FORMATS else suffix
    return [output / "uncertainty" / f"{case.case_id}_{name}{ending}" for name in UNCERTAINTY_MAPS]


def uncertainty_row(case_id: str, labels: np.ndarray, entropy_map: np.ndarray, information: np.ndarray,
                    background: int = 0) -> dict:  # fmt: skip
    """One row of ``uncertainty.csv``: means (nats) inside the label map's foreground (label values
    other than ``background``; NaN when it is empty) and the mean entropy over the whole image."""
    foreground = np.asarray(labels) != background
    return {"case": case_id, "foreground_voxels": int(foreground.sum()),
            "mean_entropy_foreground": foreground_mean(entropy_map, foreground),
            "mean_mutual_information_foreground": foreground_mean(information, foreground),
            "mean_entropy": float(np.mean(entropy_map))}  # fmt: skip


def write_uncertainty_csv(rows: list[dict], path: Path) -> None:
    """``uncertainty.csv`` (``UNCERTAINTY_COLUMNS``), merged with the rows an earlier call wrote for
    other cases, in case order, atomically."""
    import csv
    import io

    from adversarial_seg.atomic_files import atomic_write_text

    merged: dict[str, dict] = {}
    if path.is_file():
        try:
            merged = {r["case"]: r for r in csv.DictReader(path.read_text().splitlines()) if r.get("case")}
        except (OSError, UnicodeDecodeError, csv.Error, KeyError):  # a damaged table is rewritten whole
            merged = {}
    merged.update({r["case"]: r for r in rows})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, UNCERTAINTY_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for case in sorted(merged):
        writer.writerow(merged[case])
    atomic_write_text(path, buffer.getvalue())


class BatchPredictor:
    """Predicts cases with a run's fold models; one instance per ``seg-predict`` call."""

    def __init__(self, run: TrainedRun, models, device: torch.device, output: Path, tta: bool = True,
                 probabilities: bool = False, overwrite: bool = False, labels: Path | None = None,
                 folds_label: str = "ensemble", uncertainty: bool = False):  # fmt: skip
        self.run, self.plan, self.models = run, run.plan, models
        self.device, self.output, self.tta = device, output, tta
        self.probabilities, self.overwrite, self.labels = probabilities, overwrite, labels
        self.folds_label = folds_label
        self.uncertainty = uncertainty
        self.last_uncertainty_row: dict = {}  # predict_case's, for run_batch
        # calibration.json's temperatures scale the written probabilities; label maps stay the raw argmax
        self.temperatures = temperature_vector(run.calibration, self.plan.labels.names) if run.calibration else None
        self.precision = Precision.for_device(device, run.config.train.amp, run.config.train.cpu_bf16)

    def outputs(self, case: CaseFiles) -> list[Path]:
        label = self.output / f"{case.case_id}{output_suffix(case.paths[0])}"
        return ([label] + ([self.output / f"{case.case_id}.npz"] if self.probabilities else [])
                + (uncertainty_paths(self.output, case) if self.uncertainty else []))  # fmt: skip

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

    def check_dimensions(self, case: CaseFiles) -> None:
        """ValueError when a file's header says 2D for a model of volumes, or 3D for a model of 2D images."""
        for path in case.paths:
            try:
                dims = header_dims(path)
            except Exception as exc:  # any reader's error (nibabel, SimpleITK) becomes one line naming the file
                raise ValueError(self._unreadable(case, path, exc)) from None
            if dims != self.plan.file_dims:
                where = "" if len(case.paths) == 1 else f"{path.name} "
                raise ValueError(
                    f"{where}is {dims}D but the model was trained on {self.plan.file_dims}D images; "
                    "pass images like the training ones"
                )

    @staticmethod
    def _unreadable(case: CaseFiles, path: Path | None, exc: BaseException) -> str:
        where = "" if path is None or len(case.paths) == 1 else f"{path.name} "
        return f"{where}cannot be read ({_first_line(exc)}); check that it is a valid image file"

    def load(self, case: CaseFiles) -> PreparedCase:
        """The case preprocessed like the training images; ValueError naming the file that cannot be read."""
        self.check_dimensions(case)
        try:
            return prepare_case(CaseRecord(case.case_id, case.paths, None, case.case_id), self.plan)
        except Exception as exc:  # any reader / transform error names the file, not a traceback
            culprit = None
            for path in case.paths if len(case.paths) > 1 else ():  # which channel file: read each alone
                try:
                    read_image(path)
                except Exception:  # noqa: BLE001 - this is the unreadable one
                    culprit = path
                    break
            raise ValueError(self._unreadable(case, culprit, exc)) from None

    def write(self, path: Path, writer: Callable[[], object]) -> None:
        """Run ``writer`` (an atomic write of ``path``); OutputNotWritten naming ``path`` when it fails."""
        try:
            writer()
        except OSError as exc:  # the temporary's name would mean nothing to the user: name the output
            raise OutputNotWritten(exc.errno, exc.strerror or exc.__class__.__name__, str(path)) from None

    def predict_case(self, case: CaseFiles) -> tuple[np.ndarray, dict]:
        """Label values on the native grid (post-processed) and the native geometry; writes outputs."""
        inputs = self.load(case)
        props = inputs.props
        channels = int(inputs.image.shape[0])
        if channels != self.plan.in_channels:
            raise ValueError(
                f"has {channels} channel(s) but the model takes {self.plan.in_channels}; give "
                f"{self.plan.in_channels} channel files (case_0000, case_0001, ...) or one file with them all"
            )
        if inputs.image.numel() == 0:
            raise ValueError("has no voxels; re-export it")
        finite = torch.isfinite(inputs.image.as_tensor()).flatten(1).all(dim=1)  # per channel
        if not finite.all():
            bad = int((~finite).nonzero()[0])
            # one file per channel: name the file that holds them
            where = f"{case.paths[bad].name} " if 1 < len(case.paths) == channels else ""
            raise ValueError(f"{where}holds NaN or Inf values; replace them (e.g. with 0)")
        information = None
        if self.uncertainty:
            native, information = predict_native_with_information(
                self.models, inputs, self.run.config, self.device, self.precision, tta=self.tta
            )
        else:
            native = predict_native(self.models, inputs, self.run.config, self.device, self.precision, tta=self.tta)
        labels = native_label_values(native, inputs)
        labels = apply_postprocessing(labels, self.plan.labels, self.run.postprocessing)
        label_path = self.outputs(case)[0]
        # every other output first: the label map's presence marks a finished case
        if self.probabilities:
            path = self.output / f"{case.case_id}.npz"
            written = native if self.temperatures is None else scale_probabilities(native, self.temperatures, axis=0)
            self.write(path, lambda: write_probabilities(path, written))
        if information is not None:
            maps = {"entropy": entropy(native.numpy(), axis=0), "mutual_information": information.numpy()}
            for voxels, path in zip(maps.values(), uncertainty_paths(self.output, case)):
                self.write(path, lambda p=path, v=voxels: write_image(p, v.astype(np.float32)[None], props))
            self.last_uncertainty_row = uncertainty_row(
                case.case_id, labels, *maps.values(), self.plan.labels.values[0]
            )
        self.write(label_path, lambda: write_label(label_path, labels, props))
        return labels, props

    def existing_uncertainty(self, case: CaseFiles, labels: np.ndarray | None) -> dict:
        """A skipped case's uncertainty row, from its written maps and label map."""
        try:
            if labels is None:
                labels = read_label(self.outputs(case)[0])[0]
            entropy_map, information = (read_image(p)[0][0] for p in uncertainty_paths(self.output, case))
        except Exception as exc:  # any reader's error: a truncated or foreign file under the output's name
            raise ValueError(
                f"its existing uncertainty maps cannot be read ({_first_line(exc)}); delete them or pass --overwrite"
            ) from None
        return uncertainty_row(case.case_id, labels, entropy_map, information, self.plan.labels.values[0])

    def existing_output(self, path: Path) -> tuple[np.ndarray, dict]:
        """A skipped case's label map, read back to be scored; ValueError naming it when it cannot be."""
        try:
            return read_label(path)
        except Exception as exc:  # any reader's error: a truncated or foreign file under the output's name
            raise ValueError(
                f"its existing output {path} cannot be read ({_first_line(exc)}); delete it or pass --overwrite"
            ) from None

    def score(self, case: CaseFiles, labels: np.ndarray, props: dict) -> list[dict]:
        """Rows against ``--labels`` (same columns as cases.csv); ValueError saying why a case is not scored."""
        path = case_file(self.labels, case.case_id)
        if path is None:
            raise ValueError(
                f"no reference {case.case_id}.<ending> in {self.labels}; name the reference like the input case"
            )
        try:
            return score_prediction(
                labels, props, path, self.plan.labels, self.run.config.metrics.specificity_region,
                case=case.case_id, patient=case.case_id, fold=self.folds_label,
            )  # fmt: skip
        except ReferenceMismatch:
            raise  # its message names the reference and the mismatch
        except Exception as exc:  # any reader's error: the reference file is damaged or not a label map
            raise ValueError(f"reference {path} cannot be read ({_first_line(exc)})") from None

    def run_batch(self, cases: list[CaseFiles], report: Callable[[str], None] = print, progress=None) -> BatchResult:
        """Predict every case; a case's failure is collected (named, the batch goes on). Only
        OutputNotWritten (the output folder itself cannot be written) and Ctrl-C stop the batch."""
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
                        labels, props = self.existing_output(outputs[0])
                    if self.uncertainty:
                        result.uncertainty_rows.append(self.existing_uncertainty(case, labels))
                else:
                    started = time.perf_counter()
                    labels, props = self.predict_case(case)
                    result.seconds.append(time.perf_counter() - started)
                    if self.uncertainty:
                        result.uncertainty_rows.append(self.last_uncertainty_row)
                    result.done.append(case.case_id)
            except OutputNotWritten:
                raise  # the output folder is the problem, not this case: stop the batch
            except (ValueError, OSError, RuntimeError) as exc:
                message = str(exc) if isinstance(exc, ValueError) else _first_line(exc)
                line = f"{describe(case)}: {message}"
                result.failed.append((case.case_id, line))
                report(f"failed: {line}")
            else:
                if self.labels is not None:
                    try:
                        result.metric_rows += self.score(case, labels, props)
                    except ValueError as exc:
                        line = f"{describe(case)}: not scored: {exc}"
                        result.unscored.append((case.case_id, line))
                        report(line)
            if progress is not None:
                progress.update(1)
        return result
