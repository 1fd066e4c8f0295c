"""Check the whole dataset before any training; list every problem at once (exit code 2 upstream).

``validate_dataset`` opens every file once and reports, one sentence each naming the file and the
fix: missing root, image without mask and mask without image, duplicate case ids, unreadable or
zero-byte files, NaN / Inf voxels, wrong channel count, image/mask shape or geometry mismatch,
mask values outside ``data.labels``, dataset.json paths that leave the data root, cases.csv gaps.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .errors import DataError
from .io import read_image, read_label
from .labels import LabelSet
from .layouts import CaseRecord, scan_layout

# Affines are compared in mm; headers store float32, so exact equality is too strict.
GEOMETRY_TOLERANCE_MM = 1e-3


def validate_dataset(data_cfg, warnings: list[str] | None = None, domain_column: str | None = None) -> list[CaseRecord]:
    """The dataset's cases, or DataError listing ALL problems found (one sentence each).

    ``warnings`` (when given) receives one sentence per legal but useless property of the data,
    e.g. a class that no mask holds: training would run and learn nothing about it.
    """
    scan = scan_layout(data_cfg, domain_column)
    if not scan.root.is_dir():
        raise DataError(scan.problems)
    problems = list(scan.problems)
    if not scan.records and not problems:
        raise DataError(
            f"no cases found in {scan.root} (layout '{data_cfg.layout}'); put image and mask files with matching "
            "names in it, or set data.layout to the dataset's layout (folder, msd, nnunet)"
        )
    try:
        label_set = LabelSet.from_config(data_cfg)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    channel_names = data_cfg.channels or scan.channel_names
    if data_cfg.reference_channel and data_cfg.reference_channel not in (channel_names or []):
        problems.append(
            f"data.reference_channel '{data_cfg.reference_channel}' is not one of the channels "
            f"{channel_names}; name one of them"
        )
    expected = len(channel_names) if channel_names else None
    reference = reference_channel_index(data_cfg, channel_names)
    # Decoding releases the GIL (zlib, Pillow), so threads overlap the file reads.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda r: check_case(r, label_set, expected, reference), scan.records))
    counts, present = {}, set()
    for record, (case_problems, channel_count, values) in zip(scan.records, results):
        problems.extend(case_problems)
        present |= values
        if channel_count is not None:
            counts[record.case_id] = channel_count
    if expected is None and counts:  # no declared count: the cases must at least agree
        usual, _ = Counter(counts.values()).most_common(1)[0]
        for case, count in counts.items():
            if count != usual:
                problems.append(
                    f"case '{case}' has {count} channels but most cases have {usual}; "
                    "fix the image or declare data.channels"
                )
    if problems:
        raise DataError(problems)
    if warnings is not None:
        warnings += absent_class_warnings(label_set, present, scan.root)
    return scan.records


def absent_class_warnings(label_set: LabelSet, present: set[int], root: Path) -> list[str]:
    """One sentence per region that no mask holds (all of them when every mask is background)."""
    background = label_set.values[0]
    if not present - {background}:
        return [
            f"every mask in {root} is background only; the model can only learn to predict background "
            "(check data.labels and data.mask_threshold)"
        ]
    return [
        f"no mask in {root} holds region '{name}' (label values {list(values)}); it cannot be learned "
        "and its scores will be undefined"
        for name, values in label_set.regions.items()
        if not present & set(values)
    ]


def reference_channel_index(data_cfg, channel_names: list[str] | None) -> int:
    """Index of ``data.reference_channel`` in the channel names (0 when unset or unknown)."""
    names = list(channel_names or [])
    if data_cfg.reference_channel in names:
        return names.index(data_cfg.reference_channel)
    return 0


def check_case(record: CaseRecord, label_set: LabelSet, expected_channels: int | None, reference: int = 0):
    """(problems, channel count or None, label values present in the mask) for one case; never
    raises for a data problem.

    ``reference``: index of the channel file whose grid the mask must share (one file holding
    all channels: 0).
    """
    problems: list[str] = []
    images = []
    for path in record.image_paths:
        loaded = _read(path, problems, read_image)
        if loaded is not None:
            images.append((path, *loaded))
            array, props = loaded
            if np.issubdtype(np.dtype(props["dtype"]), np.floating):
                bad = int(array.size - np.count_nonzero(np.isfinite(array)))
                if bad:
                    problems.append(
                        f"image {path} has {bad} NaN/Inf voxels; replace them (e.g. with 0) or drop the case"
                    )
    channel_count = None
    if len(images) == len(record.image_paths):
        channel_count = sum(array.shape[0] for _, array, _ in images)
        if expected_channels is not None and channel_count != expected_channels:
            problems.append(
                f"case '{record.case_id}' ({record.image_paths[0]}) has {channel_count} channels but "
                f"{expected_channels} are declared; fix data.channels or the image"
            )
        if reference >= len(images):
            reference = 0
        _check_channel_grids(images, reference, problems)
    if record.label_path is None:
        return problems, channel_count, set()
    label = _read(
        record.label_path,
        problems,
        lambda p: read_label(p, label_set.mask_threshold, label_set.foreground_value),
    )
    if label is None:
        return problems, channel_count, set()
    labels, label_props = label
    values = {int(v) for v in np.unique(labels)}
    undeclared = sorted(v for v in values if v not in label_set.values)
    if undeclared:
        declared = dict(zip(label_set.names, label_set.values))
        problems.append(
            f"mask {record.label_path} holds values {undeclared} not declared in data.labels {declared}; "
            "declare them in data.labels (or set data.mask_threshold for lossy masks)"
        )
    if len(images) == len(record.image_paths):
        reference_path, _, reference_props = images[reference]
        mismatch = geometry_mismatch(reference_props, label_props)
        if mismatch:
            problems.append(
                f"mask {record.label_path} does not line up with image {reference_path} ({mismatch}); "
                "resample the mask onto the image grid"
            )
    return problems, channel_count, values


def geometry_mismatch(expected: dict, actual: dict) -> str | None:
    """A short description of how two grids differ (shape, then affine), or None if they agree."""
    if tuple(expected["spatial_shape"]) != tuple(actual["spatial_shape"]):
        return f"shape {tuple(actual['spatial_shape'])} vs {tuple(expected['spatial_shape'])}"
    if not np.allclose(expected["affine"], actual["affine"], atol=GEOMETRY_TOLERANCE_MM):
        return "same shape but different affine (origin, spacing or direction)"
    return None


def _check_channel_grids(images: list, reference: int, problems: list[str]) -> None:
    """Volumes on other grids are resampled later; 2D images have no world grid to resample in."""
    reference_path, _, reference_props = images[reference]
    for path, _, props in images:
        mismatch = geometry_mismatch(reference_props, props)
        if mismatch and len(props["spatial_shape"]) == 2:
            problems.append(
                f"channel file {path} does not line up with {reference_path} ({mismatch}); "
                "2D channels must share one pixel grid"
            )


def _read(path: Path, problems: list[str], reader):
    if not path.is_file():
        problems.append(f"{path} does not exist; add it or remove the case")
        return None
    if path.stat().st_size == 0:
        problems.append(f"{path} is empty (0 bytes); re-export the file or remove the case")
        return None
    try:
        return reader(path)
    except Exception as exc:  # any decoder failure is the same user-facing problem
        reason = str(exc).splitlines()[0][:160] if str(exc) else exc.__class__.__name__
        problems.append(f"{path} cannot be read ({reason}); re-export the file or remove the case")
        return None
