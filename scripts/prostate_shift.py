"""Other hospitals' scanners, simulated: does a model trained here keep its DSC there (issue 13)?

    python scripts/prostate_shift.py RUN --output DIR [--shifts fov110,gain4,...] [--no-tta]
        [--device auto|cpu|cuda] [--no-progress]

For a finished seg-train run on volumes (configs/prostate.yaml), every fold's validation cases are
copied with each shift (``adversarial_seg.data.shifts``: tight field of view, another intensity
range, MR noise, another in-plane spacing, all at once) into ``DIR/<shift>/images`` and
``DIR/<shift>/labels`` (NIfTI; labels follow the geometric steps with nearest sampling). Each copy,
and each original, is predicted by THAT fold's model only (the case was not trained on by it)
through seg-predict's own path (``seg.predict.BatchPredictor``: the run's preprocessing, mirror TTA,
its post-processing) into ``DIR/<shift>/predictions`` and scored against its own label with
``seg.scoring.score_prediction``.

Writes ``DIR/cases.csv`` (the contract's columns plus ``shift``), ``DIR/shifts.json`` (shift
definitions, per shift and region the mean DSC of shifted copies and of the originals over the same
cases, their paired difference, per-case rows) and ``DIR/shifts.md`` (the table). The last line
printed is one JSON object. Rerunning the command skips copies and predictions that exist.

Then, for docs/results.md (``DIR/shifts.json`` -> ``docs/results/shift/<name>.json``; re-render
with ``python scripts/render_results.py``)::

    python scripts/prostate_shift.py record DIR --name prostate_2d --title "..." \
        --command "python scripts/prostate_shift.py RUN --output DIR" --wall-seconds 600 [--machine "..."]

Exit codes: 0 every case done; 1 some predictions failed (named); 2 bad input (run, --output,
--shifts), nothing written.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

# Each shift: steps of adversarial_seg.data.shifts.apply_shift. The field of view follows issue 13
# (some scanners acquire about 110 mm tight around the gland, these volumes about 192 mm); gains of
# 0.25 and 4 and an offset of 250 (about a quarter of these T2 volumes' 99th percentile, 600-1000)
# stand for other scanners' ranges; noise is Rician at 2 % and 5 % of the 99th percentile (BrainWeb's
# convention); 0.4 and 0.9 mm bracket the 0.5-0.625 mm here.
SHIFTS: dict[str, list[dict]] = {
    "fov110": [{"kind": "crop", "field_mm": 110.0}],
    "gain0.25": [{"kind": "intensity", "gain": 0.25, "offset": 0.0}],
    "gain4": [{"kind": "intensity", "gain": 4.0, "offset": 0.0}],
    "offset250": [{"kind": "intensity", "gain": 1.0, "offset": 250.0}],
    "noise2": [{"kind": "noise", "fraction": 0.02, "rician": True}],
    "noise5": [{"kind": "noise", "fraction": 0.05, "rician": True}],
    "spacing0.4": [{"kind": "resample", "spacing_mm": 0.4}],
    "spacing0.9": [{"kind": "resample", "spacing_mm": 0.9}],
    "combined": [
        {"kind": "crop", "field_mm": 110.0},
        {"kind": "resample", "spacing_mm": 0.9},
        {"kind": "intensity", "gain": 4.0, "offset": 250.0},
        {"kind": "noise", "fraction": 0.02, "rician": True},
    ],
}


def build_parser() -> argparse.ArgumentParser:
    from adversarial_seg.cli.common import add_device_argument, add_progress_argument, command_parser

    parser = command_parser("prostate_shift.py", __doc__)
    parser.add_argument("run", type=Path, help="a single-scheme seg-train run directory on volumes")
    parser.add_argument("--output", required=True, type=Path, help="folder for the copies, predictions and tables")
    parser.add_argument("--shifts", default="all", help=f"'all' or a comma list of: {', '.join(SHIFTS)}")
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=True,
                        help="mirror test-time augmentation, as seg-predict (default on)")  # fmt: skip
    add_progress_argument(parser)
    add_device_argument(parser)
    return parser


def parse_shifts(text: str) -> list[str]:
    """``all`` or ``fov110,gain4`` -> shift names in the catalogue's order; InputError names an unknown one."""
    from adversarial_seg.errors import InputError

    if text.strip() == "all":
        return list(SHIFTS)
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in SHIFTS]
    if unknown or not names:
        raise InputError(f"--shifts {text!r}: unknown shift(s) {unknown}; choose from {', '.join(SHIFTS)} or 'all'")
    return [name for name in SHIFTS if name in names]


def check_output_place(output: Path, run_dir: Path, data_root: Path) -> None:
    """InputError unless ``output`` is a writable folder outside the run and outside the dataset."""
    from adversarial_seg.atomic_files import check_output_folder
    from adversarial_seg.errors import InputError

    check_output_folder(output)
    target = output.resolve()
    for name, folder in (("the run", run_dir), ("the dataset", data_root)):
        source = folder.resolve()
        if target == source or source in target.parents or target in source.parents:
            raise InputError(
                f"--output {output} overlaps {name} {folder}; the copies must go elsewhere, so choose a folder "
                "outside both"
            )


def fold_cases(run, records: dict) -> list[tuple[int, object]]:
    """(fold, CaseRecord) for every finished fold's validation cases; InputError for a case not on disk."""
    from adversarial_seg.errors import InputError
    from adversarial_seg.seg.evaluate import read_run_splits

    pairs = []
    for split in read_run_splits(run.run_dir / "splits.json"):
        if split["fold"] not in run.finished_folds:
            continue
        for case in split["val"]:
            if case not in records or records[case].label_path is None:
                raise InputError(
                    f"validation case {case} of {run.run_dir / 'splits.json'} has no image and label under "
                    f"{run.config.data.root}; restore the dataset the run was trained on"
                )
            pairs.append((split["fold"], records[case]))
    return pairs


def write_shifted_copies(record, names: list[str], output: Path) -> dict[str, tuple[Path, Path]]:
    """Each shift of one case as ``DIR/<shift>/images/<case>_0000.nii.gz`` (float32) and
    ``DIR/<shift>/labels/<case>.nii.gz``; copies that exist are kept (they are seeded, so equal)."""
    from adversarial_seg.data.io import read_image, read_label, write_image, write_label
    from adversarial_seg.data.shifts import apply_shift
    from adversarial_seg.runtime import derived_seed

    paths = {
        name: (output / name / "images" / f"{record.case_id}_0000.nii.gz", output / name / "labels" / f"{record.case_id}.nii.gz")
        for name in names
    }  # fmt: skip
    missing = [name for name, pair in paths.items() if not all(p.is_file() for p in pair)]
    if not missing:
        return paths
    image, props = read_image(record.image_paths[0])
    label, _ = read_label(record.label_path)
    props = {**props, "format": "nifti", "suffix": ".nii.gz"}
    for name in missing:
        seed = derived_seed("prostate_shift", name, record.case_id)
        shifted, shifted_label, shifted_props = apply_shift(image, label, props, SHIFTS[name], seed)
        image_path, label_path = paths[name]
        write_label(label_path, shifted_label, shifted_props)  # label first: the image marks a finished copy
        write_image(image_path, shifted, shifted_props)
    return paths


def check_shift_definitions(output: Path, names: list[str]) -> None:
    """DIR/<shift>/shift.json holds the steps its copies were made with; InputError if they differ now."""
    from adversarial_seg.atomic_files import atomic_write_text
    from adversarial_seg.errors import InputError

    for name in names:
        path = output / name / "shift.json"
        if path.is_file():
            if json.loads(path.read_text()) != SHIFTS[name]:
                raise InputError(
                    f"{path} records other steps than this script's '{name}'; delete {output / name} or choose "
                    "another --output"
                )
        else:
            atomic_write_text(path, json.dumps(SHIFTS[name], indent=1) + "\n")


def shift_study(args: argparse.Namespace) -> int:
    """The script's work: copies, predictions, scores, tables; exit code."""
    from tqdm.auto import tqdm

    from adversarial_seg.atomic_files import atomic_write_text
    from adversarial_seg.cli.common import show_progress
    from adversarial_seg.data.layouts import scan_layout
    from adversarial_seg.errors import InputError
    from adversarial_seg.provenance import git_commit
    from adversarial_seg.runtime import resolve_device
    from adversarial_seg.seg.predict import BatchPredictor, CaseFiles
    from adversarial_seg.seg.run import fold_done, open_run, trained_by
    from adversarial_seg.seg.shift_report import GOAL, ORIGINAL, format_markdown, paired_summary
    from adversarial_seg.seg.summary import write_cases_csv, write_json

    started = time.perf_counter()
    commit = git_commit()  # now: commits made while the study runs are not the code that ran it
    names = parse_shifts(args.shifts)
    run = open_run(args.run)
    if run.plan.file_dims != 3:
        raise InputError(
            f"{args.run} was trained on 2D images; the scanner shifts need a run on volumes (e.g. configs/prostate.yaml)"
        )
    if not run.finished_folds:
        raise InputError(f"{args.run} has no finished fold; wait for seg-train (or --resume it)")
    data_root = Path(run.config.data.root)
    check_output_place(args.output, run.run_dir, data_root)
    device = resolve_device(args.device)
    scan = scan_layout(run.config.data)
    pairs = fold_cases(run, {r.case_id: r for r in scan.records})
    regions = list(run.plan.labels.regions)  # pz, tz, gland: the scored classes
    args.output.mkdir(parents=True, exist_ok=True)
    check_shift_definitions(args.output, names)
    print(
        f"prostate_shift: {len(pairs)} validation cases of folds {run.finished_folds} of {run.run_dir}, "
        f"shifts {names}, TTA {'on' if args.tta else 'off'}, device {device}",
        flush=True,
    )
    rows, failed = [], []
    show = show_progress(args)
    with tqdm(total=len(pairs) * (len(names) + 1), desc="predictions", unit="case", disable=not show) as bar:
        for fold in run.finished_folds:
            records = [record for f, record in pairs if f == fold]
            if not records:
                continue
            models = run.load_models([fold], device)  # this fold's model only: its validation cases are unseen
            copies = {record.case_id: write_shifted_copies(record, names, args.output) for record in records}
            for name in [ORIGINAL, *names]:
                if name == ORIGINAL:
                    cases = [CaseFiles(r.case_id, list(r.image_paths)) for r in records]
                    labels = Path(records[0].label_path).parent
                else:
                    cases = [CaseFiles(r.case_id, [copies[r.case_id][name][0]]) for r in records]
                    labels = args.output / name / "labels"
                predictor = BatchPredictor(run, models, device, args.output / name / "predictions", tta=args.tta,
                                           labels=labels, folds_label=fold)  # fmt: skip
                result = predictor.run_batch(cases, report=tqdm.write if show else print, progress=bar)
                failed += [(name, line) for _, line in result.failed + result.unscored]
                rows += [{**row, "shift": name} for row in result.metric_rows]
    table, case_pairs = paired_summary(rows, names, regions)
    write_cases_csv(rows, args.output / "cases.csv")
    seconds = time.perf_counter() - started
    summary = {
        "run": str(run.run_dir.resolve()), "git_commit": commit,
        "trained_by": trained_by([fold_done(run.run_dir / f"fold_{fold}") for fold in run.finished_folds]),
        "folds": run.finished_folds, "cases": len(pairs), "tta": args.tta, "device": str(device),
        "goal": f"mean paired DSC difference >= -{GOAL}", "shifts": {name: SHIFTS[name] for name in names},
        "table": table, "pairs": case_pairs, "failed": [line for _, line in failed], "seconds": round(seconds, 1),
    }  # fmt: skip
    write_json(summary, args.output / "shifts.json")
    atomic_write_text(args.output / "shifts.md", format_markdown(table))
    print(format_markdown(table))
    for _, line in failed:
        print(f"error: {line}", file=sys.stderr)
    broken = [f"{r['shift']}/{r['region']}" for r in table if not r["within_goal"]]
    worst = min(table, key=lambda r: r["difference"] if math.isfinite(r["difference"]) else math.inf, default=None)
    print(json.dumps({
        "output": str(args.output), "cases": len(pairs), "shifts": names, "within_goal": not broken,
        "outside_goal": broken, "worst": None if worst is None else
        {k: worst[k] for k in ("shift", "region", "difference")}, "failed": len(failed), "seconds": round(seconds, 1),
    }))  # fmt: skip
    return 1 if failed else 0


RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results" / "shift"
DEFAULT_MACHINE = "2-core CPU, 24 GiB, no GPU (the project's build machine)"


def record(argv: list[str]) -> int:
    """``record DIR --name N ...``: DIR/shifts.json (without the per-case pairs, which stay in DIR)
    plus the command, machine and wall time -> docs/results/shift/N.json."""
    from adversarial_seg.seg.summary import write_json

    parser = argparse.ArgumentParser(prog="prostate_shift.py record", description=record.__doc__)
    parser.add_argument("output", type=Path, help="the --output folder of a finished shift study")
    parser.add_argument("--name", required=True, help="record name: docs/results/shift/<name>.json")
    parser.add_argument("--title", required=True)
    parser.add_argument("--command", required=True, help="the command that ran the study, as typed")
    parser.add_argument("--wall-seconds", required=True, type=float, help="measured wall time (e.g. /usr/bin/time -v)")
    parser.add_argument("--max-rss-mib", type=float, help="peak memory, from /usr/bin/time -v")
    parser.add_argument("--machine", default=DEFAULT_MACHINE)
    parser.add_argument("--note", default="", help="one paragraph shown under the table")
    args = parser.parse_args(argv)
    source = args.output / "shifts.json"
    if not source.is_file():
        print(f"error: {source} does not exist; run the shift study into {args.output} first", file=sys.stderr)
        return 2
    study = json.loads(source.read_text())
    body = {key: value for key, value in study.items() if key != "pairs"}
    body.update(title=args.title, command=args.command, machine=args.machine, wall_seconds=args.wall_seconds,
                max_rss_mib=args.max_rss_mib, note=args.note, pairs_in=str(args.output / "shifts.json"))  # fmt: skip
    write_json(body, RESULTS / f"{args.name}.json")
    print(f"wrote {RESULTS / f'{args.name}.json'}; now run: python scripts/render_results.py")
    return 0


def main(argv: list[str] | None = None) -> int:
    from adversarial_seg.cli.common import guarded

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["record"]:
        return record(argv[1:])
    args = build_parser().parse_args(argv)
    return guarded(lambda: shift_study(args), "rerun the same command: existing copies and predictions are kept")


if __name__ == "__main__":
    sys.exit(main())
