"""scripts/cyclegan_transfer.py end to end on phantoms of two sites: two one-epoch cyclegan runs (one per
held-out fold of the sites) and one-epoch source-only and on-target seg-train runs; every site-B case
is translated by the run that held it out and segmented by the fold model that had it in validation."""

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import yaml

from adversarial_seg.cli.gan_train import main as gan_train
from adversarial_seg.cli.seg_train import main as seg_train
from adversarial_seg.data.phantoms import phantom_data_config

from ..data.conftest import two_sites  # noqa: F401  (the fixture)

REPO = Path(__file__).resolve().parents[2]


def t2_only(root: Path, folder: Path) -> Path:
    """The phantoms' T2 channel alone (links), as prostate_zonal holds it."""
    for name in ("imagesTr", "labelsTr"):
        (folder / name).mkdir(parents=True)
    for path in (root / "imagesTr").glob("*_0000.nii.gz"):
        (folder / "imagesTr" / path.name).symlink_to(path)
    for path in (root / "labelsTr").glob("*.nii.gz"):
        (folder / "labelsTr" / path.name).symlink_to(path)
    (folder / "cases.csv").write_text((root / "cases.csv").read_text())
    dataset = json.loads((root / "dataset.json").read_text())
    (folder / "dataset.json").write_text(json.dumps({**dataset, "channel_names": {"0": "T2"}}))
    return folder


def seg_config(path: Path, root: Path, source: str) -> Path:
    config = {
        "data": {**phantom_data_config("prostate", root), "channels": ["T2"], "size": [64, 64], "stratify": "site"},
        "model": {"segmentor": {"name": "UNet", "channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 0}},
        "scheme": "ce", "train": {"epochs": 1, "batch_size": 8}, "cv": {"folds": 2},
        "domain": {"column": "site", "source": [source], "target": ["B"], "adapt": 0.0},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


def test_each_b_case_is_translated_by_the_run_that_held_it_out(two_sites, tmp_path, monkeypatch):  # noqa: F811
    root, site = two_sites
    root = t2_only(root, tmp_path / "t2")
    monkeypatch.chdir(REPO)
    cycles = []
    for fold in (0, 1):
        cycles.append(tmp_path / f"cyclegan_fold{fold}")
        assert gan_train(["--config", "configs/gan/cyclegan.yaml", "--output", str(cycles[-1]), "--no-progress",
                          "--threads", "1", "--set", f"data.sites.root={root}", "--set", "data.sites.column=site",
                          "--set", "data.sites.a=[A]", "--set", "data.sites.b=[B]", "--set", "data.sites.spacing=1.2",
                          "--set", "data.sites.size=[32, 32]", "--set", f"data.sites.fold={fold}",
                          "--set", "model.channels=4", "--set", "model.residual_blocks=1", "--set", "train.batch_size=2",
                          "--set", "train.epochs=1", "--set", "eval.grid=2"]) == 0  # fmt: skip
    segs = {}
    for name, source in (("source_only", "A"), ("on_target", "B")):
        segs[name] = tmp_path / name
        config = seg_config(tmp_path / f"{name}.yaml", root, source)
        assert seg_train(["--config", str(config), "--output", str(segs[name]), "--no-progress", "--threads", "1"]) == 0
    out = tmp_path / "transfer"
    done = subprocess.run([sys.executable, "scripts/cyclegan_transfer.py", *map(str, cycles), "--source-only",
                           str(segs["source_only"]), "--on-target", str(segs["on_target"]), "--output", str(out)],
                          capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    b_cases = sorted(c for c, s in site.items() if s == "B")
    assert result["cases"] == b_cases
    assert list(result["rows"]) == ["source_only/as_is", "source_only/translated", "on_target/as_is"]
    for row in result["rows"].values():
        assert sorted(row["per_case"]) == b_cases
        assert all(0 <= v <= 1 for scores in row["per_case"].values() for v in scores.values())
    comparison = result["translated_vs_as_is"]["gland"]
    assert {"difference", "wilcoxon_p", "gap", "gap_closed"} <= set(comparison)
    fold_of = {c: e["fold"] for e in json.loads((segs["source_only"] / "splits.json").read_text()) for c in e["val"]}
    for case in b_cases:
        as_is = nib.load(out / "as_is" / f"fold_{fold_of[case]}" / f"{case}_0000.nii.gz")
        translated = nib.load(out / "translated" / f"fold_{fold_of[case]}" / f"{case}_0000.nii.gz")
        label = nib.load(out / "labels" / f"{case}.nii.gz")
        assert as_is.shape == translated.shape == label.shape == (32, 32, 6)
        assert np.allclose(as_is.affine, label.affine) and np.allclose(translated.affine, label.affine)
        predicted = out / "predictions" / "source_only/translated" / f"fold_{fold_of[case]}" / f"{case}.nii.gz"
        assert np.allclose(nib.load(predicted).affine, label.affine)  # the prediction overlays the input
    # each cyclegan run held out (and translated) different B cases
    held = [set(json.loads((c / "metrics.json").read_text())["held_out"]["b"]) for c in cycles]
    assert held[0] | held[1] == set(b_cases) and not held[0] & held[1]
    assert json.loads((out / "cyclegan_transfer.json").read_text()) == result
