"""Training curves from a run's per-epoch history (the rows of ``log.csv``)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402

from adversarial_seg.gan.trainer import atomic_write_bytes  # noqa: E402


def _series(rows: list[dict], key: str):
    points = [(r["epoch"], float(r[key])) for r in rows if r.get(key) not in (None, "")]
    points = [(e, v) for e, v in points if math.isfinite(v)]
    return [p[0] for p in points], [p[1] for p in points]


def plot_training_curves(rows: list[dict], path: Path, title: str = "") -> None:
    """Three panels: every loss term; D(real) / D(fake) and the gradient ratio; validation metrics."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    panels = [
        ("loss", [k for k in keys if k.startswith("loss") or k == "gradient_penalty"]),
        ("discriminator", [k for k in keys if k in ("d_real", "d_fake", "grad_ratio_adv_sup")]),
        ("validation", [k for k in keys if k.startswith("val_")]),
    ]
    panels = [(name, ks) for name, ks in panels if ks]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.4), squeeze=False)
    for ax, (name, ks) in zip(axes[0], panels):
        for key in ks:
            x, y = _series(rows, key)
            ax.plot(x, y, label=key, marker="." if len(x) < 30 else None)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
