"""DSC under simulated scanner shifts, paired with the unshifted originals (issue 13; made by
``scripts/prostate_shift.py``, rendered into docs/results.md by ``scripts/render_results.py``).

``rows`` are ``cases.csv`` rows (``seg.metrics.case_rows``) with a ``shift`` key; the unshifted
originals carry ``shift == "original"``. A case enters a shift's pairs for a region only when both
its DSCs are defined (DESIGN.md, "Statistics": an empty reference gives NaN, left out).
"""

from __future__ import annotations

import math
import statistics

ORIGINAL = "original"
GOAL = 0.05  # issue 13: DSC on the shifted copies within 0.05 of the unshifted volumes


def paired_summary(rows: list[dict], names: list[str], regions: list[str]) -> tuple[list[dict], list[dict]]:
    """Per shift and region: mean DSC of the shifted copies and of the originals over the cases where
    both are defined, the mean paired difference (shifted - original), its sample std and the worst
    case; plus per-case pairs. Reads ``rows`` (cases.csv rows with a ``shift`` key)."""
    dsc = {(r["shift"], r["case"], r["class"]): r["dsc"] for r in rows}
    table, pairs = [], []
    for name in names:
        for region in regions:
            paired = []
            for (shift, case, cls), value in sorted(dsc.items()):
                if shift != name or cls != region:
                    continue
                original = dsc.get((ORIGINAL, case, region), math.nan)
                if math.isfinite(value) and math.isfinite(original):
                    fold = next(r["fold"] for r in rows if r["case"] == case and r["shift"] == name)
                    paired.append({"case": case, "fold": fold, "shift": name, "region": region,
                                   "dsc_original": original, "dsc_shifted": value, "difference": value - original})  # fmt: skip
            pairs += paired
            differences = [p["difference"] for p in paired]
            n = len(paired)
            table.append({
                "shift": name, "region": region, "cases": n,
                "dsc_original": statistics.fmean(p["dsc_original"] for p in paired) if n else math.nan,
                "dsc_shifted": statistics.fmean(p["dsc_shifted"] for p in paired) if n else math.nan,
                "difference": statistics.fmean(differences) if n else math.nan,
                "difference_std": statistics.stdev(differences) if n > 1 else math.nan,
                "worst_difference": min(differences) if n else math.nan,
                "cases_dropping_over_goal": sum(d < -GOAL for d in differences),
                "within_goal": bool(n) and round(statistics.fmean(differences), 9) >= -GOAL,  # 0.05 itself: within
            })  # fmt: skip
    return table, pairs


def format_markdown(table: list[dict]) -> str:
    """The per shift and region table (Markdown), DSC to 3 decimals."""
    lines = [
        "| shift | region | cases | DSC original | DSC shifted | difference (± std) | worst case | cases < -0.05 "
        "| mean drop <= 0.05 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table:
        lines.append(
            f"| {row['shift']} | {row['region']} | {row['cases']} | {row['dsc_original']:.3f} | "
            f"{row['dsc_shifted']:.3f} | {row['difference']:+.3f} ± {row['difference_std']:.3f} | "
            f"{row['worst_difference']:+.3f} | {row['cases_dropping_over_goal']} | "
            f"{'yes' if row['within_goal'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def describe_steps(steps: list[dict]) -> str:
    """Words for a shift's steps, e.g. ``crop to 110 mm in-plane, then gain 4, offset 250``."""
    words = {
        "crop": lambda s: f"crop to {s['field_mm']:g} mm in-plane around the centre",
        "resample": lambda s: f"resample in-plane to {s['spacing_mm']:g} mm",
        "intensity": lambda s: f"gain {s.get('gain', 1.0):g}, offset {s.get('offset', 0.0):g}",
        "noise": lambda s: (
            f"{'Rician' if s.get('rician', True) else 'Gaussian'} noise, sigma "
            f"{100 * s['fraction']:g} % of the 99th percentile"
        ),
    }
    return ", then ".join(words[step["kind"]](step) for step in steps)


def render_shift_record(record: dict) -> list[str]:
    """Markdown lines for one record (``docs/results/shift/<name>.json``): command, commits, wall time,
    the table, and which shifts keep the goal."""
    broken = sorted({r["shift"] for r in record["table"] if not r["within_goal"]})
    lines = [f"### {record['title']}", ""]
    lines.append(
        f"Command: `{record['command']}` (shift code at commit `{record['git_commit'][:12]}`; the model trained "
        f"by `{str(record['trained_by'])[:12]}`); {record['cases']} validation cases of folds "
        f"{record['folds']}, each predicted by its own fold's model (TTA {'on' if record['tta'] else 'off'}, "
        f"device {record['device']}). Wall time {record['wall_seconds'] / 60:.1f} min on {record['machine']}."
    )
    lines += [
        "",
        "Shifts: " + "; ".join(f"`{name}` {describe_steps(steps)}" for name, steps in record["shifts"].items()),
    ]
    lines.append("")
    lines += format_markdown(record["table"]).splitlines()
    lines.append("")
    lines.append(
        "DSC stays within 0.05 of the originals (mean paired difference) under every shift."
        if not broken
        else f"DSC drops by more than 0.05 (mean paired difference, some region) under: {', '.join(broken)}."
    )
    if record.get("note"):
        lines += ["", record["note"]]
    lines.append("")
    return lines
