"""pix2pix's "FCN score" on PH2: a segmentor trained by seg-train segments the generated images, and
its masks are scored against the masks the images were generated from (for srgan runs: against the
expert masks of the super-resolved images, beside a ``bicubic`` row of the same sources upsampled).

    python scripts/fcn_score.py GAN_RUN [GAN_RUN ...] --segmentor SEG_RUN --output DIR [--splits test]

GAN_RUN: pix2pix or srgan runs of gan-train on one grid (e.g. configs/gan/pix2pix.yaml and its
L1-only baseline; configs/gan/srgan.yaml and srgan_mse.yaml).
SEG_RUN: a finished cross-validation run of seg-train on PH2 (e.g. the ce run of configs/ph2.yaml).
For every case of the GAN runs' held-out ``--splits`` (pix2pix trained on none of them; the
validation split only drew its per-epoch curves), the image generated from the case's expert mask
is written as a PNG at the GAN's grid and segmented by ``seg-predict`` with the SEG_RUN fold model
that had the case in its validation fold, so the segmentor never saw the case either. The same is
done for the real image resized to the same grid (the ``real`` row: what a perfect generator would
score; with srgan runs also the ``bicubic`` row, the baseline SR must beat). Reported per row: mean ± std of the case DSC against the source mask (on the GAN's grid), and
the Frechet distance between the generated and the real images in the segmentor's bottleneck
features (spatially averaged, fold 0's model for every image, so all rows share one feature
space; with a few dozen cases in 256 dimensions it ranks rows, it is not an absolute value).
Writes DIR/fcn_score.json and prints a Markdown table, then the JSON as the last line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from adversarial_seg.cli.seg_predict import main as seg_predict
from adversarial_seg.data.dataset import prepare_case
from adversarial_seg.data.io import read_label
from adversarial_seg.data.layouts import CaseRecord
from adversarial_seg.gan.config import gan_config_from_mapping
from adversarial_seg.gan.experiment import load_data
from adversarial_seg.gan.metrics import feature_statistics, frechet_distance
from adversarial_seg.gan.paired_data import ph2_pairs
from adversarial_seg.gan.variants import build_task
from adversarial_seg.gan.variants.srgan import bicubic
from adversarial_seg.provenance import read_resolved_config
from adversarial_seg.seg.evaluate import read_run_splits
from adversarial_seg.seg.run import open_run
from adversarial_seg.seg.unet_parts import unet_bottleneck


def load_translation_run(run_dir: Path, variants=("pix2pix", "srgan")):
    """A gan-train run's config, data and task with its trained generator; ``variants``: the ones accepted."""
    config = gan_config_from_mapping(read_resolved_config(run_dir / "config.yaml")[0])
    if config.variant not in variants:
        raise SystemExit(f"{run_dir} is a {config.variant} run; give a run of {' or '.join(variants)}")
    data = load_data(config)
    task = build_task(config, data["shape"], data["classes"])
    state = torch.load(run_dir / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    task.generator.load_state_dict(state["modules"]["generator"])
    return config, data, task


def to_png(image: torch.Tensor, path: Path) -> None:
    """(3, H, W) in [-1, 1] -> an 8-bit RGB PNG."""
    pixels = ((image.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def validation_fold(seg_run: Path) -> dict[str, int]:
    """case -> the fold whose model did not train on it."""
    return {case: entry["fold"] for entry in read_run_splits(seg_run / "splits.json") for case in entry["val"]}


@torch.no_grad()
def features(model, plan, paths: list[Path]) -> np.ndarray:
    captured = []
    hook = unet_bottleneck(model).register_forward_hook(lambda m, i, out: captured.append(out.mean((2, 3))))
    try:
        for path in paths:
            case = prepare_case(CaseRecord(path.stem, [path], None, path.stem), plan)
            model(case.image.as_tensor()[None].float())
    finally:
        hook.remove()
    return torch.cat(captured).numpy()


def segment(seg_run: Path, folder: Path, output: Path, fold: int) -> None:
    args = ["--model", str(seg_run), "--input", str(folder), "--output", str(output), "--folds", str(fold),
            "--no-tta", "--no-progress", "--overwrite"]  # fmt: skip
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = seg_predict(args)
    if code != 0:
        raise SystemExit(f"seg-predict {' '.join(args)} exited with {code}:\n{buffer.getvalue()}")


def dsc(pred: np.ndarray, ref: np.ndarray) -> float:
    total = pred.sum() + ref.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(pred, ref).sum() / total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gan_runs", nargs="+", type=Path)
    parser.add_argument("--segmentor", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--splits", nargs="+", default=["test"], choices=["val", "test"])
    args = parser.parse_args()
    if args.output.exists() and any(args.output.iterdir()) and not (args.output / "fcn_score.json").is_file():
        raise SystemExit(f"{args.output} holds files this script did not write; give an empty or new --output")
    torch.set_grad_enabled(False)
    seg = open_run(args.segmentor)
    fold_of = validation_fold(args.segmentor)
    feature_model = seg.load_models([0], torch.device("cpu"))[0].eval()
    rows: dict[str, dict] = {}
    real_features = None
    for index, run_dir in enumerate(args.gan_runs):
        config, data, task = load_translation_run(run_dir)
        images = torch.cat([data["splits"][s][0] for s in args.splits])
        inputs = torch.cat([data["splits"][s][1] for s in args.splits])  # pix2pix: the masks in [-1, 1]
        if config.variant == "srgan":  # the inputs are the low-resolution images; the masks are PH2's
            pairs = ph2_pairs(config.data.ph2.root, config.data.ph2.size, config.data.split_seed)
            masks = torch.cat([pairs[s][1] for s in args.splits]) > 0
        else:
            masks = inputs > 0
        cases = [c for s in args.splits for c in data["cases"][s]]
        missing = [c for c in cases if c not in fold_of]
        if missing:
            raise SystemExit(f"{args.segmentor} has no validation fold for cases {missing[:5]}: not the same PH2 cases")
        generated = torch.cat([task.translate(chunk) for chunk in inputs.split(16)])
        sources = {run_dir.name: generated}
        if config.variant == "srgan" and "bicubic" not in rows:
            sources = {"bicubic": bicubic(inputs, config.data.sr_scale).clamp(-1, 1), **sources}
        if index == 0:
            sources = {"real": images, **sources}
        for name, pictures in sources.items():
            folder = args.output / name
            paths = []
            for case, picture in zip(cases, pictures, strict=True):
                paths.append(folder / f"fold_{fold_of[case]}" / f"{case}.png")
                to_png(picture, paths[-1])
            for fold in sorted({fold_of[c] for c in cases}):
                segment(args.segmentor, folder / f"fold_{fold}", folder / f"pred_fold_{fold}", fold)
            scores = []
            for case, mask in zip(cases, masks, strict=True):
                pred = read_label(folder / f"pred_fold_{fold_of[case]}" / f"{case}.png")[0] > 0
                scores.append(dsc(pred, mask[0].numpy()))
            feats = features(feature_model, seg.plan, paths)
            if name == "real":
                real_features = feats
            fd = frechet_distance(*feature_statistics(feats), *feature_statistics(real_features))
            spread = statistics.stdev(scores) if len(scores) > 1 else float("nan")
            rows[name] = {"cases": len(cases), "dsc_mean": statistics.mean(scores), "dsc_std": spread,
                          "frechet_distance": fd, "config_hash": None if name in ("real", "bicubic") else config.digest()}  # fmt: skip
            print(f"{name}: DSC {rows[name]['dsc_mean']:.3f}, FD {fd:.2f}", file=sys.stderr, flush=True)
    result = {"segmentor": str(args.segmentor), "splits": args.splits, "rows": rows}
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "fcn_score.json").write_text(json.dumps(result, indent=1) + "\n")
    print("| images | cases | DSC against the expert mask | Frechet distance to real (segmentor features) |")
    print("|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['cases']} | {r['dsc_mean']:.3f} ± {r['dsc_std']:.3f} | {r['frechet_distance']:.2f} |")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
