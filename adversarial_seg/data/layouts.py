"""Dataset layouts on disk -> one ``CaseRecord`` per case (``data.layout``).

* ``folder``: ``images/`` plus ``masks/`` (or ``labels/``), files paired by stem, any supported
  ending (``IMD002.png`` + ``IMD002.png``; ``case.nii.gz`` + ``case.mha`` also pairs). When
  every image stem ends in ``_NNNN`` (one of them ``_0000``) and no mask shares it, images are
  nnU-Net channel files ``<case>_0000.<ext>``, ``<case>_0001.<ext>`` with mask ``<case>.<ext>``.
* ``msd``: Medical Segmentation Decathlon ``dataset.json`` with ``"training": [{"image",
  "label"}]`` (paths relative to the root); multi-channel images are 4D, channel names in
  ``"modality"``.
* ``nnunet``: nnU-Net raw ``imagesTr/<case>_0000<ending>`` (one file per channel) and
  ``labelsTr/<case><ending>``; ``dataset.json`` (``channel_names`` or ``modality``,
  ``file_ending``) is optional.

Every layout may carry a ``cases.csv`` at its root with a ``case`` column plus free columns;
``data.group`` picks the patient (``{column: NAME}`` or ``{regex: PATTERN}`` on the case id,
first group) and ``data.stratify`` a stratification column.

``scan_layout`` never raises for a dataset problem: it returns the problems (one sentence each,
naming the file and the fix) so that ``validate_dataset`` can list them all at once.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError
from .io import split_suffix

CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


@dataclass
class CaseRecord:
    """One case: its channel files (in channel order), label file, patient, stratum and site
    (``domain.column``)."""

    case_id: str
    image_paths: list[Path]
    label_path: Path | None
    patient: str
    stratum: str | None = None
    domain: str | None = None


@dataclass
class LayoutScan:
    """What a layout holds: the cases, the problems found, channel names declared on disk."""

    root: Path
    records: list[CaseRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    channel_names: list[str] | None = None


def resolve_root(data_cfg) -> Path:
    """``data.root`` as an absolute path (relative paths resolve against the working directory)."""
    if data_cfg.root is None:
        raise DataError("data.root is not set; point it at the dataset folder or use data.synthetic")
    return Path(data_cfg.root).expanduser().resolve()


def discover_cases(data_cfg, domain_column: str | None = None) -> list[CaseRecord]:
    """The cases of ``data.root`` in ``data.layout``, sorted by case id; DataError if the layout is broken.

    Only the layout is checked here (pairing, names, cases.csv); ``validate_dataset`` also opens
    every file.
    """
    scan = scan_layout(data_cfg, domain_column)
    if scan.problems:
        raise DataError(scan.problems)
    return scan.records


def scan_layout(data_cfg, domain_column: str | None = None) -> LayoutScan:
    """Cases plus every layout problem found (none raised); ``domain_column``: the cases.csv column
    of each case's site (``domain.column``)."""
    root = resolve_root(data_cfg)
    scan = LayoutScan(root)
    if not root.is_dir():
        scan.problems.append(f"data root {root} does not exist or is not a folder; set data.root to the dataset folder")
        return scan
    pairs = {"folder": _scan_folder, "msd": _scan_msd, "nnunet": _scan_nnunet}[data_cfg.layout](root, data_cfg, scan)
    _attach_groups(root, data_cfg, pairs, scan, domain_column)
    return scan


# --------------------------------------------------------------------------- layouts
# Each returns {case_id: (image_paths, label_path)} and appends its problems to ``scan``.


def _visible_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _is_utf8(name: str) -> bool:
    """False for a name holding bytes that are not UTF-8 (Python decodes them as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _index_by_stem(folder: Path, scan: LayoutScan, what: str) -> dict[str, Path]:
    """Supported files of ``folder`` by stem; duplicate stems and unknown endings are problems."""
    found: dict[str, list[Path]] = defaultdict(list)
    for path in _visible_files(folder):
        if not _is_utf8(path.name):  # the case id goes into splits.json and cases.csv
            scan.problems.append(
                f"file name {path.name.encode('utf-8', 'surrogateescape')!r} in {folder} is not valid UTF-8; "
                "rename it (the case id is the file name)"
            )
            continue
        stem, suffix = split_suffix(path)
        if not suffix:
            if path.suffix.lower() in (".raw", ".zraw"):  # MHD data files sit beside their header
                continue
            scan.problems.append(
                f"{path} is not a supported {what} file; convert it to PNG, NIfTI, MHA or NRRD, or remove it"
            )
            continue
        found[stem].append(path)
    for stem, paths in found.items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            scan.problems.append(f"duplicate case id '{stem}' in {folder} ({names}); keep one file per case")
    return {stem: paths[0] for stem, paths in found.items()}


def _group_channel_files(files: dict[str, Path], folder: Path, scan: LayoutScan) -> dict[str, dict[int, Path]]:
    """``case_0000``-style stems -> {case: {channel index: path}}."""
    cases: dict[str, dict[int, Path]] = defaultdict(dict)
    for stem, path in files.items():
        match = CHANNEL_FILE.match(stem)
        if match is None:
            scan.problems.append(
                f"{path} does not end in a 4-digit channel index; rename it to {stem}_0000{split_suffix(path)[1]}"
            )
            continue
        cases[match["case"]][int(match["channel"])] = path
    return cases


def _channel_list(case: str, channels: dict[int, Path], expected: int, folder: Path, scan) -> list[Path]:
    """Channel files in order; a missing one is a wrong-channel-count problem."""
    count = max(expected, max(channels) + 1)
    missing = [i for i in range(count) if i not in channels]
    if missing:
        files = ", ".join(f"{case}_{i:04d}" for i in missing)
        scan.problems.append(
            f"case '{case}' in {folder} has {len(channels)} channel files but {count} are expected "
            f"(missing {files}); add them or fix data.channels"
        )
    return [channels[i] for i in sorted(channels)]


def _pair(
    images: dict[str, list[Path]], labels: dict[str, Path], image_dir: Path, label_dir: Path, scan
) -> dict[str, tuple[list[Path], Path]]:
    for case in sorted(set(images) - set(labels)):
        scan.problems.append(
            f"image {images[case][0]} has no mask in {label_dir}; add a mask named {case} (any supported ending) or remove the image"
        )
    for case in sorted(set(labels) - set(images)):
        scan.problems.append(f"mask {labels[case]} has no image in {image_dir}; add the image or remove the mask")
    return {case: (images[case], labels[case]) for case in sorted(set(images) & set(labels))}


def _scan_folder(root: Path, data_cfg, scan: LayoutScan):
    image_dir = root / "images"
    label_dir = next((root / n for n in ("masks", "labels") if (root / n).is_dir()), None)
    if not image_dir.is_dir() or label_dir is None:
        missing = " and ".join(
            n for n, ok in (("images/", image_dir.is_dir()), ("masks/ (or labels/)", label_dir)) if not ok
        )
        scan.problems.append(
            f"{root} has no {missing} folder; the folder layout needs images/ and masks/ with matching file names"
        )
        return {}
    image_files = _index_by_stem(image_dir, scan, "image")
    label_files = _index_by_stem(label_dir, scan, "mask")
    expected = len(data_cfg.channels or [])
    if _uses_channel_files(image_files, label_files):
        grouped = _group_channel_files(image_files, image_dir, scan)
        images = {c: _channel_list(c, ch, expected, image_dir, scan) for c, ch in grouped.items()}
    else:
        images = {stem: [path] for stem, path in image_files.items()}
    return _pair(images, label_files, image_dir, label_dir, scan)


def _uses_channel_files(image_files: dict[str, Path], label_files: dict[str, Path]) -> bool:
    """Folder layout with nnU-Net channel files: every image stem ends in _NNNN, no mask shares it.

    The channel count is not the test: an RGB PNG is three channels in one file.
    """
    return (
        bool(image_files)
        and all(CHANNEL_FILE.match(stem) and stem not in label_files for stem in image_files)
        and any(stem.endswith("_0000") for stem in image_files)
    )


def _read_dataset_json(path: Path, scan: LayoutScan) -> dict | None:
    try:
        content = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        scan.problems.append(f"{path} cannot be read as JSON ({exc.__class__.__name__}); fix or regenerate it")
        return None
    if not isinstance(content, dict):
        scan.problems.append(f"{path} must hold a JSON object; regenerate it")
        return None
    return content


def _channel_names(description: dict) -> list[str] | None:
    names = description.get("channel_names") or description.get("modality")
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names, key=int)]
    return None


def _inside_root(root: Path, relative: str, dataset_json: Path, key: str, scan) -> Path | None:
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        scan.problems.append(
            f"{dataset_json} lists {key} '{relative}', which leaves the data root {root}; "
            "use paths inside the dataset folder"
        )
        return None
    if not path.is_file():
        scan.problems.append(
            f"{dataset_json} lists {key} '{relative}', which does not exist; add the file or fix the entry"
        )
        return None
    return path


def _scan_msd(root: Path, data_cfg, scan: LayoutScan):
    dataset_json = root / "dataset.json"
    if not dataset_json.is_file():
        scan.problems.append(f"{dataset_json} is missing; the msd layout needs a Decathlon dataset.json")
        return {}
    description = _read_dataset_json(dataset_json, scan)
    if description is None:
        return {}
    scan.channel_names = _channel_names(description)
    training = description.get("training")
    if not isinstance(training, list):
        scan.problems.append(f'{dataset_json} has no "training" list of {{image, label}} entries; add it')
        return {}
    pairs: dict[str, tuple[list[Path], Path]] = {}
    for number, entry in enumerate(training):
        if not isinstance(entry, dict) or not {"image", "label"} <= set(entry):
            scan.problems.append(f'{dataset_json} training entry {number} needs both "image" and "label"; fix it')
            continue
        image = _inside_root(root, entry["image"], dataset_json, "image", scan)
        label = _inside_root(root, entry["label"], dataset_json, "label", scan)
        if image is None or label is None:
            continue
        case = split_suffix(image)[0]
        if case in pairs:
            scan.problems.append(f"duplicate case id '{case}' in {dataset_json} (entry {number}); list each case once")
            continue
        pairs[case] = ([image], label)
    return dict(sorted(pairs.items()))


def _scan_nnunet(root: Path, data_cfg, scan: LayoutScan):
    image_dir, label_dir = root / "imagesTr", root / "labelsTr"
    if not image_dir.is_dir() or not label_dir.is_dir():
        scan.problems.append(
            f"{root} needs imagesTr/ and labelsTr/ folders for the nnunet layout; create them or change data.layout"
        )
        return {}
    if (root / "dataset.json").is_file():
        description = _read_dataset_json(root / "dataset.json", scan) or {}
        scan.channel_names = _channel_names(description)
    expected = len(data_cfg.channels or scan.channel_names or [])
    grouped = _group_channel_files(_index_by_stem(image_dir, scan, "image"), image_dir, scan)
    images = {c: _channel_list(c, ch, expected, image_dir, scan) for c, ch in grouped.items()}
    return _pair(images, _index_by_stem(label_dir, scan, "label"), image_dir, label_dir, scan)


# --------------------------------------------------------------------------- groups


def read_cases_csv(path: Path) -> tuple[dict[str, dict[str, str]], list[str]]:
    """cases.csv -> ({case: row}, problems)."""
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return {}, [f"{path} cannot be read ({exc.__class__.__name__}); save it as UTF-8 CSV"]
    if "case" not in columns:
        return {}, [f"{path} has no 'case' column (columns: {', '.join(columns)}); add one with the case ids"]
    table: dict[str, dict[str, str]] = {}
    problems = []
    for row in rows:
        case = (row.get("case") or "").strip()
        if case in table:
            problems.append(f"{path} lists case '{case}' twice; keep one row per case")
        table[case] = row
    return table, problems


def _attach_groups(root: Path, data_cfg, pairs: dict, scan: LayoutScan, domain_column: str | None = None) -> None:
    """Build the records: patient from ``data.group``, stratum from ``data.stratify``, site from
    ``domain.column``."""
    csv_path = root / "cases.csv"
    table: dict[str, dict[str, str]] = {}
    if csv_path.is_file():
        table, problems = read_cases_csv(csv_path)
        scan.problems.extend(problems)
    group = data_cfg.group or {}
    keys = {"data.group": group.get("column"), "data.stratify": data_cfg.stratify, "domain.column": domain_column}
    needed = [c for c in keys.values() if c]
    if needed and not csv_path.is_file():
        scan.problems.append(
            f"data.group / data.stratify / domain.column name column(s) {needed} but {csv_path} does not exist; "
            "add cases.csv"
        )
        needed = []
    columns = set(next(iter(table.values()), {}).keys())
    for column in needed:
        if table and column not in columns:
            named_by = " / ".join(key for key, value in keys.items() if value == column)
            scan.problems.append(f"{csv_path} has no column '{column}'; add it or fix {named_by}")
    pattern = re.compile(group["regex"]) if "regex" in group else None
    for case, (image_paths, label_path) in pairs.items():
        row = table.get(case)
        if needed and table and row is None:
            scan.problems.append(f"case '{case}' is missing from {csv_path}; add a row for it")
        patient = case
        if pattern is not None:
            match = pattern.search(case)
            if match is None:
                scan.problems.append(
                    f"case id '{case}' does not match data.group regex '{pattern.pattern}'; fix the regex or the file name"
                )
            else:
                patient = match.group(1) if match.groups() else match.group(0)
        elif "column" in group and row is not None:
            patient = (row.get(group["column"]) or case).strip()
        stratum = None
        if data_cfg.stratify and row is not None:
            stratum = (row.get(data_cfg.stratify) or "").strip() or None
        domain = None
        if domain_column and row is not None:
            domain = (row.get(domain_column) or "").strip() or None
        scan.records.append(CaseRecord(case, list(image_paths), label_path, patient, stratum, domain))
