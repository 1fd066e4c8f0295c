"""Run gan-train on the shipped GAN configs and record the measured results for the docs.

    python scripts/bench/gan_results.py [NAME ...]     # default: every configs/gan/*.yaml
    python scripts/bench/gan_results.py --render-only  # tables only, from docs/results/gan/*.json

For each NAME it runs ``gan-train --config configs/gan/NAME.yaml --output runs/gan_results/NAME
--device cpu --quiet`` in a fresh run directory with one CPU thread (OMP_NUM_THREADS=1), times the
whole command, and writes docs/results/gan/NAME.json: the command, git commit, config hash, wall
time and the run's metrics.json (test-split metrics beside held-out real data). Then it re-renders
the tables in docs/gan.md between the result markers. No number is typed by hand.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "docs" / "results" / "gan"
DOC = REPO / "docs" / "gan.md"
START, END = "<!-- gan-results:start -->", "<!-- gan-results:end -->"


def run_one(name: str) -> dict:
    config = Path("configs") / "gan" / f"{name}.yaml"
    output = Path("runs") / "gan_results" / name
    shutil.rmtree(REPO / output, ignore_errors=True)
    command = ["gan-train", "--config", str(config), "--output", str(output), "--device", "cpu", "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    body = json.loads((REPO / output / "metrics.json").read_text())
    body.update(
        kind="run",
        name=name,
        command="OMP_NUM_THREADS=1 " + " ".join(command),
        wall_seconds=round(wall, 1),
        machine=f"{platform.machine()}, {os.cpu_count()} logical CPUs (shared), 1 thread",
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(body, indent=2) + "\n")
    print(f"{name}: {wall:.0f} s  {json.dumps(body['metrics'])}", flush=True)
    return body


def render_docs() -> None:
    from adversarial_seg.gan.report import render_gan_results

    if not DOC.is_file():
        return
    text = DOC.read_text()
    if START not in text or END not in text:
        return
    tables = render_gan_results(sorted(RESULTS.glob("*.json")))
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{tables}\n{END}{tail}")


def main(argv: list[str]) -> int:
    if argv == ["--render-only"]:  # re-render docs/gan.md from the stored JSON files
        render_docs()
        return 0
    names = argv or sorted(p.stem for p in (REPO / "configs" / "gan").glob("*.yaml"))
    for name in names:
        run_one(name)
    render_docs()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
