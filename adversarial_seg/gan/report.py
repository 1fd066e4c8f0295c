"""Markdown tables of GAN results from the JSON files under ``docs/results/gan/``.

Each JSON is a run's ``metrics.json`` plus provenance (written by ``scripts/bench/gan_results.py``),
or, for a config measured at several seeds, ``aggregate_seeds`` of the runs' bodies: ``metrics`` then
holds the mean over seeds, ``metrics_std`` the sample standard deviation (ddof 1), ``per_seed`` each
run. A saturation-curve JSON (``kind: saturation``, from ``scripts/bench/gan_saturation.py``) gets its
own table. ``render_gan_results(paths)`` returns the markdown; it never computes a number itself.

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
    | dcgan | dcgan | hinge | 100.0 ± 2.0 | 8.50 | 40.0 | – | 60 s (30 epochs) |
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

PER_SEED_KEYS = (
    "seed", "config_hash", "git_commit", "epochs", "train_seconds", "eval_seconds", "wall_seconds", "metrics", "warnings",
    "command",
)  # fmt: skip


def aggregate_seeds(bodies: list[dict]) -> dict:
    """One record of a config run at several seeds: mean and sample std (ddof 1) of every metric.

    ``bodies`` are the runs' ``metrics.json`` bodies (plus the recorder's fields), one per seed, of
    the same config but its seed. Each metric present in every run as a number gets
    ``metrics[key]`` = mean, ``metrics_std[key]`` = std and ``metrics_values[key]`` = the per-seed
    values in seed order; ``train_seconds`` is the mean per seed. The real-data ``reference`` does
    not depend on the seed; the first run's is kept.

    >>> runs = [{"seed": s, "train_seconds": t, "metrics": {"modes_covered": m}} for s, t, m in [(0, 10, 8), (1, 20, 7), (2, 30, 8)]]
    >>> record = aggregate_seeds(runs)
    >>> record["seeds"], record["metrics"], round(record["metrics_std"]["modes_covered"], 4), record["train_seconds"]
    ([0, 1, 2], {'modes_covered': 7.666666666666667}, 0.5774, 20.0)
    """
    if len(bodies) < 2:
        raise ValueError(f"aggregate_seeds needs runs at two or more seeds, got {len(bodies)}")
    bodies = sorted(bodies, key=lambda b: b["seed"])
    seeds = [b["seed"] for b in bodies]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"aggregate_seeds: a seed appears twice in {seeds}")
    keys = [k for k, v in bodies[0]["metrics"].items() if isinstance(v, (int, float))]
    keys = [k for k in keys if all(isinstance(b["metrics"].get(k), (int, float)) for b in bodies)]
    values = {k: [float(b["metrics"][k]) for b in bodies] for k in keys}
    record = {k: v for k, v in bodies[0].items() if k not in (*PER_SEED_KEYS, "last_epoch", "this_call_train_seconds")}
    epochs = {b.get("epochs") for b in bodies}
    if len(epochs) != 1:
        raise ValueError(f"aggregate_seeds: the runs trained for different epochs {sorted(epochs, key=str)}")
    record.update(
        seeds=seeds,
        epochs=epochs.pop(),
        metrics={k: statistics.fmean(v) for k, v in values.items()},
        metrics_std={k: statistics.stdev(v) for k, v in values.items()},
        metrics_values=values,
        train_seconds=statistics.fmean(float(b["train_seconds"]) for b in bodies),
        per_seed=[{k: b[k] for k in PER_SEED_KEYS if k in b} for b in bodies],
    )
    return record


def _ll(m: dict, std: dict | None = None) -> str:
    """Parzen LL: mean ± s.e. over test points (one run), or mean ± std over seeds (``std`` given)."""
    if "parzen_ll" not in m:
        return "–"
    if std is not None:
        return f"{m['parzen_ll']:.1f} ± {std['parzen_ll']:.1f}"
    return f"{m['parzen_ll']:.1f} ± {m['parzen_se']:.1f}"


def _num(m: dict, key: str, fmt: str, std: dict | None = None) -> str:
    if key not in m or m[key] is None:
        return "–"
    if std is not None and key in std:
        return f"{format(m[key], fmt)} ± {format(std[key], fmt)}"
    return format(m[key], fmt)


def _name(run: dict) -> str:
    name = run.get("name", run["variant"])
    return f"{name} (seeds {', '.join(map(str, run['seeds']))})" if "seeds" in run else name


def _time(run: dict) -> str:
    per = " per seed" if "seeds" in run else ""
    return f"{run['train_seconds']:.0f} s{per} ({run['epochs']} epochs)"


def _modes(run: dict, modes: int) -> str:
    m = run["metrics"]
    if "metrics_std" not in run:
        return f"{m['modes_covered']} / {modes}"
    values = ", ".join(f"{v:g}" for v in run["metrics_values"]["modes_covered"])
    return f"{m['modes_covered']:.1f} ± {run['metrics_std']['modes_covered']:.1f} / {modes} ({values})"


SEEDS_NOTE = (
    "A row measured at several seeds shows the mean ± sample std (ddof 1) over its seeds (per-seed "
    "mode counts in brackets, every per-seed value in its JSON); a one-seed row's Parzen ± is the "
    "standard error over test points."
)


def _digits_table(runs: list[dict]) -> list[str]:
    lines = [
        "| run | variant | loss | Parzen LL (nats) mean ± s.e. | classifier score | Fréchet distance | "
        "class accuracy | time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    reference = runs[0]["reference"]
    lines.append(
        f"| held-out real digits | – | – | {_ll(reference)} | {_num(reference, 'classifier_score', '.2f')} | "
        f"{_num(reference, 'frechet_distance', '.1f')} | {_num(reference, 'class_accuracy', '.3f')} | – |"
    )
    for run in runs:
        m, std = run["metrics"], run.get("metrics_std")
        lines.append(
            f"| {_name(run)} | {run['variant']} | {run['adversarial']} | {_ll(m, std)} | "
            f"{_num(m, 'classifier_score', '.2f', std)} | {_num(m, 'frechet_distance', '.1f', std)} | "
            f"{_num(m, 'class_accuracy', '.3f', std)} | {_time(run)} |"
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
        m, std = run["metrics"], run.get("metrics_std")
        lines.append(
            f"| {_name(run)} | {run['variant']} | {run['adversarial']} | {_modes(run, modes)} | "
            f"{_num(m, 'high_quality', '.3f', std)} | {_ll(m, std)} | {_time(run)} |"
        )
    return lines


def _paired_table(runs: list[dict]) -> list[str]:
    """PH2 image-to-image runs (pix2pix, srgan) on the test split; srgan's bicubic reference first."""
    lines = ["| run | variant | loss | L1 | PSNR (dB) | SSIM | time |", "|---|---|---|---|---|---|---|"]
    bicubic = next((r["reference"] for r in runs if r["variant"] == "srgan" and r.get("reference")), None)
    if bicubic:
        lines.append(f"| bicubic upsampling (srgan's sources) | – | – | {bicubic['l1']:.4f} | {bicubic['psnr']:.2f} | "
                     f"{bicubic['ssim']:.4f} | – |")  # fmt: skip
    for run in runs:
        m, std = run["metrics"], run.get("metrics_std")
        lines.append(
            f"| {_name(run)} | {run['variant']} | {run['adversarial']} | {_num(m, 'l1', '.4f', std)} | "
            f"{_num(m, 'psnr', '.2f', std)} | {_num(m, 'ssim', '.4f', std)} | {_time(run)} |"
        )
    return lines


def _sites_table(runs: list[dict]) -> list[str]:
    """cyclegan runs: the round-trip error of each site's held-out slices."""
    lines = ["| run | held-out cases (A / B) | cycle L1 A | cycle PSNR A (dB) | cycle L1 B | cycle PSNR B (dB) | time |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for run in runs:
        m, held = run["metrics"], run.get("held_out", {})
        cases = f"{len(held.get('a', []))} / {len(held.get('b', []))}" if held else "–"
        lines.append(f"| {_name(run)} | {cases} | {_num(m, 'cycle_l1_a', '.4f')} | {_num(m, 'cycle_psnr_a', '.2f')} | "
                     f"{_num(m, 'cycle_l1_b', '.4f')} | {_num(m, 'cycle_psnr_b', '.2f')} | {_time(run)} |")  # fmt: skip
    return lines


def _text_table(runs: list[dict]) -> list[str]:
    """stackgan runs (test sentences) beside real held-out images."""
    lines = ["| run | stage | agreement | Fréchet distance (classifier features) | spread ratio | time |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    reference = runs[0]["reference"]
    lines.append(f"| real held-out images | – | {_num(reference, 'agreement', '.3f')} | "
                 f"{_num(reference, 'frechet_distance', '.1f')} | {_num(reference, 'spread_ratio', '.3f')} | – |")  # fmt: skip
    for run in runs:
        m, std = run["metrics"], run.get("metrics_std")
        lines.append(f"| {_name(run)} | {run.get('stage', '–')} | {_num(m, 'agreement', '.3f', std)} | "
                     f"{_num(m, 'frechet_distance', '.1f', std)} | {_num(m, 'spread_ratio', '.3f', std)} | {_time(run)} |")  # fmt: skip
    return lines


def _transfer_table(result: dict) -> list[str]:
    """scripts/cyclegan_transfer.py: a site-A segmentor on site B as it is, translated, and trained on B."""
    regions = list(next(iter(result["rows"].values()))["dsc_mean"])
    lines = [
        f"Site-B cases {', '.join(result['cases'])}, each translated by the cyclegan run that held it out and "
        "segmented by the fold model that had it in validation; DSC on cyclegan's grid, mean ± sample std over cases.",
        "",
        "| segmentor / images | " + " | ".join(f"{r} DSC" for r in regions) + " |",
        "|---|" + "---|" * len(regions),
    ]
    for key, row in result["rows"].items():
        cells = " | ".join(f"{row['dsc_mean'][r]:.3f} ± {row['dsc_std'][r]:.3f}" for r in regions)
        lines.append(f"| {key} | {cells} |")
    comparison = result["translated_vs_as_is"]
    lines.append("| translated - as is (Wilcoxon p) | " + " | ".join(
        f"{comparison[r]['difference']:+.3f} (p {comparison[r]['wilcoxon_p']:.2g})" for r in regions) + " |")  # fmt: skip
    if "gap_closed" in comparison[regions[0]]:
        lines.append("| share of the cross-site gap closed | " + " | ".join(
            f"{comparison[r]['gap_closed']:.2f} of {comparison[r]['gap']:.3f}" if comparison[r]["gap_closed"] is not None
            else f"no gap (on target {comparison[r]['gap']:+.3f})" for r in regions) + " |")  # fmt: skip
    return lines


def _sr_segmentation_table(result: dict) -> list[str]:
    """scripts/sr_segmentation.py: a zone segmentor on held-out volumes at full resolution, bicubic and super-resolved."""
    regions = list(next(iter(result["rows"].values()))["dsc_mean"])
    lines = [
        f"Segmentor `{result['segmentor']}` (each case by the fold model that had it in validation) on the "
        f"{len(result['cases'])} held-out volumes of the srgan runs, rebuilt from their x{result['scale']} downsampled "
        "slices; DSC on the runs' grid, mean ± sample std over cases; each run against bicubic: mean difference "
        "(paired Wilcoxon p).",
        "",
        "| images | " + " | ".join(f"{r} DSC" for r in regions) + " | " + " | ".join(f"{r} vs bicubic" for r in regions) + " |",
        "|---|" + "---|" * (2 * len(regions)),
    ]  # fmt: skip
    for key, row in result["rows"].items():
        cells = " | ".join(f"{row['dsc_mean'][r]:.3f} ± {row['dsc_std'][r]:.3f}" for r in regions)
        against = result["vs_bicubic"].get(key)
        versus = " | ".join(
            f"{against[r]['difference']:+.3f} (p {against[r]['wilcoxon_p']:.2g})" if against else "–" for r in regions
        )
        lines.append(f"| {key} | {cells} | {versus} |")
    return lines


def _fcn_table(result: dict) -> list[str]:
    lines = [
        f"Segmentor `{result['segmentor']}` (each case by the fold model that did not train on it), splits "
        f"{', '.join(result['splits'])}; DSC against the expert masks, mean ± sample std over cases; Fréchet "
        "distance to the real images in the segmentor's bottleneck features (ranks rows, not absolute).",
        "",
        "| images | cases | DSC | Fréchet distance to real |",
        "|---|---|---|---|",
    ]
    for name, row in result["rows"].items():
        lines.append(f"| {name} | {row['cases']} | {row['dsc_mean']:.3f} ± {row['dsc_std']:.3f} | "
                     f"{row['frechet_distance']:.2f} |")  # fmt: skip
    return lines


def _truncation_table(result: dict) -> list[str]:
    """BigGAN's truncation trick: fidelity (class accuracy, classifier score) against diversity (spread
    ratio) and the Frechet distance as the threshold on |z| moves (none: no truncation)."""
    lines = [
        f"Run `{result['run']}` (seed {result.get('seed', '–')}, config hash {result['config_hash']}), "
        f"{result['samples']} samples per threshold, equal per class, against the test split.",
        "",
        "| threshold on abs(z) | class accuracy | classifier score | Fréchet distance | spread ratio |",
        "|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        label = "none" if row["threshold"] is None else f"{row['threshold']:g}"
        lines.append(f"| {label} | {row['class_accuracy']:.3f} | {row['classifier_score']:.2f} | "
                     f"{row['frechet_distance']:.1f} | {row['spread_ratio']:.3f} |")  # fmt: skip
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
        if "per_seed" in run:  # one gan-train run per seed; the record's command ran them all
            commits = sorted({str(r.get("git_commit", ""))[:12] for r in run["per_seed"]})
            hashes = ", ".join(f"{r['config_hash']} (seed {r['seed']})" for r in run["per_seed"])
            lines.append(f"| {run['name']} | `{run['command']}` | {', '.join(commits)} | {hashes} |")
            continue
        lines.append(
            f"| {run.get('name', run.get('variant', run.get('kind')))} | `{run['command']}` | "
            f"{str(run.get('git_commit', ''))[:12]} | {run.get('config_hash', '–')} |"
        )
    return lines


def render_gan_results(json_paths) -> str:
    """Markdown: a digits table and a ring table (each with the held-out real data as the first
    row), a PH2 image-to-image table (pix2pix, srgan; srgan's bicubic reference first), cyclegan's and
    srgan's prostate tables with their segmentation scores, the FCN-score
    tables, BigGAN's truncation curves, the saturating vs non-saturating table when present, and how each number was made."""
    results = [json.loads(Path(p).read_text()) for p in sorted(map(Path, json_paths))]
    runs = [r for r in results if r.get("kind", "run") == "run"]
    digits = [r for r in runs if r["dataset"] == "digits"]
    ring = [r for r in runs if r["dataset"] == "ring"]
    paired = [r for r in runs if r["dataset"] == "ph2"]
    sites = [r for r in runs if r["dataset"] == "sites" and r["variant"] == "cyclegan"]
    sr_sites = [r for r in runs if r["dataset"] == "sites" and r["variant"] == "srgan"]
    text = [r for r in runs if r["dataset"] == "ph2_text"]
    out: list[str] = []
    if any("seeds" in r for r in runs):
        out += [SEEDS_NOTE, ""]
    if digits:
        out += ["### Digits (16x16, test split)", "", *_digits_table(digits), ""]
    if ring:
        out += ["### Ring of 8 Gaussians", "", *_ring_table(ring), ""]
    if paired:
        out += ["### PH2 image-to-image (test split)", "", *_paired_table(paired), ""]
    if sites:
        out += ["### CycleGAN between the two prostate sites (held-out slices)", "", *_sites_table(sites), ""]
    for result in results:
        if result.get("kind") == "cyclegan_transfer":
            out += [f"### Cross-site segmentation: {result['name']}", "", *_transfer_table(result), ""]
    if sr_sites:
        out += ["### Prostate T2 super-resolution x4 (held-out slices)", "", *_paired_table(sr_sites), ""]
    for result in results:
        if result.get("kind") == "sr_segmentation":
            out += [f"### Segmenting super-resolved prostate volumes: {result['name']}", "",
                    *_sr_segmentation_table(result), ""]  # fmt: skip
    if text:
        out += ["### PH2 lesions from sentences (test sentences)", "", *_text_table(text), ""]
    for result in results:
        if result.get("kind") == "fcn_score":
            out += [f"### FCN score: {result['name']}", "", *_fcn_table(result), ""]
    for result in results:
        if result.get("kind") == "truncation":
            out += [f"### Truncation curve: {result['name']}", "", *_truncation_table(result), ""]
    for result in results:
        if result.get("kind") == "saturation":
            out += ["### Saturating vs non-saturating generator loss", "", *_saturation_table(result), ""]
    if results:
        out += ["### How each row was measured", "", *_provenance(results), ""]
    return "\n".join(out)
