"""Figures from a run's per-epoch history (the rows of ``log.csv``), written atomically."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from adversarial_seg.atomic_files import atomic_write_bytes  # noqa: E402


def figure_png(fig, dpi: int = 90) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def save_figure(fig, path: Path, dpi: int = 90) -> None:
    """Write a matplotlib figure as PNG atomically and close it."""
    atomic_write_bytes(Path(path), figure_png(fig, dpi))


def _series(rows: list[dict], key: str):
    points = [(r["epoch"], float(r[key])) for r in rows if r.get(key) not in (None, "")]
    points = [(e, v) for e, v in points if math.isfinite(v)]
    return [p[0] for p in points], [p[1] for p in points]


Panels = Sequence[tuple[str, Callable[[str], bool]]]

TRAINING_PANELS: Panels = (
    ("loss", lambda k: k.startswith("loss") or k == "gradient_penalty"),
    # D's outputs (near 0..1) and the gradient ratio (often 3..5) on one axis would flatten D's curves
    ("discriminator outputs", lambda k: k in ("d_real", "d_fake")),
    ("adversarial / supervised gradient", lambda k: k == "grad_ratio_adv_sup"),
    # +1: D pushes the output the way the expert labels do; 0: in an unrelated direction
    ("cosine, adversarial vs supervised gradient", lambda k: k == "grad_cos_adv_sup"),
    # the probe: 0.5 = D cannot tell expert from predicted masks on held-out pairs
    ("discriminator AUC (held out)", lambda k: k == "d_auc"),
    ("validation", lambda k: k.startswith("val_")),
)


def panel_columns(rows: list[dict], panels: Panels) -> list[tuple[str, list[str]]]:
    """(panel name, the columns of ``rows`` it draws) for every panel that has any."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    chosen = [(name, [k for k in keys if pick(k)]) for name, pick in panels]
    return [(name, ks) for name, ks in chosen if ks]


def plot_history(rows: list[dict], path: Path, panels: Panels, title: str = "", panel_width: float = 4.5) -> None:
    """One panel per (name, column filter) that matches a column of ``rows``, against the epoch."""
    chosen = panel_columns(rows, panels)
    fig, axes = plt.subplots(1, len(chosen), figsize=(panel_width * len(chosen), 3.4), squeeze=False)
    for ax, (name, ks) in zip(axes[0], chosen):
        for key in ks:
            x, y = _series(rows, key)
            ax.plot(x, y, label=key, marker="." if len(x) < 30 else None)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def plot_training_curves(rows: list[dict], path: Path, title: str = "") -> None:
    """Every loss term; D(real) / D(fake); the gradient ratio; D's held-out AUC; validation metrics
    (one panel each)."""
    plot_history(rows, path, TRAINING_PANELS, title)
