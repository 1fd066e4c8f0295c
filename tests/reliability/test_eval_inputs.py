"""seg-eval's bad inputs (issue 12): each case is one command line, its exit code and its sentences.

Every case asserts the exit code, exactly the expected ``error:`` lines (one sentence each, no
traceback) and that nothing already in the run folders changed; with exit 2 nothing at all was
written, with exit 1 the report of what could be evaluated was written into RUN/report.
"""

from __future__ import annotations

import errno
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from adversarial_seg.cli.seg_eval import main as evaluate

from .conftest import assert_kept, check_messages, copy_run, snapshot, truncate


@dataclass
class Workspace:
    root: Path
    run: Path


@dataclass
class Case:
    id: str
    args: list[str]  # {run} and {root} are filled in
    code: int
    errors: list[str]  # a fragment of each expected `error:` line, in order
    setup: Callable[[Workspace], None] | None = None
    patch: Callable[[pytest.MonkeyPatch], None] | None = None
    model: str = "prostate"


# ----------------------------------------------------------------------------- setups
def run_file(relative: str, text: str) -> Callable[[Workspace], None]:
    def setup(ws: Workspace) -> None:
        (ws.run / relative).write_text(text)

    return setup


def empty_folder(ws: Workspace) -> None:
    (ws.root / "empty").mkdir()


def folder_of_runs_one_corrupt(ws: Workspace) -> None:
    shutil.copytree(ws.run, ws.root / "study" / "ce")
    shutil.copytree(ws.run, ws.root / "study" / "hybrid")
    (ws.root / "study" / "hybrid" / "config.yaml").write_text("scheme: [hybrid\n")


def missing_splits(ws: Workspace) -> None:
    (ws.run / "splits.json").unlink()


def dataset_moved(ws: Workspace) -> None:
    config = yaml.safe_load((ws.run / "config.yaml").read_text())
    config["data"]["root"] = str(ws.root / "moved_away")
    (ws.run / "config.yaml").write_text(yaml.safe_dump(config))


def other_splits(ws: Workspace) -> None:
    other = shutil.copytree(ws.run, ws.root / "other")
    splits = json.loads((other / "splits.json").read_text())
    splits[0]["val"], splits[1]["val"] = splits[1]["val"], splits[0]["val"]
    (other / "splits.json").write_text(json.dumps(splits))


def first_prediction(ws: Workspace) -> Path:
    case = json.loads((ws.run / "splits.json").read_text())[0]["val"][0]
    return next(
        p for p in (ws.run / "fold_0" / "predictions").iterdir() if p.name.startswith(f"{case}.") and p.suffix != ".npz"
    )


def truncated_prediction(ws: Workspace) -> None:
    truncate(first_prediction(ws))


def empty_prediction(ws: Workspace) -> None:
    first_prediction(ws).write_bytes(b"")


def notes_file(ws: Workspace) -> None:
    (ws.root / "notes.txt").write_text("notes")


def disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("adversarial_seg.atomic_files.atomic_write_bytes", full)
    monkeypatch.setattr("adversarial_seg.seg.summary.atomic_write_bytes", full)


def ctrl_c(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("adversarial_seg.seg.evaluate.score_prediction", interrupt)


# ----------------------------------------------------------------------------- the table
FAST = ["--format", "json,csv"]  # no figures: the report's content is seg-eval's own tests' business
# fmt: off
CASES = [
    Case("not_a_run", ["{root}/empty"], 2, ["is not a run directory (no config.yaml)"], setup=empty_folder),
    Case("corrupt_config_yaml", ["{run}"], 2, ["run/config.yaml cannot be read as YAML"],
         setup=run_file("config.yaml", "data: [unclosed\n")),
    Case("config_yaml_not_a_mapping", ["{run}"], 2, ["run/config.yaml does not hold a run's config"],
         setup=run_file("config.yaml", "just text\n")),
    Case("corrupt_config_in_a_folder_of_runs", ["{root}/study"], 2, ["hybrid/config.yaml cannot be read as YAML"],
         setup=folder_of_runs_one_corrupt),
    Case("missing_splits", ["{run}"], 2, ["has no splits.json"], setup=missing_splits),
    Case("corrupt_splits", ["{run}"], 2, ["splits.json cannot be read as JSON"],
         setup=run_file("splits.json", '[{"fold": 0, "train": [')),
    Case("splits_wrong_content", ["{run}"], 2, ["splits.json: fold entry 0 must be"],
         setup=run_file("splits.json", '[{"train": [], "val": [1]}]')),
    Case("corrupt_data_plan", ["{run}"], 2, ["data_plan.json cannot be read as JSON"],
         setup=run_file("data_plan.json", "\x00\x01")),
    Case("corrupt_fold_done", ["{run}"], 2, ["fold_0/fold_done.json does not hold a JSON object"],
         setup=run_file("fold_0/fold_done.json", "[1, 2]")),
    Case("missing_dataset", ["{run}"], 2, ["moved_away is not there"], setup=dataset_moved),
    Case("runs_on_different_splits", ["{run}", "{root}/other", "--output", "{root}/cmp"], 2,
         ["used different splits"], setup=other_splits),
    Case("bad_format", ["{run}", "--format", "md,pdf"], 2, ["--format 'md,pdf': choose from md, html, json, csv"]),
    Case("bad_lesion_overlap", ["{run}", "--lesion-overlap", "1.5"], 2, ["give a fraction in (0, 1]"]),
    Case("lesion_overlap_nan", ["{run}", "--lesion-overlap", "nan"], 2, ["give a fraction in (0, 1]"]),
    Case("output_is_file", ["{run}", "--output", "{root}/notes.txt"], 2, ["notes.txt is a file; pass a folder"],
         setup=notes_file),
    Case("output_under_file", ["{run}", "--output", "{root}/notes.txt/report"], 2,
         ["notes.txt is a file, not a folder"], setup=notes_file),
    Case("truncated_prediction", ["{run}", *FAST], 1, [".nii.gz cannot be read ("], setup=truncated_prediction),
    Case("empty_png_prediction", ["{run}", *FAST], 1, [".png cannot be read ("], setup=empty_prediction, model="skin"),
    Case("report_disk_full", ["{run}", *FAST], 1, ["report/evaluation.json: the disk is full"], patch=disk_full),
    Case("ctrl_c", ["{run}"], 1, ["interrupted; the report files written so far are complete"], patch=ctrl_c),
]
# fmt: on


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, request, tmp_path, capsys, monkeypatch):
    tiny = request.getfixturevalue("skin_run" if case.model == "skin" else "prostate_run")
    ws = Workspace(tmp_path, copy_run(tiny, tmp_path / "run"))
    if case.setup:
        case.setup(ws)
    if case.patch:
        case.patch(monkeypatch)
    before = snapshot(tmp_path)
    code = evaluate([a.format(run=ws.run, root=tmp_path) for a in case.args])
    captured = capsys.readouterr()
    assert code == case.code, captured.err
    check_messages(captured.err, captured.out, case.errors)
    reported = case.code == 1 and case.patch is None  # the rest was evaluated and reported
    if reported:  # seg-eval's own files (seg-train already wrote them once) may be rewritten, nothing else
        own = ("run/report/report.", "run/report/figures/", "run/report/evaluation")
        before = {path: digest for path, digest in before.items() if not path.startswith(own)}
    assert_kept(before, snapshot(tmp_path), new_allowed_under=("run/report/",) if reported else ())
    if reported:
        body = json.loads((ws.run / "report" / "evaluation.json").read_text())["runs"]["run"]
        assert not body["complete"] and len(body["missing"]) == 1


def test_the_table_is_large_enough():
    assert len({c.id for c in CASES}) == len(CASES) >= 8
