"""Training loop: log rows, atomic checkpoints, exact resume after SIGKILL."""

import csv
import signal
import subprocess
import sys
from pathlib import Path

import torch

from adversarial_seg.atomic_files import atomic_write_bytes
from adversarial_seg.gan.trainer import format_epoch_line, write_log_csv

SCRIPT = Path(__file__).with_name("resume_script.py")
REPO = Path(__file__).resolve().parents[2]


def run_script(run_dir, epochs, kill_after=None):
    cmd = [sys.executable, str(SCRIPT), str(run_dir), str(epochs)]
    if kill_after is not None:
        cmd += ["--kill-after-epoch", str(kill_after)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


def assert_nested_equal(a, b, path="checkpoint"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), f"{path} differs"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{path} keys differ"
        for key in a:
            assert_nested_equal(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path} length differs"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_nested_equal(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def test_killed_and_resumed_run_equals_uninterrupted_run(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert run_script(straight, 3).returncode == 0

    killed = run_script(resumed, 3, kill_after=1)
    assert killed.returncode == -signal.SIGKILL
    partial = torch.load(resumed / "checkpoint_last.pt", weights_only=True)
    assert partial["epoch"] == 1
    assert not list(resumed.glob("*.tmp"))  # no partial file left behind

    finished = run_script(resumed, 3)
    assert finished.returncode == 0, finished.stderr
    a = torch.load(straight / "checkpoint_last.pt", weights_only=True)
    b = torch.load(resumed / "checkpoint_last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 3
    for key in ("modules", "step", "schedulers"):  # weights, both optimisers, both scalers, LR schedule
        assert_nested_equal(a[key], b[key], key)
    assert set(a["modules"]) == {"segmentor", "discriminator"}
    assert set(a["step"]) == {"optimizer_g", "optimizer_d", "scaler_g", "scaler_d"}
    drop_time = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop_time(a["history"]) == drop_time(b["history"])
    with open(resumed / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    for column in ("loss_d", "loss_g", "loss_sup", "loss_adv", "d_real", "d_fake", "grad_ratio_adv_sup", "seconds"):
        assert column in rows[0]


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "a" / "file.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]


def test_log_csv_has_union_of_columns(tmp_path):
    write_log_csv([{"epoch": 1, "loss_g": 0.5}, {"epoch": 2, "loss_g": 0.4, "val_dsc": 0.7}], tmp_path / "log.csv")
    lines = (tmp_path / "log.csv").read_text().splitlines()
    assert lines == ["epoch,loss_g,val_dsc", "1,0.5,", "2,0.4,0.7"]


def test_epoch_line_names_every_term():
    line = format_epoch_line({"epoch": 3, "loss_g": 0.41234, "d_real": 0.61, "seconds": 12.44}, 20)
    assert line == "epoch 3/20  loss_g 0.4123  d_real 0.61  12.4 s"
