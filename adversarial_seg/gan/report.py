"""Markdown tables of GAN results from the JSON files under ``docs/results/gan/``.

Each JSON is a run's ``metrics.json`` plus provenance (written by ``scripts/bench/gan_results.py``);
a saturation-curve JSON (``kind: saturation``, from ``scripts/bench/gan_saturation.py``) gets its own
table. ``render_gan_results(paths)`` returns the markdown; it never computes a number itself.

Example:
    >>> import json, tempfile, pathlib
    >>> run = {"name": "dcgan", "variant": "dcgan", "dataset": "digits", "adversarial": "hinge",
    ...        "train_seconds": 60.0, "epochs": 30, "config_hash": "abc", "git_commit": "123",
    ...        "command": "gan-train --config configs/gan/hinge.yaml",
    ...        "metrics": {"parzen_ll": 100.0, "parzen_se": 2.0, "classifier_score": 8.5, "frechet_distance": 40.0},
    ...        "reference": {"parzen_ll": 200.0, "parzen_se": 4.0, "classifier_score": 9.7, "frechet_distance": 11.0}}
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "dcgan.json"
    >>> _ = path.write_text(json.dumps(run))
    >>> print(render_gan_results([path]).splitlines()[5])
    | dcgan | dcgan | hinge | 100.0 ± 2.0 | 8.50 | 40.0 | 60 s (30 epochs) |
"""

from __future__ import annotations

import json
from pathlib import Path


def _ll(m: dict) -> str:
    if "parzen_ll" not in m:
        return "–"
    return f"{m['parzen_ll']:.1f} ± {m['parzen_se']:.1f}"


def _num(m: dict, key: str, fmt: str) -> str:
    return format(m[key], fmt) if key in m and m[key] is not None else "–"


def _digits_table(runs: list[dict]) -> list[str]:
    lines = [
        "| run | variant | loss | Parzen LL (nats) mean ± s.e. | classifier score | Fréchet distance | time |",
        "|---|---|---|---|---|---|---|",
    ]
    reference = runs[0]["reference"]
    lines.append(
        f"| held-out real digits | – | – | {_ll(reference)} | {_num(reference, 'classifier_score', '.2f')} | "
        f"{_num(reference, 'frechet_distance', '.1f')} | – |"
    )
    for run in runs:
        m = run["metrics"]
        lines.append(
            f"| {run.get('name', run['variant'])} | {run['variant']} | {run['adversarial']} | {_ll(m)} | "
            f"{_num(m, 'classifier_score', '.2f')} | {_num(m, 'frechet_distance', '.1f')} | "
            f"{run['train_seconds']:.0f} s ({run['epochs']} epochs) |"
        )
    return lines


def _ring_table(runs: list[dict]) -> list[str]:
    lines = [
        "| run | variant | loss | modes covered | high-quality share | Parzen LL (nats) mean ± s.e. | time |",
        "|---|---|---|---|---|---|---|",
    ]
    reference = runs[0]["reference"]
    modes = runs[0].get("modes", 8)
    lines.append(
        f"| held-out real points | – | – | {reference['modes_covered']} / {modes} | "
        f"{reference['high_quality']:.3f} | {_ll(reference)} | – |"
    )
    for run in runs:
        m = run["metrics"]
        lines.append(
            f"| {run.get('name', run['variant'])} | {run['variant']} | {run['adversarial']} | "
            f"{m['modes_covered']} / {modes} | {m['high_quality']:.3f} | {_ll(m)} | "
            f"{run['train_seconds']:.0f} s ({run['epochs']} epochs) |"
        )
    return lines


def _saturation_table(result: dict) -> list[str]:
    lines = [
        f"Early training, {result['description']}; mean over seeds {result['seeds']} "
        f"(per-epoch values in the JSON, plot `{result.get('figure', '')}`).",
        "",
        "| generator loss | " + " | ".join(f"epoch {e}" for e in result["report_epochs"]) + " |",
        "|---|" + "---|" * len(result["report_epochs"]),
    ]
    for loss, curve in result["curves"].items():
        cells = []
        for e in result["report_epochs"]:
            i = curve["epoch"].index(e)
            cells.append(f"{curve['frechet_distance_mean'][i]:.0f} (D(G(z)) {curve['d_fake_mean'][i]:.2f})")
        lines.append(f"| {loss} | " + " | ".join(cells) + " |")
    return lines


def _provenance(runs: list[dict]) -> list[str]:
    lines = ["| run | command | commit | config hash |", "|---|---|---|---|"]
    for run in runs:
        lines.append(
            f"| {run.get('name', run.get('variant', run.get('kind')))} | `{run['command']}` | "
            f"{str(run.get('git_commit', ''))[:12]} | {run.get('config_hash', '–')} |"
        )
    return lines


def render_gan_results(json_paths) -> str:
    """Markdown: a digits table and a ring table (each with the held-out real data as the first
    row), the saturating vs non-saturating table when present, and how each number was made."""
    results = [json.loads(Path(p).read_text()) for p in sorted(map(Path, json_paths))]
    runs = [r for r in results if r.get("kind", "run") == "run"]
    digits = [r for r in runs if r["dataset"] == "digits"]
    ring = [r for r in runs if r["dataset"] == "ring"]
    out: list[str] = []
    if digits:
        out += ["### Digits (16x16, test split)", "", *_digits_table(digits), ""]
    if ring:
        out += ["### Ring of 8 Gaussians", "", *_ring_table(ring), ""]
    for result in results:
        if result.get("kind") == "saturation":
            out += ["### Saturating vs non-saturating generator loss", "", *_saturation_table(result), ""]
    if results:
        out += ["### How each row was measured", "", *_provenance(results), ""]
    return "\n".join(out)
