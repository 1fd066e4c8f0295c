"""``seg-eval``'s pictures, as PNG bytes: metric distributions, worst cases, training curves."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from adversarial_seg.data.io import read_image, read_label
from adversarial_seg.plots import figure_png, plt

BOX_METRICS = ("dsc", "sensitivity", "specificity", "hd95_mm")


def metric_distributions(evaluations, cls: str, metrics=BOX_METRICS) -> bytes:
    """Box plot per run with every case as a jittered point, one panel per metric."""
    present = [m for m in metrics if any(m in r for e in evaluations for r in e.rows if r["class"] == cls)]
    fig, axes = plt.subplots(1, len(present), figsize=(2.2 + 1.1 * len(evaluations) * len(present), 3.2), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, metric in zip(axes[0], present):
        data = []
        for e in evaluations:
            values = np.array([float(r[metric]) for r in e.rows if r["class"] == cls], dtype=float)
            data.append(values[np.isfinite(values)])
        ax.boxplot(data, showfliers=False, widths=0.5)
        for i, values in enumerate(data, start=1):
            ax.scatter(i + rng.uniform(-0.15, 0.15, values.size), values, s=6, alpha=0.5, color="tab:blue")
        ax.set_xticks(range(1, len(evaluations) + 1), [e.name for e in evaluations], rotation=30, fontsize=7)
        ax.set_title(f"{cls}: {metric}", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return figure_png(fig)


def _display_slice(image: np.ndarray, reference: np.ndarray, prediction: np.ndarray, axis: int | None):
    """2D arrays to show: the image (grey or RGB), reference and prediction masks.

    Volumes: the slice along ``axis`` (the last axis when None) with the most reference voxels,
    or the most predicted voxels when the reference is empty.
    """
    if reference.ndim == 3:
        axis = 2 if axis is None else axis
        weight = reference if reference.any() else prediction
        index = int(np.argmax(weight.sum(axis=tuple(a for a in range(3) if a != axis))))
        take = lambda a: np.take(a, index, axis=a.ndim - 3 + axis)  # noqa: E731
        image, reference, prediction = take(image), take(reference), take(prediction)
    if image.shape[0] == 3:
        shown = np.moveaxis(image, 0, -1)
        shown = (shown - shown.min()) / max(float(np.ptp(shown)), 1e-8)
    else:
        shown = image[0]
    return shown, reference, prediction


def worst_cases(evaluation, cls: str, region_values, n: int = 3) -> bytes | None:
    """The ``n`` lowest-DSC cases of ``cls``: image, reference (green) and prediction (red) outlines."""
    rows = [r for r in evaluation.rows if r["class"] == cls and math.isfinite(float(r["dsc"]))]
    rows = sorted(rows, key=lambda r: float(r["dsc"]))[:n]
    if not rows:
        return None
    fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 3.4), squeeze=False)
    plan = evaluation.run.plan
    for ax, row in zip(axes[0], rows):
        record = evaluation.records[row["case"]]
        image, _ = read_image(record.image_paths[min(plan.reference_index, len(record.image_paths) - 1)])
        reference = np.isin(
            read_label(record.label_path, plan.labels.mask_threshold, plan.labels.foreground_value)[0], region_values
        )
        prediction = np.isin(read_label(evaluation.prediction_paths[row["case"]])[0], region_values)
        shown, reference, prediction = _display_slice(image, reference, prediction, plan.slice_axis)
        ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None)
        for mask, colour in ((reference, "lime"), (prediction, "red")):
            if mask.any() and not mask.all():
                ax.contour(mask.astype(float), levels=[0.5], colors=colour, linewidths=1)
        unit = "px" if plan.file_dims == 2 else "mm"  # 2D image files carry no physical spacing
        ax.set_title(f"{row['case']} (fold {row['fold']})\nDSC {float(row['dsc']):.3f}, HD95 {float(row['hd95_mm']):.1f} {unit}",
                     fontsize=8)  # fmt: skip
        ax.axis("off")
    fig.suptitle(f"{evaluation.name}: worst {cls} cases (green reference, red prediction)", fontsize=9)
    fig.tight_layout()
    return figure_png(fig)


def training_curves(run_dir: Path, fold: int) -> bytes | None:
    """The fold's ``progress.png``: seg-train draws it from ``log.csv`` after every epoch (every
    loss term, D(real) / D(fake), validation metrics), so it is embedded as it is."""
    path = run_dir / f"fold_{fold}" / "progress.png"
    return path.read_bytes() if path.is_file() else None
