"""Which mask discriminator serves: encoding, input scale and width, measured on PH2.

    python scripts/bench/discriminator_choice.py [--data ../shared/data/ph2] [--size 128 96]
        [--epochs 20] [--seeds 0 1] [--threads 2]

Trains the default segmentor with each discriminator setting on the same fixed split of PH2
(the first 100 cases in name order train, the other 50 validate) and reports the validation
lesion DSC (mean over images), the last epoch's mean D(real) / D(fake) and the wall time.
The split, the augmentation (random flips) and the networks' initialisation are seeded, so
rows differ only by the discriminator. Skips with a message when the data folder is absent.
Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from adversarial_seg.config import config_from_mapping
from adversarial_seg.data.io import read_image
from adversarial_seg.runtime import Precision, seed_everything
from adversarial_seg.seg.task import build_segmentation_step

SETTINGS = [  # (label, scheme, discriminator config)
    ("ce (no discriminator)", "ce", {}),
    ("hybrid, scaled, input_scale 0.5, 16 ch (default)", "hybrid", {"mask_encoding": "scaled"}),
    ("hybrid, onehot, input_scale 0.5, 16 ch", "hybrid", {"mask_encoding": "onehot"}),
    ("hybrid, product, input_scale 0.5, 16 ch", "hybrid", {"mask_encoding": "product"}),
    ("hybrid, scaled, full resolution, 64 ch", "hybrid", {"input_scale": 1.0, "channels": 64}),
    ("hybrid, scaled, input_scale 0.25, 16 ch", "hybrid", {"input_scale": 0.25}),
]


def load_ph2(root: Path, size: tuple[int, int]):
    images, masks = [], []
    for path in sorted((root / "images").glob("*.png")):
        image, _ = read_image(path)
        mask, _ = read_image(root / "masks" / path.name)
        image = torch.from_numpy(image)[None] / 255.0
        images.append(F.interpolate(image, size=size, mode="area")[0])
        masks.append(F.interpolate(torch.from_numpy(mask)[None] / 255.0, size=size, mode="area")[0] >= 0.5)
    images = torch.stack(images)
    images = (images - images.mean((0, 2, 3), keepdim=True)) / images.std((0, 2, 3), keepdim=True)
    return images, torch.stack(masks).long()


def train_and_score(scheme, discriminator, data, epochs, seed, batch_size=8):
    (train_x, train_y), (val_x, val_y) = data
    seed_everything(seed)
    config = config_from_mapping({"scheme": scheme, "model": {"discriminator": discriminator}})
    device = torch.device("cpu")
    step = build_segmentation_step(config, 2, train_x.shape[1], 2, device, Precision.for_device(device, amp=False))
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    d_real, d_fake = [], []
    for _ in range(epochs):
        order = torch.randperm(len(train_x), generator=generator)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            x, y = train_x[idx].clone(), train_y[idx].clone()
            flip = torch.rand(2, generator=generator) < 0.5
            dims = [d for d, f in zip((2, 3), flip) if f]
            if dims:
                x, y = x.flip(dims), y.flip(dims)
            terms = step([{"image": x, "label": y}])
            if "d_real" in terms:
                d_real.append(float(terms["d_real"]))
                d_fake.append(float(terms["d_fake"]))
    seconds = time.perf_counter() - started
    step.task.generator.eval()
    with torch.no_grad():
        pred = torch.cat([step.task.generator(val_x[i : i + 16]).argmax(1) for i in range(0, len(val_x), 16)])
    ref = val_y[:, 0].bool()
    pred = pred.bool()
    inter = (pred & ref).flatten(1).sum(1).float()
    dsc = 2 * inter / (pred.flatten(1).sum(1) + ref.flatten(1).sum(1)).clamp_min(1)
    per_epoch = max(1, len(d_real) // epochs)
    last = lambda values: float(np.mean(values[-per_epoch:])) if values else float("nan")  # noqa: E731
    return float(dsc.mean()), last(d_real), last(d_fake), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_root = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ph2"
    parser.add_argument("--data", type=Path, default=default_root)
    parser.add_argument("--size", type=int, nargs=2, default=[128, 96])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", type=int, nargs="*", help="indices of SETTINGS to run")
    args = parser.parse_args()
    if not (args.data / "images").is_dir():
        print(f"skipped: PH2 not found at {args.data} (pass --data)")
        return 0
    torch.set_num_threads(args.threads)
    images, masks = load_ph2(args.data, tuple(args.size))
    data = ((images[:100], masks[:100]), (images[100:], masks[100:]))
    print(
        f"PH2 {len(images)} images at {args.size[0]} x {args.size[1]}, 100 train / {len(images) - 100} val, "
        f"{args.epochs} epochs, seeds {args.seeds}, torch {torch.__version__}, {args.threads} threads"
    )
    print()
    print("| setting | val DSC per seed | mean DSC | D(real) | D(fake) | s per run |")
    print("|---|---|---:|---:|---:|---:|")
    chosen = [SETTINGS[i] for i in args.only] if args.only else SETTINGS
    for label, scheme, discriminator in chosen:
        results = [train_and_score(scheme, discriminator, data, args.epochs, seed) for seed in args.seeds]
        dscs = [r[0] for r in results]
        print(
            f"| {label} | {', '.join(f'{d:.3f}' for d in dscs)} | {statistics.mean(dscs):.3f} | "
            f"{statistics.mean(r[1] for r in results):.2f} | {statistics.mean(r[2] for r in results):.2f} | "
            f"{statistics.mean(r[3] for r in results):.0f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
