"""gan-train's bad inputs (issue 12): each case is one command line, its exit code and its sentence.

Every case asserts the exit code, exactly the expected ``error:`` line (one sentence, no traceback)
and that nothing already in the run directory changed; with exit 2 nothing at all was written.
Training itself is replaced where a case needs it to fail or be interrupted, so the table is fast.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from adversarial_seg.checkpoint import save_checkpoint
from adversarial_seg.cli.gan_train import main as gan_train

from .conftest import assert_kept, check_messages, make_read_only, snapshot, truncate, write_tampered_checkpoint

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "gan" / "vanilla.yaml"


@dataclass
class Workspace:
    root: Path
    run: Path  # --output
    marker: Path  # created if a payload (tampered checkpoint, YAML tag) ran


@dataclass
class Case:
    id: str
    args: list[str]  # {run}, {root}, {marker} are filled in; --config and --output default to ours
    code: int
    errors: list[str]  # a fragment of each expected `error:` line
    setup: Callable[[Workspace], None] | None = None
    patch: Callable[[pytest.MonkeyPatch], None] | None = None


# ----------------------------------------------------------------------------- setups
def a_run(ws: Workspace) -> None:
    """A run directory as gan-train leaves it, as far as the checks look: a checkpoint with the trainer's keys."""
    ws.run.mkdir()
    save_checkpoint({"modules": {}, "step": {}, "epoch": 1, "history": [], "rng": {}}, ws.run / "checkpoint_last.pt")


def tampered_checkpoint(ws: Workspace) -> None:
    ws.run.mkdir()
    write_tampered_checkpoint(ws.run / "checkpoint_last.pt", ws.marker)


def truncated_checkpoint(ws: Workspace) -> None:
    a_run(ws)
    truncate(ws.run / "checkpoint_last.pt")


def foreign_checkpoint(ws: Workspace) -> None:
    ws.run.mkdir()
    torch.save({"weights": torch.zeros(3)}, ws.run / "checkpoint_last.pt")


def corrupt_run_config(ws: Workspace) -> None:
    a_run(ws)
    (ws.run / "config.yaml").write_text("variant: [vanilla\n")


def notes_file(ws: Workspace) -> None:
    (ws.root / "notes.txt").write_text("notes")


def binary_config(ws: Workspace) -> None:
    (ws.root / "config.yaml").write_bytes(b"\xff\xfe\x00\x81 not text")


def read_only_parent(ws: Workspace) -> None:
    (ws.root / "locked").mkdir()
    make_read_only(ws.root / "locked")


def training_raises(exc: BaseException) -> Callable[[pytest.MonkeyPatch], None]:
    def patch(monkeypatch: pytest.MonkeyPatch) -> None:
        def train_gan(*args, **kwargs):
            raise exc

        monkeypatch.setattr("adversarial_seg.gan.experiment.train_gan", train_gan)

    return patch


def no_gpu_or_skip(ws: Workspace) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: --device cuda is valid here")


# ----------------------------------------------------------------------------- the table
TAG = "train.epochs=!!python/object/apply:os.system ['touch {marker}']"
# fmt: off
CASES = [
    Case("unknown_key", ["--set", "train.epoch=3"], 2, ["unknown key 'train.epoch'; did you mean 'train.epochs'?"]),
    Case("yaml_tag_in_set", ["--set", TAG], 2, ["the value is not plain YAML"]),
    Case("not_key_value", ["--set", "train.epochs"], 2, ["expected key=value"]),
    Case("bad_device", ["--device", "tpu"], 2, ["invalid choice: 'tpu'"]),
    Case("cuda_without_gpu", ["--device", "cuda"], 2, ["no CUDA GPU is visible"], setup=no_gpu_or_skip),
    Case("missing_config", ["--config", "{root}/missing.yaml"], 2, ["missing.yaml does not exist"]),
    Case("binary_config", ["--config", "{root}/config.yaml"], 2, ["config.yaml is not"], setup=binary_config),
    Case("resume_without_checkpoint", ["--resume"], 2, ["has no checkpoint_last.pt to continue"]),
    Case("existing_run_without_resume", [], 2, ["already holds a run; pass --resume"], setup=a_run),
    Case("tampered_checkpoint", ["--resume"], 2, ["checkpoint_last.pt holds objects other than weights"],
         setup=tampered_checkpoint),
    Case("truncated_checkpoint", ["--resume"], 2, ["checkpoint_last.pt cannot be read"], setup=truncated_checkpoint),
    Case("foreign_checkpoint", ["--resume"], 2, ["lacks modules, step, epoch, history, rng"],
         setup=foreign_checkpoint),
    Case("corrupt_run_config", ["--resume"], 2, ["run/config.yaml cannot be read as YAML"], setup=corrupt_run_config),
    Case("output_is_file", ["--output", "{root}/notes.txt"], 2, ["notes.txt is a file; pass a folder"],
         setup=notes_file),
    Case("output_under_file", ["--output", "{root}/notes.txt/run"], 2, ["notes.txt is a file, not a folder"],
         setup=notes_file),
    Case("output_read_only", ["--output", "{root}/locked/run"], 2, ["is not writable (permission denied)"],
         setup=read_only_parent),
    Case("ctrl_c", [], 1, ["run keeps the last finished epoch, continue with --resume"],
         patch=training_raises(KeyboardInterrupt())),
    Case("disk_full", [], 1, ["cannot write run/log.csv: the disk is full"],
         patch=training_raises(OSError(errno.ENOSPC, "No space left on device", "run/log.csv"))),
    Case("training_fails", [], 1, ["failed: FloatingPointError: loss_g became NaN in epoch 3"],
         patch=training_raises(FloatingPointError("loss_g became NaN in epoch 3\n  a second line"))),
]
# fmt: on


def command_line(case: Case, ws: Workspace) -> list[str]:
    args = list(case.args)
    for option, default in (("--config", str(CONFIG)), ("--output", "{run}")):
        if option not in args:
            args = [option, default, *args]
    if "--device" not in args:
        args += ["--device", "cpu"]
    return [a.format(run=ws.run, root=ws.root, marker=ws.marker) for a in args] + ["--quiet"]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, capsys, monkeypatch):
    ws = Workspace(tmp_path, tmp_path / "run", tmp_path / "payload_ran")
    if case.setup:
        case.setup(ws)
    if case.patch:
        case.patch(monkeypatch)
    before = snapshot(tmp_path)
    try:
        code = gan_train(command_line(case, ws))
    finally:
        if (tmp_path / "locked").exists():
            (tmp_path / "locked").chmod(0o755)
    captured = capsys.readouterr()
    assert code == case.code, captured.err
    check_messages(captured.err, captured.out, case.errors)
    assert " failed: " not in captured.err or case.id == "training_fails"  # an input error is not a failed training
    assert not ws.marker.exists(), "a payload ran"
    assert_kept(before, snapshot(tmp_path))


def test_the_table_is_large_enough():
    assert len({c.id for c in CASES}) == len(CASES) >= 6
