"""Does CycleGAN close the cross-site gap? A zone segmentor trained on site A alone segments site B's
held-out volumes as they are and translated to site A by G_ba, beside a segmentor trained on site B.

    python scripts/cyclegan_transfer.py CYCLE_RUN [CYCLE_RUN ...] --source-only SEG_RUN \\
        [--on-target SEG_RUN] --output DIR

CYCLE_RUN: cyclegan runs of gan-train (configs/gan/cyclegan.yaml, one per ``data.sites.fold``); each
translates the B cases it held out, so no case is translated by a G that trained on it.
SEG_RUN: seg-train runs of configs/prostate_dann.yaml on the same splits: ``--source-only`` with
``domain.adapt=0`` (trained on site A's labels only), ``--on-target`` with ``domain.source=[384px]``
(trained on site B itself: what closing the whole gap would reach). Each B case is segmented with the
fold model that had it in its validation fold (seg-predict ``--folds``, no TTA), so no segmentor saw it.

Every condition is scored on the same grid, cyclegan's (RAS, ``data.sites.spacing`` in-plane, cropped to
``data.sites.size``): the volume and its expert label map are brought there once (``site_geometry``),
the translated volume is G_ba's slices mapped back to the volume's intensity range. DSC per region of
the segmentor's config (pz, tz, gland), mean ± sample std over cases; ``gap_closed`` = (translated - as is)
/ (on target - as is) of the means (null where on target is not above as is: no gap); Wilcoxon signed-rank p of translated vs as is, paired per case.
Writes DIR/cyclegan_transfer.json and prints a Markdown table, then the JSON as the last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from fcn_score import dsc, load_translation_run, segment, validation_fold

from adversarial_seg.data.io import read_label
from adversarial_seg.gan.site_data import from_unit, load_site_volume, read_sites, site_geometry
from adversarial_seg.seg.compare import paired_test
from adversarial_seg.seg.run import open_run

RESULT = "cyclegan_transfer.json"


def save_nifti(array: np.ndarray, affine, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, np.asarray(affine, dtype=np.float64)), str(path))


def write_label_map(case: str, sites, output: Path) -> None:
    """The case's expert label map (``data.sites.root``/labelsTr) on the common grid, as OUTPUT/labels/<case>.nii.gz."""
    label_path = Path(sites.root) / "labelsTr" / f"{case}.nii.gz"
    label = site_geometry(label_path, sites.spacing, tuple(sites.size), mode="nearest")
    array = label.as_tensor()[0].numpy().round().astype(np.uint8)
    save_nifti(array, label.affine, output / "labels" / f"{case}.nii.gz")


def score_condition(seg_run: Path, output: Path, condition: str, key: str, cases: dict[str, int], regions) -> dict:
    """Segment OUTPUT/<condition>/fold_K/ with fold K's model of ``seg_run`` (``cases``: case -> K) and score
    each case against OUTPUT/labels/: per-case DSC per region, their mean and sample std."""
    for fold in sorted(set(cases.values())):
        segment(seg_run, output / condition / f"fold_{fold}", output / "predictions" / key / f"fold_{fold}", fold)
    per_case = {}
    for case, fold in sorted(cases.items()):
        pred = read_label(output / "predictions" / key / f"fold_{fold}" / f"{case}.nii.gz")[0]
        ref = read_label(output / "labels" / f"{case}.nii.gz")[0]
        per_case[case] = {r: dsc(np.isin(pred, values), np.isin(ref, values)) for r, values in regions.items()}
    row = {
        "per_case": per_case,
        "dsc_mean": {r: statistics.mean(c[r] for c in per_case.values()) for r in regions},
        "dsc_std": {
            r: statistics.stdev(c[r] for c in per_case.values()) if len(per_case) > 1 else float("nan") for r in regions
        },  # fmt: skip
    }
    print(f"{key}: " + ", ".join(f"{r} {v:.3f}" for r, v in row["dsc_mean"].items()), file=sys.stderr)
    return row


def paired_difference(base: dict, other: dict, regions) -> dict:
    """Per region: ``other``'s mean DSC minus ``base``'s and seg-eval's paired Wilcoxon p over their cases
    (``score_condition`` rows; zero differences dropped, nan when all are zero)."""
    cases = sorted(base["per_case"])
    out = {}
    for r in regions:
        test = paired_test({c: base["per_case"][c][r] for c in cases}, {c: other["per_case"][c][r] for c in cases})
        out[r] = {"difference": other["dsc_mean"][r] - base["dsc_mean"][r], "wilcoxon_p": test["p_value"]}
    return out


def print_rows(rows: dict, regions: list[str], first: str) -> None:
    """``score_condition``'s rows as a Markdown table: mean ± sample std DSC per region."""
    print(f"| {first} | cases | {' | '.join(f'{r} DSC' for r in regions)} |")
    print("|---|---|" + "---|" * len(regions))
    for key, row in rows.items():
        cells = " | ".join(f"{row['dsc_mean'][r]:.3f} ± {row['dsc_std'][r]:.3f}" for r in regions)
        print(f"| {key} | {len(row['per_case'])} | {cells} |")


def translated_volume(task, volume) -> np.ndarray:
    """G_ba's slices of ``volume`` stacked back to (H, W, Z) in the volume's intensity range."""
    slices = volume.unit_slices()
    out = torch.cat([task.translate(chunk, "ba") for chunk in slices.split(16)])  # (Z, 1, H, W)
    return from_unit(out[:, 0].permute(1, 2, 0), volume.low, volume.high).numpy().astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cycle_runs", nargs="+", type=Path)
    parser.add_argument("--source-only", type=Path, required=True)
    parser.add_argument("--on-target", type=Path)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    if args.output.exists() and any(args.output.iterdir()) and not (args.output / RESULT).is_file():
        raise SystemExit(f"{args.output} holds files this script did not write; give an empty or new --output")
    torch.set_grad_enabled(False)
    seg_runs = {"source_only": args.source_only, **({"on_target": args.on_target} if args.on_target else {})}
    fold_of = validation_fold(args.source_only)
    for run in seg_runs.values():
        if validation_fold(run) != fold_of:
            raise SystemExit(f"{run} has other splits than {args.source_only}; train both on the same splits.json")
    data_config = open_run(args.source_only).config.data
    regions = data_config.regions or {n: [v] for n, v in (data_config.labels or {}).items() if v != 0}
    if not regions:
        raise SystemExit(f"{args.source_only}'s config names no data.regions or data.labels to score")
    conditions = {"as_is": {}, "translated": {}}  # condition -> case -> fold
    for run_dir in args.cycle_runs:
        config, data, task = load_translation_run(run_dir, ("cyclegan",))
        sites = config.data.sites
        paths = {c.case: c.path for entries in read_sites(Path(sites.root), sites.column).values() for c in entries}
        for case in data["cases"]["test"]["b"]:
            if case not in fold_of:
                raise SystemExit(f"{args.source_only} has no validation fold for {case}: not the same cases")
            fold = fold_of[case]
            volume = load_site_volume(case, paths[case], sites.spacing, tuple(sites.size))
            write_label_map(case, sites, args.output)
            name = f"fold_{fold}/{case}_0000.nii.gz"
            save_nifti(volume.image.as_tensor()[0].numpy(), volume.image.affine, args.output / "as_is" / name)
            save_nifti(translated_volume(task, volume), volume.image.affine, args.output / "translated" / name)
            conditions["as_is"][case] = conditions["translated"][case] = fold
        print(f"{run_dir}: translated {', '.join(data['cases']['test']['b'])}", file=sys.stderr, flush=True)
    rows = {}
    plan = [("source_only", "as_is"), ("source_only", "translated")] + (
        [("on_target", "as_is")] if args.on_target else []
    )
    for seg_name, condition in plan:
        key = f"{seg_name}/{condition}"
        rows[key] = score_condition(seg_runs[seg_name], args.output, condition, key, conditions[condition], regions)
    as_is, translated = rows["source_only/as_is"], rows["source_only/translated"]
    cases = sorted(as_is["per_case"])
    comparison = paired_difference(as_is, translated, regions)
    if args.on_target:
        for r in regions:
            gap = rows["on_target/as_is"]["dsc_mean"][r] - as_is["dsc_mean"][r]
            comparison[r]["gap"] = gap
            # null where training on B itself is no better than source only: there is no gap to close
            comparison[r]["gap_closed"] = comparison[r]["difference"] / gap if gap > 0 else None
    result = {"kind": "cyclegan_transfer", "cycle_runs": [str(r) for r in args.cycle_runs],
              "seg_runs": {k: str(v) for k, v in seg_runs.items()}, "cases": cases, "rows": rows,
              "translated_vs_as_is": comparison}  # fmt: skip
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / RESULT).write_text(json.dumps(result, indent=1) + "\n")
    print_rows(rows, list(regions), "segmentor / images")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
