"""Saturating (minimax) vs non-saturating generator loss early in training, measured.

    python scripts/bench/gan_saturation.py [--epochs 30] [--seeds 0 1 2]

Runs ``gan-train --config configs/gan/vanilla.yaml`` (MLP G and D, SGD with momentum, the
original GAN) with ``loss.adversarial`` = minimax and = non_saturating for each seed, evaluating
every epoch, and records per epoch the validation Fréchet distance (digits classifier features)
and the mean D(G(z)) seen by D. Writes docs/results/gan/saturation.json (per-seed and mean curves,
commands, commit) and docs/gan_saturation.png.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
LOSSES = ("minimax", "non_saturating")


def run(loss: str, seed: int, epochs: int) -> tuple[list[dict], str, float]:
    output = Path("runs") / "gan_saturation" / f"{loss}_seed{seed}"
    shutil.rmtree(REPO / output, ignore_errors=True)
    command = [
        "gan-train", "--config", "configs/gan/vanilla.yaml", "--output", str(output), "--device", "cpu", "--quiet",
        "--set", f"loss.adversarial={loss}", "--set", f"seed={seed}", "--set", f"train.epochs={epochs}",
        "--set", "eval.every=1", "--set", "eval.parzen_samples=1000",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    with open(REPO / output / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    return rows, "OMP_NUM_THREADS=1 " + " ".join(command), time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    from adversarial_seg.gan.experiment import git_commit

    curves, commands = {}, []
    for loss in LOSSES:
        per_seed = {}
        for seed in args.seeds:
            rows, command, seconds = run(loss, seed, args.epochs)
            commands.append(command)
            per_seed[str(seed)] = {
                "frechet_distance": [float(r["val_frechet_distance"]) for r in rows],
                "d_fake": [float(r["d_fake"]) for r in rows],
                "loss_d": [float(r["loss_d"]) for r in rows],
                "seconds": round(seconds, 1),
            }
            print(
                f"{loss} seed {seed}: FD {per_seed[str(seed)]['frechet_distance'][-1]:.0f} after {args.epochs} epochs",
                flush=True,
            )
        fd = np.array([s["frechet_distance"] for s in per_seed.values()])
        d_fake = np.array([s["d_fake"] for s in per_seed.values()])
        curves[loss] = {
            "epoch": list(range(1, args.epochs + 1)),
            "frechet_distance_mean": fd.mean(0).round(2).tolist(),
            "frechet_distance_min": fd.min(0).round(2).tolist(),
            "frechet_distance_max": fd.max(0).round(2).tolist(),
            "d_fake_mean": d_fake.mean(0).round(4).tolist(),
            "per_seed": per_seed,
        }
    figure = REPO / "docs" / "gan_saturation.png"
    plot(curves, figure)
    steps = 1257 // 64
    report = [e for e in (1, 2, 5, 10, 20, 30, 50) if e <= args.epochs]
    result = {
        "kind": "saturation",
        "description": f"vanilla GAN (MLP, SGD + momentum) on 16x16 digits, {steps} G steps per epoch, validation Fréchet distance (lower is better)",
        "seeds": args.seeds,
        "report_epochs": report,
        "curves": curves,
        "figure": "docs/gan_saturation.png",
        "command": f"python scripts/bench/gan_saturation.py --epochs {args.epochs} --seeds {' '.join(map(str, args.seeds))}",
        "runs": commands,
        "git_commit": git_commit(),
    }
    out = REPO / "docs" / "results" / "gan" / "saturation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def plot(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for loss, curve in curves.items():
        line = axes[0].plot(curve["epoch"], curve["frechet_distance_mean"], label=loss)[0]
        axes[0].fill_between(
            curve["epoch"],
            curve["frechet_distance_min"],
            curve["frechet_distance_max"],
            color=line.get_color(),
            alpha=0.2,
        )
        axes[1].plot(curve["epoch"], curve["d_fake_mean"], label=loss, color=line.get_color())
    axes[0].set(title="validation Fréchet distance (mean, min-max over seeds)", xlabel="epoch", yscale="log")
    axes[1].set(title="mean D(G(z)) during D updates", xlabel="epoch")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.title.set_fontsize(8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    path.write_bytes(buffer.getvalue())


if __name__ == "__main__":
    raise SystemExit(main())
