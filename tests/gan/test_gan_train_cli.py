"""gan-train: inputs validated up front (exit 2, one sentence naming the key or file), a tiny run
end to end with its artefacts, and resume."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from adversarial_seg.cli.gan_train import main

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "gan" / "vanilla.yaml"
TINY = ["model.hidden=32", "eval.samples=40", "eval.parzen_samples=200", "eval.grid=4", "train.batch_size=128"]


def tiny_args(run, *extra, epochs=1):
    args = ["--config", str(CONFIG), "--output", str(run), "--device", "cpu", "--quiet"]
    for item in TINY + [f"train.epochs={epochs}"]:
        args += ["--set", item]
    return args + list(extra)


def test_unknown_key_exits_2_with_a_suggestion(tmp_path, capsys):
    code = main(["--config", str(CONFIG), "--output", str(tmp_path / "run"), "--set", "train.epoch=3"])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown key 'train.epoch'" in err and "did you mean 'train.epochs'?" in err
    assert not (tmp_path / "run").exists()  # nothing was done


def test_unknown_key_in_file_exits_2_from_the_console(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("variant: dcgan\nmodle: {z_dim: 8}\n")
    out = subprocess.run(
        [sys.executable, "-m", "adversarial_seg.cli.gan_train", "--config", str(bad), "--output", str(tmp_path / "r")],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2
    assert "unknown key 'modle'; did you mean 'model'?" in out.stderr and str(bad) in out.stderr


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["--config", "missing.yaml"], "missing.yaml does not exist"),
        (["--config", str(CONFIG), "--set", "variant=gan"], "key 'variant'"),
        (["--config", str(CONFIG), "--set", "variant=wgan_gp", "--set", "loss.adversarial=hinge"], "wasserstein"),
        (["--config", str(CONFIG), "--device", "tpu"], "invalid choice: 'tpu'"),
        (["--config", str(CONFIG), "--resume"], "no checkpoint_last.pt"),
    ],
)
def test_bad_input_exits_2(tmp_path, capsys, args, phrase):
    assert main(args + ["--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert phrase in err and err.count("\n") == 1


def test_tiny_run_writes_its_artefacts_and_resumes(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(tiny_args(run)) == 0
    for name in (
        "config.yaml",
        "log.csv",
        "metrics.json",
        "metrics.png",
        "checkpoint_last.pt",
        "samples/epoch_001.png",
    ):
        assert (run / name).is_file(), name
    body = json.loads((run / "metrics.json").read_text())
    for key in ("parzen_ll", "parzen_se", "parzen_sigma", "classifier_score", "frechet_distance"):
        assert key in body["metrics"] and key in body["reference"]
    assert body["epochs"] == 1 and body["config_hash"] and body["command"].startswith("gan-train ")

    assert main(tiny_args(run)) == 2  # the run exists: refuse to overwrite it
    assert "pass --resume" in capsys.readouterr().err
    assert main(tiny_args(run, "--resume", epochs=2)) == 0
    with open(run / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"loss_d", "loss_g", "d_real", "d_fake", "val_frechet_distance", "val_classifier_score"} <= set(rows[0])
    assert (run / "samples" / "epoch_002.png").is_file()
    changed = tiny_args(run, "--resume", epochs=3) + ["--set", "model.z_dim=4"]
    assert main(changed) == 2
    assert "config differs" in capsys.readouterr().err
