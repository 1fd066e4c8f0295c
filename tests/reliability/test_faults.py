"""Issue 12 ("Trust"): a run survives faults exactly.

A run killed (SIGKILL) at any point and continued with ``--resume`` ends bit-identical to an
uninterrupted one; Ctrl-C exits 1 with one sentence naming ``--resume``; a checkpoint write that
fails (disk full) leaves the previous checkpoint intact; stale temporaries are cleaned up without
ever touching a user's files.

The runs that are interrupted, and the resumes after a kill, are the real CLIs in subprocesses
(``python -m adversarial_seg.cli...``); the uninterrupted references and the resumes after Ctrl-C
call the same ``main`` in this process, which saves a process start-up (~6 s) each.
"""

from __future__ import annotations

import builtins
import csv
import errno
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from adversarial_seg import atomic_files
from adversarial_seg.atomic_files import is_own_temporary, remove_stale_temporaries, temporary_name
from adversarial_seg.checkpoint import load_checkpoint
from adversarial_seg.data.io import read_label

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TIMEOUT = 180  # seconds for one command; the tiny runs take about 10

SEG_EPOCHS = 2
SEG_TINY = [  # tests/cli's tiny run (6 phantoms of 64x64x6, a 3-level UNet of 8-32 channels) as overrides
    "model.segmentor={name: UNet, channels: [8, 16, 32], strides: [2, 2], num_res_units: 0}",
    "model.discriminator.channels=8",
    "data.synthetic.cases=6",
    "data.synthetic.size=[64, 64, 6]",
    "data.size=[64, 64]",
    f"train.epochs={SEG_EPOCHS}",
    "schemes=null",  # one run (the demo compares two schemes)
    "scheme=hybrid",
]
GAN_EPOCHS = 10  # an epoch takes ~0.05 s, evaluation (every 10) ~1 s: a kill after epoch 1 lands in training
GAN_TINY = [  # tests/gan's tiny gan-train run
    "model.hidden=32",
    "eval.samples=40",
    "eval.parzen_samples=200",
    "eval.grid=4",
    "train.batch_size=128",
    f"train.epochs={GAN_EPOCHS}",
]
COMPARED = ("modules", "step", "schedulers", "epoch")  # plus the history without its "seconds"


# ----------------------------------------------------------------------------- running the CLIs


def command(module: str, config: str, run: Path, flag: str, overrides: list[str], extra: tuple) -> list[str]:
    args = [sys.executable, "-m", f"adversarial_seg.cli.{module}", "--config", str(REPO / config)]
    args += ["--output", str(run), "--device", "cpu", flag]
    for item in overrides:
        args += ["--set", item]
    return args + list(extra)


def seg_train(run: Path, *extra: str) -> list[str]:
    return command("seg_train", "configs/demo.yaml", run, "--no-progress", SEG_TINY, extra)


def gan_train(run: Path, *extra: str) -> list[str]:
    return command("gan_train", "configs/gan/vanilla.yaml", run, "--quiet", GAN_TINY, extra)


@dataclass
class Ended:
    returncode: int
    stdout: str
    stderr: str
    signalled: bool  # the signal was sent while the process was still running


def finish(args: list[str]) -> None:
    """Run a command to its end in a new process; assert it succeeded."""
    done = subprocess.run(args, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]


@contextmanager
def one_torch_thread():
    """As in the subprocesses (OMP_NUM_THREADS=1): the thread count can change a float sum's order."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def in_process(args: list[str]) -> None:
    """Run a command's ``main`` in this process and assert exit 0: the same code as ``python -m``
    without its ~6 s start-up, for work that is not interrupted (references, resumes after Ctrl-C)."""
    module = importlib.import_module(args[2])
    with one_torch_thread():
        assert module.main(args[3:]) == 0


def _default_sigint() -> None:  # a child of a shell's background job inherits SIGINT ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def appeared(path: Path) -> Callable[[], bool]:
    """True once ``path`` is a file, or a folder holding one."""
    return lambda: path.is_file() or (path.is_dir() and any(path.iterdir()))


def signal_when(args: list[str], ready: Callable[[], bool], sig: int) -> Ended:
    """Start a command, send it ``sig`` as soon as ``ready()`` holds, and wait for its end.

    ``ready`` looks at files the run writes atomically; the signal lands a few milliseconds
    later, so the run may have got a little further, never less far.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(args, cwd=REPO, env=ENV, stdout=out, stderr=err, preexec_fn=_default_sigint)
        deadline = time.monotonic() + TIMEOUT
        while process.poll() is None and not ready():
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"{args[2]} never reached the point to interrupt")
            time.sleep(0.005)
        signalled = process.poll() is None
        if signalled:
            process.send_signal(sig)
        process.wait(TIMEOUT)
        out.seek(0), err.seek(0)
        return Ended(process.returncode, out.read(), err.read(), signalled)


def kill_at(args: list[str], trigger: Path, not_yet: Path, point: str) -> None:
    """SIGKILL a command once ``trigger`` appears, meant to land before ``not_yet`` does.

    A poll that comes late moves the kill to a later point (a warning says so); the test still holds.
    """
    ended = signal_when(args, appeared(trigger), signal.SIGKILL)
    assert ended.signalled and ended.returncode == -signal.SIGKILL, (point, ended.returncode, ended.stderr[-3000:])
    if not_yet.exists():
        warnings.warn(f"the kill meant for '{point}' landed after {not_yet.name} was written", stacklevel=2)


def assert_interrupt_reported(ended: Ended) -> None:
    """Ctrl-C: exit 1, one ``error:`` line on stderr that names --resume, no traceback."""
    assert ended.signalled, "the run ended before it could be interrupted"
    assert "Traceback" not in ended.stderr, ended.stderr[-3000:]
    errors = [line for line in ended.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--resume" in errors[0], ended.stderr[-3000:]
    assert ended.returncode == 1, (ended.returncode, ended.stderr[-3000:])


# ----------------------------------------------------------------------------- comparing runs


def assert_nested_equal(a, b, path: str) -> None:
    """Tensors bit for bit (``torch.equal``), containers element-wise, everything else with ``==``."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), f"{path} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{path} keys differ"
        for key in a:
            assert_nested_equal(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{path} length differs"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_nested_equal(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def assert_same_checkpoint(expected: Path, actual: Path) -> None:
    """Weights, optimisers, scalers, schedulers, epoch and history (wall time aside) are identical."""
    a = torch.load(expected, weights_only=True)
    b = torch.load(actual, weights_only=True)
    for key in COMPARED:
        assert_nested_equal(a[key], b[key], f"{actual}:{key}")
    assert without_seconds(a["history"]) == without_seconds(b["history"]), f"{actual}: history differs"


def assert_same_predictions(expected: Path, actual: Path) -> None:
    """The same files; label maps byte-identical or array-identical, ``.npz`` arrays identical.
    (A temporary a killed writer left is not counted: resume does not clean them up yet.)"""
    names = sorted(p.name for p in expected.iterdir())
    assert sorted(p.name for p in actual.iterdir() if not is_own_temporary(p.name)) == names, actual
    for name in names:
        a, b = expected / name, actual / name
        if name.endswith(".npz"):
            with np.load(a) as x, np.load(b) as y:
                assert x.files == y.files, b
                for key in x.files:
                    np.testing.assert_array_equal(x[key], y[key], err_msg=f"{b}:{key}")
        elif a.read_bytes() != b.read_bytes():  # e.g. a gzip header naming the temporary it was written as
            (x, x_props), (y, y_props) = read_label(a), read_label(b)
            np.testing.assert_array_equal(x, y, err_msg=str(b))
            np.testing.assert_array_equal(x_props.get("affine"), y_props.get("affine"), err_msg=str(b))


def assert_same_seg_run(expected: Path, actual: Path) -> None:
    folds = sorted(p.name for p in expected.glob("fold_*"))
    assert folds == sorted(p.name for p in actual.glob("fold_*")) and folds
    for fold in folds:
        assert (actual / fold / "fold_done.json").is_file(), fold
        assert_same_checkpoint(expected / fold / "checkpoint_last.pt", actual / fold / "checkpoint_last.pt")
        assert_same_predictions(expected / fold / "predictions", actual / fold / "predictions")
    assert (actual / "report" / "cases.csv").read_text() == (expected / "report" / "cases.csv").read_text()


def assert_no_partial_files(run: Path) -> None:
    """After a kill every file under its final name is whole: checkpoints, logs and predictions load."""
    for path in run.rglob("checkpoint_last.pt"):
        state = load_checkpoint(path)
        assert 1 <= state["epoch"] == len(state["history"]), path
    for path in run.rglob("log.csv"):
        rows = read_log(path)
        assert [int(row["epoch"]) for row in rows] == list(range(1, len(rows) + 1)), path
    for path in run.glob("fold_*/predictions/*"):
        if is_own_temporary(path.name):
            continue  # a killed writer's temporary, never read as a prediction
        if path.name.endswith(".npz"):
            with np.load(path) as saved:
                assert saved["probabilities"].size, path
        else:
            assert read_label(path)[0].size, path


def read_log(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# ----------------------------------------------------------------------------- the references


@pytest.fixture(scope="module")
def seg_straight(tmp_path_factory) -> Path:
    """An uninterrupted tiny seg-train run, the reference for the interrupted ones."""
    run = tmp_path_factory.mktemp("seg") / "straight"
    in_process(seg_train(run))
    return run


@pytest.fixture(scope="module")
def gan_straight(tmp_path_factory) -> Path:
    """An uninterrupted tiny gan-train run, the reference for the interrupted ones."""
    run = tmp_path_factory.mktemp("gan") / "straight"
    in_process(gan_train(run))
    return run


# ----------------------------------------------------------------------------- seg-train


@pytest.mark.slow
def test_seg_train_killed_at_several_points_resumes_bit_identical(seg_straight, tmp_path):
    """seg-train SIGKILLed mid-fold, between folds and while predicting, then --resume, equals an uninterrupted run."""
    run = tmp_path / "killed"
    fold_0, fold_1 = run / "fold_0", run / "fold_1"
    points = [  # (what the kill interrupts, killed once this appears, which must not exist yet)
        ("fold 0 training, after its first epoch checkpoint", fold_0 / "log.csv", fold_0 / "predictions"),
        ("fold 1 training, fold 0 finished", fold_0 / "fold_done.json", fold_1 / "predictions"),
        ("fold 1 writing its predictions", fold_1 / "predictions", fold_1 / "fold_done.json"),
    ]
    for i, (point, trigger, not_yet) in enumerate(points):
        kill_at(seg_train(run, *(["--resume"] if i else [])), trigger, not_yet, point)
        assert_no_partial_files(run)
    finish(seg_train(run, "--resume"))
    assert_same_seg_run(seg_straight, run)


@pytest.mark.slow
def test_seg_train_ctrl_c_exits_1_with_one_sentence_and_resumes(seg_straight, tmp_path):
    """Ctrl-C during seg-train: exit 1, one 'error:' line naming --resume, no traceback; --resume finishes it."""
    run = tmp_path / "interrupted"
    ended = signal_when(seg_train(run), appeared(run / "fold_0" / "log.csv"), signal.SIGINT)
    assert_interrupt_reported(ended)
    assert_no_partial_files(run)
    in_process(seg_train(run, "--resume"))
    assert_same_seg_run(seg_straight, run)


# ----------------------------------------------------------------------------- gan-train


def assert_same_gan_run(expected: Path, actual: Path) -> None:
    assert_same_checkpoint(expected / "checkpoint_last.pt", actual / "checkpoint_last.pt")
    assert without_seconds(read_log(expected / "log.csv")) == without_seconds(read_log(actual / "log.csv"))
    a, b = (json.loads((run / "metrics.json").read_text()) for run in (expected, actual))
    assert a["metrics"] == b["metrics"] and a["epochs"] == b["epochs"] == GAN_EPOCHS
    assert a["warnings"] == b["warnings"]  # warnings before the interruption are kept in the checkpoint


@pytest.mark.slow
def test_gan_train_killed_mid_training_resumes_bit_identical(gan_straight, tmp_path):
    """gan-train SIGKILLed after its first epoch checkpoint, then --resume, equals an uninterrupted run."""
    run = tmp_path / "killed"
    kill_at(gan_train(run), run / "log.csv", run / "samples", "training, after the first epoch checkpoint")
    assert_no_partial_files(run)
    finish(gan_train(run, "--resume"))
    assert_same_gan_run(gan_straight, run)


@pytest.mark.slow
def test_gan_train_ctrl_c_exits_1_with_one_sentence_and_resumes(gan_straight, tmp_path):
    """Ctrl-C during gan-train: exit 1, one 'error:' line naming --resume, no traceback; --resume finishes it."""
    run = tmp_path / "interrupted"
    ended = signal_when(gan_train(run), appeared(run / "log.csv"), signal.SIGINT)
    assert_interrupt_reported(ended)
    assert_no_partial_files(run)
    in_process(gan_train(run, "--resume"))
    assert_same_gan_run(gan_straight, run)


# ----------------------------------------------------------------------------- a failed write


def tiny_trainer(run_dir: Path):
    """A tiny hybrid segmentation Trainer on random 64x64 images (as tests/gan/resume_script.py builds one)."""
    from adversarial_seg.config import config_from_mapping
    from adversarial_seg.gan.trainer import Trainer, seeded_loader
    from adversarial_seg.runtime import Precision, seed_everything
    from adversarial_seg.seg.task import build_segmentation_step

    g = torch.Generator().manual_seed(123)
    samples = [
        {"image": torch.randn(1, 64, 64, generator=g), "label": torch.randint(0, 2, (1, 64, 64), generator=g)}
        for _ in range(8)
    ]
    config = config_from_mapping(
        {
            "scheme": "hybrid",
            "model": {
                "segmentor": {"name": "UNet", "channels": [4, 8], "strides": [2]},
                "discriminator": {"channels": 4},
            },
        }
    )
    seed_everything(0)  # network initialisation
    device = torch.device("cpu")
    step = build_segmentation_step(config, 2, 1, 2, device, Precision.for_device(device, amp=False))
    scheduler = torch.optim.lr_scheduler.StepLR(step.optimizer_g, step_size=1, gamma=0.9)
    return Trainer(
        step,
        make_loader=lambda epoch: seeded_loader(samples, 4, seed=7, stream=(0,), epoch=epoch),
        run_dir=run_dir,
        seed=7,
        stream=(0,),
        device=device,
        schedulers={"lr_g": scheduler},
        print_fn=None,
        progress=False,
    )


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


class FullDiskFile:
    """A file whose writes fail as on a full disk."""

    def __init__(self, handle):
        self._handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()

    def __getattr__(self, name):
        return getattr(self._handle, name)

    write = disk_full


def break_checkpoint_writes(monkeypatch, where: str) -> None:
    """Make writing (``where="write"``) or renaming (``"rename"``) ``checkpoint_last.pt`` fail with ENOSPC."""
    if where == "write":
        monkeypatch.setattr(atomic_files, "open", lambda *a, **k: FullDiskFile(builtins.open(*a, **k)), raising=False)
    else:
        replace = os.replace

        def failing_replace(source, target, *args, **kwargs):
            if Path(target).name == "checkpoint_last.pt":
                disk_full()
            return replace(source, target, *args, **kwargs)

        monkeypatch.setattr(atomic_files.os, "replace", failing_replace)


@pytest.mark.parametrize("where", ["write", "rename"])
def test_failed_checkpoint_write_keeps_the_last_checkpoint(tmp_path, monkeypatch, where):
    """A checkpoint write failing with ENOSPC leaves the previous checkpoint whole, no temporary, and resume works."""
    run_dir = tmp_path / "run"
    trainer = tiny_trainer(run_dir)
    trainer.fit(1)
    before = (run_dir / "checkpoint_last.pt").read_bytes()
    with monkeypatch.context() as patch:
        break_checkpoint_writes(patch, where)
        with pytest.raises(OSError) as raised:
            trainer.fit(2)
    assert raised.value.errno == errno.ENOSPC
    assert (run_dir / "checkpoint_last.pt").read_bytes() == before
    assert load_checkpoint(run_dir / "checkpoint_last.pt")["epoch"] == 1
    assert not [p.name for p in run_dir.iterdir() if is_own_temporary(p.name)]

    resumed = tiny_trainer(run_dir)
    assert resumed.resume() and resumed.epochs_done == 1
    resumed.fit(2)
    straight = tiny_trainer(tmp_path / "straight")
    straight.fit(2)
    assert_same_checkpoint(tmp_path / "straight" / "checkpoint_last.pt", run_dir / "checkpoint_last.pt")


def test_remove_stale_temporaries_deletes_only_its_own(tmp_path):
    """remove_stale_temporaries deletes temporary_name() leftovers, never a user's dot-files or look-alikes."""
    own = [temporary_name("checkpoint_last.pt"), temporary_name("case.nii.gz"), temporary_name("log.csv")]
    forged = ".case.abcd1234-0123456789ab.partial.nii.gz"  # the pattern, without a valid signature
    users = [".notes.20240101", ".case.abcd1234.nii.gz", forged, "case.nii.gz", "checkpoint_last.pt"]
    for name in own + users:
        (tmp_path / name).write_bytes(b"x")
    private = tmp_path / temporary_name("case.mhd")  # an MHD pair's private folder
    private.mkdir()
    (private / "case.raw").write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == len(own) + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(users)
    assert remove_stale_temporaries(tmp_path / "missing") == 0


def test_resume_removes_a_killed_writes_temporaries_and_restores_the_callers_state(tmp_path):
    """Trainer.resume deletes signed leftovers in the run folder (a user's dot-file stays) and puts the
    caller's extra state (e.g. gan-train's warnings so far) back into the same dict."""
    run_dir = tmp_path / "run"
    first = tiny_trainer(run_dir)
    first.extra_state["warnings"] = ["warning: epoch 1: D won"]
    first.fit(1)
    leftover, users = run_dir / temporary_name("checkpoint_last.pt"), run_dir / ".notes.20240101"
    leftover.write_bytes(b"half a checkpoint")
    users.write_bytes(b"mine")
    log = {"warnings": []}
    resumed = tiny_trainer(run_dir)
    resumed.extra_state = log
    assert resumed.resume()
    assert log == {"warnings": ["warning: epoch 1: D won"]}
    assert not leftover.exists() and users.read_bytes() == b"mine"
