"""Run gan-train on the shipped GAN configs and record the measured results for the docs.

    python scripts/bench/gan_results.py [NAME ...]                  # default: every configs/gan/*.yaml
    python scripts/bench/gan_results.py NAME [NAME ...] --seeds 0 1 2  # each NAME at several seeds
    python scripts/bench/gan_results.py --render-only               # tables only, from docs/results/gan/*.json
    python scripts/bench/gan_results.py --record NAME=RUN_DIR       # a finished gan-train run, as it ran
    python scripts/bench/gan_results.py --fcn NAME=DIR --command "python scripts/fcn_score.py ..."
    python scripts/bench/gan_results.py --result NAME=FILE --command "python scripts/bench/truncation_curve.py ..."

For each NAME it runs ``gan-train --config configs/gan/NAME.yaml --output runs/gan_results/NAME
--device cpu --quiet`` in a fresh run directory with one CPU thread (OMP_NUM_THREADS=1), times the
whole command, and writes docs/results/gan/NAME.json: the command, git commit, config hash, wall
time and the run's metrics.json (test-split metrics beside held-out real data). With ``--seeds``
(two or more) it runs ``gan-train ... --output runs/gan_results/NAME_seedS --set seed=S`` for each
seed S, one after the other, and NAME.json holds the mean and sample std of every metric over the
seeds with each seed's run beside them (``adversarial_seg.gan.report.aggregate_seeds``). Then it
re-renders the tables in docs/gan.md between the result markers (docs/results.md is rendered from
the same JSON files by ``python scripts/render_results.py``). No number is typed by hand.
"""

from __future__ import annotations

import argparse
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


def run_gan_train(name: str, seed: int | None = None) -> dict:
    """One gan-train run of configs/gan/NAME.yaml in a fresh run directory (at ``seed``, when given);
    its metrics.json body plus the command, wall time and machine."""
    config = Path("configs") / "gan" / f"{name}.yaml"
    output = Path("runs") / "gan_results" / (name if seed is None else f"{name}_seed{seed}")
    shutil.rmtree(REPO / output, ignore_errors=True)
    command = ["gan-train", "--config", str(config), "--output", str(output), "--device", "cpu", "--quiet"]
    if seed is not None:
        command += ["--set", f"seed={seed}"]
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
    label = name if seed is None else f"{name} seed {seed}"
    print(f"{label}: {wall:.0f} s  {json.dumps(body['metrics'])}  warnings: {body['warnings']}", flush=True)
    return body


def run_one(name: str, seeds: list[int] | None = None) -> dict:
    """Measure NAME (at each of ``seeds``, two or more, when given) and write docs/results/gan/NAME.json."""
    if not seeds:
        body = run_gan_train(name)
    else:
        from adversarial_seg.gan.report import aggregate_seeds

        runs = [run_gan_train(name, seed) for seed in seeds]
        body = aggregate_seeds(runs)
        body.update(
            command=f"python scripts/bench/gan_results.py {name} --seeds {' '.join(map(str, seeds))}",
            wall_seconds=round(sum(r["wall_seconds"] for r in runs), 1),
        )
        summary = {k: f"{body['metrics'][k]:.4g} ± {body['metrics_std'][k]:.2g}" for k in body["metrics"]}
        print(f"{name} over seeds {seeds}: {json.dumps(summary)}", flush=True)
    write_record(name, body)
    return body


def record_run(name: str, run_dir: Path) -> dict:
    """A finished gan-train run (e.g. one whose config needs a path set on the command line, as
    srgan's content network) recorded as it ran: its metrics.json with its own command."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: {run_dir} is not a finished gan-train run")
    body = json.loads(path.read_text())
    body.update(kind="run", name=name, wall_seconds=round(body["train_seconds"] + body.get("eval_seconds", 0.0), 1),
                machine=f"{platform.machine()}, {os.cpu_count()} logical CPUs")  # fmt: skip
    return body


def record_fcn(name: str, folder: Path, command: str) -> dict:
    """scripts/fcn_score.py's fcn_score.json in ``folder``, with the command that wrote it."""
    path = Path(folder) / "fcn_score.json"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run scripts/fcn_score.py with --output {folder} first")
    return record_result(name, path, command, kind="fcn_score")


def record_result(name: str, path: Path, command: str, kind: str | None = None) -> dict:
    """A result JSON a script wrote (its ``kind`` says which table renders it), with the command that wrote it."""
    if not Path(path).is_file():
        raise SystemExit(f"{path} is missing: run the command that writes it first ({command})")
    from adversarial_seg.provenance import git_commit

    body = json.loads(Path(path).read_text())
    kind = kind or body.get("kind")
    if kind is None:
        raise SystemExit(f"{path} has no 'kind'; it is not a result JSON of scripts/bench/truncation_curve.py")
    measured_at = body.get("machine", {}).get("commit")  # the bench's own record of the code it ran
    return {**body, "kind": kind, "name": name, "command": command, "git_commit": measured_at or git_commit()}


def write_record(name: str, body: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(body, indent=2) + "\n")


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


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="config names under configs/gan/ (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="run each config at these seeds (2 or more)")
    parser.add_argument("--render-only", action="store_true", help="re-render docs/gan.md from the stored JSON files")
    parser.add_argument(
        "--record",
        action="append",
        default=[],
        metavar="NAME=RUN_DIR",
        help="record a finished gan-train run as NAME (repeatable)",
    )
    parser.add_argument(
        "--fcn",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="record scripts/fcn_score.py's result in DIR as NAME (repeatable; with --command)",
    )
    parser.add_argument(
        "--result",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="record a result JSON a script wrote (truncation_curve.py --output) as NAME (with --command)",
    )
    parser.add_argument("--command", help="the command that wrote --fcn's DIR or --result's FILE")
    args = parser.parse_args(argv)
    if (args.fcn or args.result) and not args.command:
        parser.error("--fcn and --result need --command: the command that wrote the folder or file")
    for item in args.record + args.fcn + args.result:
        if "=" not in item:
            parser.error(f"--record / --fcn take NAME=DIR, got {item!r}")
    if args.seeds is not None and (len(args.seeds) < 2 or len(set(args.seeds)) != len(args.seeds)):
        parser.error(f"--seeds needs two or more different seeds, got {args.seeds}")
    if args.render_only and (args.names or args.seeds):
        parser.error("--render-only runs nothing; drop the names and --seeds")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.render_only:
        render_docs()
        return 0
    if args.record or args.fcn or args.result:
        for item in args.record:
            name, folder = item.split("=", 1)
            write_record(name, record_run(name, Path(folder)))
        for item in args.fcn:
            name, folder = item.split("=", 1)
            write_record(name, record_fcn(name, Path(folder), args.command))
        for item in args.result:
            name, path = item.split("=", 1)
            write_record(name, record_result(name, Path(path), args.command))
        render_docs()
        return 0
    names = args.names or sorted(p.stem for p in (REPO / "configs" / "gan").glob("*.yaml"))
    missing = [n for n in names if not (REPO / "configs" / "gan" / f"{n}.yaml").is_file()]
    if missing:
        raise SystemExit(f"no configs/gan/{missing[0]}.yaml; choose from configs/gan/*.yaml")
    for name in names:
        run_one(name, args.seeds)
    render_docs()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
