"""scripts/sr_segmentation.py end to end on phantoms of two sites: two one-epoch srgan runs on the slices
(fold 0 held out) and a one-epoch source-only seg-train run; every held-out case is segmented at full
resolution, bicubic and super-resolved by each run, by the fold model that had it in validation."""

import json
import subprocess
import sys

import nibabel as nib
import numpy as np

from adversarial_seg.cli.gan_train import main as gan_train
from adversarial_seg.cli.seg_train import main as seg_train
from adversarial_seg.gan.config import gan_config_from_mapping
from adversarial_seg.gan.experiment import load_data
from adversarial_seg.provenance import read_resolved_config

from ..data.conftest import two_sites  # noqa: F401  (the fixture)
from .test_cyclegan_transfer import REPO, seg_config, t2_only


def test_each_held_out_case_is_segmented_at_full_resolution_bicubic_and_super_resolved(
    two_sites,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    root, _ = two_sites
    root = t2_only(root, tmp_path / "t2")
    monkeypatch.chdir(REPO)
    runs = [tmp_path / "mse", tmp_path / "gan"]
    for run, w_adv in zip(runs, ("0", "0.001"), strict=True):
        assert gan_train(["--config", "configs/gan/srgan_prostate_mse.yaml", "--output", str(run), "--no-progress",
                          "--threads", "1", "--set", f"data.sites.root={root}", "--set", "data.sites.column=site",
                          "--set", "data.sites.a=[A]", "--set", "data.sites.b=[B]", "--set", "data.sites.spacing=1.2",
                          "--set", "data.sites.size=[32, 32]", "--set", "model.channels=4",
                          "--set", "model.residual_blocks=1", "--set", "train.batch_size=2", "--set", f"loss.w_adv={w_adv}",
                          "--set", "train.epochs=1", "--set", "eval.grid=2"]) == 0  # fmt: skip
    seg = tmp_path / "source_only"
    config = seg_config(tmp_path / "seg.yaml", root, "A")
    assert seg_train(["--config", str(config), "--output", str(seg), "--no-progress", "--threads", "1"]) == 0
    out = tmp_path / "sr"
    done = subprocess.run([sys.executable, "scripts/sr_segmentation.py", *map(str, runs), "--segmentor", str(seg),
                           "--output", str(out)], capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    data = load_data(gan_config_from_mapping(read_resolved_config(runs[0] / "config.yaml")[0]))
    assert result["cases"] == sorted(set(data["cases"]["test"])) and len(result["cases"]) >= 2
    assert not set(result["cases"]) & set(data["cases"]["train"])  # G never saw them
    assert list(result["rows"]) == ["full_resolution", "bicubic", "mse", "gan"] and result["scale"] == 4
    for row in result["rows"].values():
        assert sorted(row["per_case"]) == result["cases"]
        assert all(0 <= v <= 1 for scores in row["per_case"].values() for v in scores.values())
    assert set(result["vs_bicubic"]) == {"mse", "gan"} and {"difference", "wilcoxon_p"} <= set(
        result["vs_bicubic"]["gan"]["gland"]
    )
    fold_of = {c: e["fold"] for e in json.loads((seg / "splits.json").read_text()) for c in e["val"]}
    for case in result["cases"]:
        label = nib.load(out / "labels" / f"{case}.nii.gz")
        for condition in result["rows"]:
            image = nib.load(out / condition / f"fold_{fold_of[case]}" / f"{case}_0000.nii.gz")
            assert image.shape == label.shape == (32, 32, 6) and np.allclose(image.affine, label.affine)
        # bicubic of the x4 copy is blurrier than the full-resolution slices: less variation between neighbours
        full = nib.load(out / "full_resolution" / f"fold_{fold_of[case]}" / f"{case}_0000.nii.gz").get_fdata()
        blurred = nib.load(out / "bicubic" / f"fold_{fold_of[case]}" / f"{case}_0000.nii.gz").get_fdata()
        assert np.abs(np.diff(blurred, axis=0)).mean() < np.abs(np.diff(full, axis=0)).mean()
    assert json.loads((out / "sr_segmentation.json").read_text()) == result
