"""scripts/fcn_score.py end to end on a tiny PH2-like folder: one-epoch pix2pix and srgan runs and a
one-epoch two-fold seg-train run; every held-out case is segmented by the fold model that did not
train on it, the real images' row comes first and the srgan run brings a bicubic row."""

import json
import subprocess
import sys
from pathlib import Path

from adversarial_seg.cli.gan_train import main as gan_train
from adversarial_seg.cli.seg_train import main as seg_train

from ..data.conftest import ph2_like  # noqa: F401  (the fixture)

REPO = Path(__file__).resolve().parents[2]


def test_fcn_score_segments_each_case_with_its_validation_fold_model(ph2_like, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(REPO)
    gan = tmp_path / "pix2pix"
    assert gan_train(["--config", "configs/gan/pix2pix.yaml", "--output", str(gan), "--no-progress", "--threads", "1",
                      "--set", f"data.ph2.root={ph2_like}", "--set", "data.ph2.size=[32, 32]",
                      "--set", "model.channels=4", "--set", "train.batch_size=2", "--set", "train.epochs=1"]) == 0  # fmt: skip
    sr = tmp_path / "srgan_mse"
    assert gan_train(["--config", "configs/gan/srgan_mse.yaml", "--output", str(sr), "--no-progress", "--threads", "1",
                      "--set", f"data.ph2.root={ph2_like}", "--set", "data.ph2.size=[32, 32]",
                      "--set", "model.channels=4", "--set", "model.residual_blocks=1", "--set", "train.batch_size=2",
                      "--set", "train.epochs=1"]) == 0  # fmt: skip
    seg = tmp_path / "seg"
    assert seg_train(["--config", "configs/ph2.yaml", "--output", str(seg), "--no-progress", "--threads", "1",
                      "--set", f"data.root={ph2_like}", "--set", "schemes=null", "--set", "scheme=ce",
                      "--set", "data.size=[32, 32]", "--set", "train.epochs=1", "--set", "train.batch_size=2",
                      "--set", "cv.folds=2"]) == 0  # fmt: skip
    out = tmp_path / "fcn"
    done = subprocess.run([sys.executable, "scripts/fcn_score.py", str(gan), str(sr), "--segmentor", str(seg), "--output",
                           str(out), "--splits", "val", "test"], capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(result["rows"]) == ["real", "pix2pix", "bicubic", "srgan_mse"]
    assert result["rows"]["bicubic"]["config_hash"] is None and result["rows"]["srgan_mse"]["config_hash"]
    assert result["rows"]["real"]["frechet_distance"] < 1e-3  # the real images against themselves
    for row in result["rows"].values():
        assert row["cases"] == 2 and 0 <= row["dsc_mean"] <= 1
    fold_of = {case: e["fold"] for e in json.loads((seg / "splits.json").read_text()) for case in e["val"]}
    for image in (out / "pix2pix").glob("fold_*/*.png"):
        assert image.parent.name == f"fold_{fold_of[image.stem]}"
        assert (out / "pix2pix" / f"pred_{image.parent.name}" / image.name).is_file()
    assert json.loads((out / "fcn_score.json").read_text()) == result
