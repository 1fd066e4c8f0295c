"""Figures a GAN run writes: sample grids (one row per class for a cGAN), ring scatter plots,
InfoGAN latent traversals, input | output | target panels of image-to-image variants and the
per-epoch metrics plot. Every file is written atomically."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from adversarial_seg.plots import plot_history, save_figure  # noqa: E402

Tensor = torch.Tensor


def image_mosaic(images: Tensor, columns: int) -> np.ndarray:
    """(N, C, H, W) images in [-1, 1] -> one (rows*(H+1)-1, columns*(W+1)-1) array in [0, 1]: grey for
    C = 1, RGB (a last axis of 3) for C = 3."""
    images = ((images.detach().float().cpu() + 1) / 2).clamp(0, 1)
    images = (images[:, 0] if images.shape[1] == 1 else images.permute(0, 2, 3, 1)).numpy()
    n, h, w = images.shape[:3]
    rows = math.ceil(n / columns)
    mosaic = np.ones((rows * (h + 1) - 1, columns * (w + 1) - 1, *images.shape[3:]))
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        mosaic[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = image
    return mosaic


def save_image_grid(
    images: Tensor, columns: int, path: Path, title: str = "", row_labels: list[str] | None = None
) -> None:
    """Images laid out ``columns`` per row, white on black as the digits are drawn."""
    mosaic = image_mosaic(images, columns)
    rows = math.ceil(len(images) / columns)
    fig, ax = plt.subplots(figsize=(0.5 * columns + 0.6, 0.5 * rows + 0.5))
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    h = images.shape[-2] + 1
    if row_labels:
        ax.set_yticks([h * i + h / 2 - 1 for i in range(len(row_labels))], row_labels, fontsize=7)
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def save_ring_scatter(samples: Tensor, real: Tensor, centres: Tensor, path: Path, title: str = "") -> None:
    """Generated points over real ones, mode centres marked."""
    fake, real = samples.detach().float().cpu().numpy(), real.detach().float().cpu().numpy()
    fig, ax = plt.subplots(figsize=(3.6, 3.6))
    ax.scatter(real[:, 0], real[:, 1], s=2, c="0.7", label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:red", alpha=0.6, label="generated")
    ax.scatter(centres[:, 0], centres[:, 1], marker="x", c="k", s=20, label="modes")
    limit = float(np.abs(centres.numpy()).max()) * 1.6
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.legend(fontsize=6, loc="upper right")
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def _display(images: Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, 3) in [0, 1]; one channel is shown grey."""
    images = ((images.detach().float().cpu() + 1) / 2).clamp(0, 1)
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    return images.permute(0, 2, 3, 1).numpy()


def save_translation_panel(
    columns: dict[str, Tensor], path: Path, title: str = "", row_labels: list[str] | None = None
) -> None:
    """One row per case, one column per entry of ``columns`` (e.g. input, output, target)."""
    shown = {name: _display(images) for name, images in columns.items()}
    n = len(next(iter(shown.values())))
    h, w = next(iter(shown.values())).shape[1:3]
    cell = 1.6
    fig, axes = plt.subplots(n, len(shown), figsize=(cell * len(shown) * w / h + 0.3, cell * n + 0.4), squeeze=False)
    for c, (name, images) in enumerate(shown.items()):
        for r in range(n):
            ax = axes[r][c]
            ax.imshow(images[r], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=7)
            if c == 0 and row_labels:
                ax.set_ylabel(row_labels[r], fontsize=6)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


PANELS = (
    ("losses", lambda k: k.startswith("loss") or k == "gradient_penalty"),
    ("D outputs", lambda k: k in ("d_real", "d_fake")),
    ("Fréchet distance", lambda k: k == "val_frechet_distance"),
    ("classifier score", lambda k: k == "val_classifier_score"),
    ("class accuracy", lambda k: k == "val_class_accuracy"),
    ("ring", lambda k: k in ("val_modes_covered", "val_high_quality")),
    ("diversity", lambda k: k == "val_spread_ratio"),
    ("translation error", lambda k: k == "val_l1"),
    ("PSNR (dB)", lambda k: k == "val_psnr"),
    ("SSIM", lambda k: k == "val_ssim"),
    ("learning rate", lambda k: k in ("lr_g", "lr_d")),  # logged with a train.lr_schedule
)


def save_metrics_plot(history: list[dict], path: Path, title: str = "") -> None:
    """One panel per group of logged columns that the history has, against the epoch."""
    plot_history(history, path, PANELS, title, panel_width=3.3)
