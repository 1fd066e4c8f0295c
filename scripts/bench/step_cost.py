"""Cost of one hybrid training step relative to one ce step, for several discriminator shapes.

    python scripts/bench/step_cost.py [--size 256 192] [--batch 8] [--steps 10] [--threads 2]

Each row builds the segmentor of the default config plus a mask discriminator of the given
width and input scale, times ``--steps`` full training steps (forward, backward, optimiser)
after 3 warm-up steps, and reports the median seconds per step and the ratio to the ce step.
ce and hybrid steps are interleaved so that load from other processes hits both alike.
Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from adversarial_seg.config import config_from_mapping
from adversarial_seg.runtime import Precision
from adversarial_seg.seg.task import build_segmentation_step

DISCRIMINATORS = [  # (label, discriminator config)
    ("full resolution, 64 channels (pix2pix width)", {"channels": 64, "input_scale": 1.0}),
    ("full resolution, 16 channels", {"channels": 16, "input_scale": 1.0}),
    ("input_scale 0.5, 32 channels", {"channels": 32, "input_scale": 0.5}),
    ("input_scale 0.5, 16 channels (default)", {"channels": 16, "input_scale": 0.5}),
    ("input_scale 0.25, 16 channels", {"channels": 16, "input_scale": 0.25}),
]


def build(scheme: str, discriminator: dict, in_channels: int):
    config = config_from_mapping({"scheme": scheme, "model": {"discriminator": discriminator}})
    device = torch.device("cpu")
    return build_segmentation_step(config, 2, in_channels, 2, device, Precision.for_device(device, amp=False))


def time_steps(step, batch, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        step([batch])
        times.append(time.perf_counter() - started)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=[256, 192])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--channels", type=int, default=3, help="image channels (3: RGB dermoscopy)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batch = {
        "image": torch.randn(args.batch, args.channels, *args.size),
        "label": (torch.rand(args.batch, 1, *args.size) > 0.7).long(),
    }
    ce = build("ce", {}, args.channels)
    hybrids = [(label, build("hybrid", d, args.channels)) for label, d in DISCRIMINATORS]
    for step in [ce] + [h for _, h in hybrids]:
        time_steps(step, batch, 3)
    ce_times: list[float] = []
    hybrid_times = {label: [] for label, _ in hybrids}
    for _ in range(args.steps):  # interleave: one step of each, repeated
        ce_times += time_steps(ce, batch, 1)
        for label, step in hybrids:
            hybrid_times[label] += time_steps(step, batch, 1)
    ce_median = statistics.median(ce_times)
    print(
        f"batch {args.batch} x {args.channels} x {args.size[0]} x {args.size[1]}, {args.threads} threads, "
        f"median of {args.steps} steps, torch {torch.__version__}"
    )
    print()
    print("| step | discriminator | D parameters | s / step | ratio to ce |")
    print("|---|---|---:|---:|---:|")
    print(f"| ce | none | 0 | {ce_median:.3f} | 1.00 |")
    for label, step in hybrids:
        params = sum(p.numel() for p in step.task.discriminator.parameters())
        median = statistics.median(hybrid_times[label])
        print(f"| hybrid | {label} | {params:,} | {median:.3f} | {median / ce_median:.2f} |")


if __name__ == "__main__":
    main()
