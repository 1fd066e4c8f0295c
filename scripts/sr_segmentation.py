"""Do super-resolved prostate slices segment as well as bicubic ones? A zone segmentor segments each
held-out volume of srgan runs on prostate slices (configs/gan/srgan_prostate*.yaml) at full resolution,
upsampled by bicubic interpolation from its x4 downsampled slices, and super-resolved by each run's G.

    python scripts/sr_segmentation.py SR_RUN [SR_RUN ...] --segmentor SEG_RUN --output DIR

SR_RUN: gan-train srgan runs on ``data.dataset: sites`` holding out the same ``data.sites`` fold (so
the same cases, none seen by G). SEG_RUN: a seg-train run of the prostate zones on the same cases
(configs/prostate.yaml, or configs/prostate_dann.yaml with ``domain.adapt=0``); each case is
segmented by the fold model that had it in validation (seg-predict ``--folds``, no TTA).

Every condition is one volume per case on the srgan runs' grid (RAS, ``data.sites.spacing`` in-plane,
``data.sites.size``), its slices mapped back to the volume's intensity range: ``full_resolution`` is the
volume through that [-1, 1] mapping (clipped at its 0.5th / 99.5th percentiles, as G's targets are), the
others are built from the downsampled slices. DSC per region of the segmentor's config against the
expert labels on that grid, mean ± sample std over cases; each run vs bicubic: mean difference and
seg-eval's paired Wilcoxon p. Writes DIR/sr_segmentation.json and prints a Markdown table, then the JSON
as the last line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from cyclegan_transfer import paired_difference, print_rows, save_nifti, score_condition, write_label_map
from fcn_score import load_translation_run, validation_fold

from adversarial_seg.gan.paired_data import low_resolution
from adversarial_seg.gan.site_data import from_unit, load_site_volume, read_sites
from adversarial_seg.gan.variants.srgan import bicubic
from adversarial_seg.seg.run import open_run

RESULT = "sr_segmentation.json"


def to_volume(slices: torch.Tensor, volume) -> np.ndarray:
    """(Z, 1, H, W) slices in [-1, 1] -> (H, W, Z) in the volume's intensity range."""
    return from_unit(slices.clamp(-1, 1)[:, 0].permute(1, 2, 0), volume.low, volume.high).numpy().astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sr_runs", nargs="+", type=Path)
    parser.add_argument("--segmentor", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    if args.output.exists() and any(args.output.iterdir()) and not (args.output / RESULT).is_file():
        raise SystemExit(f"{args.output} holds files this script did not write; give an empty or new --output")
    torch.set_grad_enabled(False)
    runs = [(run_dir, *load_translation_run(run_dir, ("srgan",))) for run_dir in args.sr_runs]
    first = runs[0][1].data
    if first.dataset != "sites" or any(config.data.sites != first.sites for _, config, _, _ in runs):
        raise SystemExit("give srgan runs on data.dataset sites with one data.sites section (the same held-out cases)")
    names = [run_dir.name for run_dir, *_ in runs]
    if len(set(names)) < len(names) or {"full_resolution", "bicubic"} & set(names):
        raise SystemExit(f"the runs' folder names {names} must differ and not be full_resolution or bicubic")
    fold_of = validation_fold(args.segmentor)
    data_config = open_run(args.segmentor).config.data
    regions = data_config.regions or {n: [v] for n, v in (data_config.labels or {}).items() if v != 0}
    sites, scale = first.sites, first.sr_scale
    paths = {c.case: c.path for entries in read_sites(Path(sites.root), sites.column).values() for c in entries}
    cases = sorted(set(runs[0][2]["cases"]["test"]))
    missing = [c for c in cases if c not in fold_of]
    if missing:
        raise SystemExit(f"{args.segmentor} has no validation fold for {missing[:5]}: not the same cases")
    for case in cases:
        volume = load_site_volume(case, paths[case], sites.spacing, tuple(sites.size))
        write_label_map(case, sites, args.output)
        slices = volume.unit_slices()
        low = low_resolution(slices, scale)
        made = {"full_resolution": slices, "bicubic": bicubic(low, scale)}
        for run_dir, _, _, task in runs:
            made[run_dir.name] = torch.cat([task.translate(chunk) for chunk in low.split(16)])
        name = f"fold_{fold_of[case]}/{case}_0000.nii.gz"
        for condition, images in made.items():
            save_nifti(to_volume(images, volume), volume.image.affine, args.output / condition / name)
    print(f"super-resolved {len(cases)} held-out cases", file=sys.stderr, flush=True)
    folds = {case: fold_of[case] for case in cases}
    rows = {
        c: score_condition(args.segmentor, args.output, c, c, folds, regions)
        for c in ["full_resolution", "bicubic", *names]
    }
    comparison = {name: paired_difference(rows["bicubic"], rows[name], regions) for name in names}
    result = {"kind": "sr_segmentation", "sr_runs": [str(r) for r in args.sr_runs], "segmentor": str(args.segmentor),
              "scale": scale, "cases": cases, "rows": rows, "vs_bicubic": comparison}  # fmt: skip
    (args.output / RESULT).write_text(json.dumps(result, indent=1) + "\n")
    print_rows(rows, list(regions), "images")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
