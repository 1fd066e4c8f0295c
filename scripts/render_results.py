"""Render docs/results.md from the committed result records under docs/results/.

    python scripts/render_results.py [--check]

--check exits 1 (and changes nothing) when docs/results.md differs from a fresh rendering;
tests/test_results_doc.py runs it so the page can never drift from its records.
"""

import argparse
import json
import sys
from pathlib import Path

from adversarial_seg.gan.report import render_gan_results
from adversarial_seg.seg.results_doc import render_seg_results
from adversarial_seg.seg.shift_report import render_shift_record

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"
PAGE = REPO / "docs" / "results.md"

HEADER = """# Results (measured)

This page is rendered by `python scripts/render_results.py` from the records under
`docs/results/` (segmentation: `docs/results/seg/*.json`, written by
`scripts/collect_seg_results.py` from a finished run; scheme comparisons:
`docs/results/eval/*.json`, written by `scripts/collect_seg_results.py` from a seg-eval report;
simulated scanner shifts: `docs/results/shift/*.json`, written by `scripts/prostate_shift.py record`;
GAN variants: `docs/results/gan/*.json`, written by `scripts/bench/gan_results.py`). Do not edit it by hand: a test re-renders it and
fails on any difference.
"""


def render() -> str:
    parts = [HEADER]
    seg = sorted((RESULTS / "seg").glob("*.json"))
    parts.append("## Segmentation: k-fold cross-validation\n")
    parts.append(render_seg_results(seg) if seg else "No segmentation study recorded yet.\n")
    comparisons = sorted((RESULTS / "eval").glob("*.json"))
    parts.append("## Segmentation: schemes compared case by case (seg-eval)\n")
    parts.append(render_seg_results(comparisons) if comparisons else "No comparison recorded yet.\n")
    shifts = sorted((RESULTS / "shift").glob("*.json"))
    parts.append("## Prostate zones under simulated scanner shifts\n")
    shift_lines = [line for path in shifts for line in render_shift_record(json.loads(path.read_text()))]
    parts.append("\n".join(shift_lines) if shifts else "No shift study recorded yet.\n")
    gan = sorted((RESULTS / "gan").glob("*.json"))
    parts.append("## GAN variants\n")
    parts.append(render_gan_results(gan) if gan else "No GAN run recorded yet.\n")
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not PAGE.is_file() or PAGE.read_text() != text:
            print("docs/results.md is out of date; run: python scripts/render_results.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
