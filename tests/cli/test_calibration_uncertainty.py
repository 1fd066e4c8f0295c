"""Calibration and uncertainty end to end on a tiny finished phantom run: seg-train freezes
calibration.json, seg-eval reports it, seg-predict applies it and writes uncertainty maps."""

import csv
import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from adversarial_seg.cli.seg_eval import main as evaluate
from adversarial_seg.cli.seg_predict import main as predict
from adversarial_seg.data.phantoms import phantom_data_config, write_prostate_phantoms
from adversarial_seg.seg.calibration import scale_probabilities

from .conftest import train_tiny


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("calibration")
    root = write_prostate_phantoms(base / "phantoms", cases=4, seed=5, size=(48, 40, 5))
    data = {**phantom_data_config("prostate", root), "size": [48, 48]}
    run = train_tiny(base, data, scheme="ce", train={"epochs": 2}, metrics={"specificity_region": "gland"})
    return run, root


def test_seg_train_freezes_temperatures_and_seg_eval_reports_calibration(trained, tmp_path):
    run, _ = trained
    frozen = json.loads((run / "report" / "calibration.json").read_text())
    assert list(frozen["temperatures"]) == frozen["classes"] and frozen["classes"][0] == "background"
    assert all(t > 0 for t in frozen["temperatures"].values()) and set(frozen["fold_temperatures"]) == {"0", "1"}
    assert frozen["binning"] == "equal-mass" and frozen["region"] == "gland"
    out = tmp_path / "eval"
    assert evaluate([str(run), "--output", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "## Calibration" in text and "ECE before" in text and "Spearman" in text
    assert (out / "figures" / "run_reliability.png").is_file() and (out / "figures" / "run_review.png").is_file()
    assert "<h2>Calibration</h2>" in (out / "report.html").read_text()
    body = json.loads((out / "evaluation.json").read_text())["calibration"]["run"]
    gland = body["fitted"]["metrics"]["gland"]
    assert set(gland) == {"overall", "region"} and gland["region"]["before"]["ece"] >= 0
    assert body["frozen"] == frozen["temperatures"]
    assert body["uncertainty"]["classes"]["gland"]["spearman"]["n"] >= 1
    assert not list(out.glob("*_calibration.json"))  # the run had its own: nothing to freeze


def test_seg_eval_fits_a_missing_calibration_into_the_run_or_beside_an_output(trained, tmp_path):
    run, _ = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "report" / "calibration.json").unlink()
    assert evaluate([str(copy), "--output", str(tmp_path / "elsewhere")]) == 0
    assert not (copy / "report" / "calibration.json").exists()  # --output leaves the run as it was
    assert (tmp_path / "elsewhere" / "run_calibration.json").is_file()
    assert evaluate([str(copy)]) == 0
    fitted = json.loads((copy / "report" / "calibration.json").read_text())
    assert fitted["temperatures"] == json.loads((run / "report" / "calibration.json").read_text())["temperatures"]


def test_seg_predict_calibrates_probabilities_and_writes_uncertainty_on_the_input_grid(trained, tmp_path, capsys):
    run, root = trained
    images = tmp_path / "images"
    images.mkdir()
    for path in sorted((root / "imagesTr").glob("prostate_00[01]_*")):
        shutil.copy(path, images / path.name)
    raw, out = tmp_path / "raw", tmp_path / "out"
    uncalibrated = tmp_path / "uncalibrated_run"
    shutil.copytree(run, uncalibrated)
    (uncalibrated / "report" / "calibration.json").unlink()
    assert predict(["--model", str(uncalibrated), "--input", str(images), "--output", str(raw), "--probabilities",
                    "--no-progress"]) == 0  # fmt: skip
    assert "probabilities: uncalibrated" in capsys.readouterr().out
    assert predict(["--model", str(run), "--input", str(images), "--output", str(out), "--probabilities",
                    "--uncertainty", "--no-progress"]) == 0  # fmt: skip
    assert "calibrated with" in capsys.readouterr().out
    temperatures = list(json.loads((run / "report" / "calibration.json").read_text())["temperatures"].values())
    for case in ("prostate_000", "prostate_001"):
        image = nib.load(root / "imagesTr" / f"{case}_0000.nii.gz")
        p_raw = np.load(raw / f"{case}.npz")["probabilities"].astype(np.float32)
        p_cal = np.load(out / f"{case}.npz")["probabilities"].astype(np.float32)
        assert np.allclose(p_cal, scale_probabilities(p_raw, temperatures, axis=0), atol=2e-3)
        # label maps are the uncalibrated argmax whatever the temperatures
        assert np.array_equal(
            nib.load(out / f"{case}.nii.gz").get_fdata(), nib.load(raw / f"{case}.nii.gz").get_fdata()
        )
        for name in ("entropy", "mutual_information"):
            written = nib.load(out / "uncertainty" / f"{case}_{name}.nii.gz")
            assert written.shape == image.shape and np.allclose(written.affine, image.affine)
            assert written.get_data_dtype() == np.float32
            assert int(written.header["sform_code"]) == int(image.header["sform_code"])
            voxels = written.get_fdata()
            assert np.all(voxels >= 0) and np.all(voxels <= np.log(4) + 1e-4)
        entropy = nib.load(out / "uncertainty" / f"{case}_entropy.nii.gz").get_fdata()
        information = nib.load(out / "uncertainty" / f"{case}_mutual_information.nii.gz").get_fdata()
        assert np.all(information <= entropy + 1e-4)
    rows = list(csv.DictReader(open(out / "uncertainty.csv")))
    assert [r["case"] for r in rows] == ["prostate_000", "prostate_001"]
    assert list(rows[0]) == ["case", "foreground_voxels", "mean_entropy_foreground",
                             "mean_mutual_information_foreground", "mean_entropy"]  # fmt: skip
    before = (out / "uncertainty.csv").read_text()
    assert predict(["--model", str(run), "--input", str(images), "--output", str(out), "--probabilities",
                    "--uncertainty", "--no-progress"]) == 0  # fmt: skip
    assert "skipped 2" in capsys.readouterr().out
    assert (out / "uncertainty.csv").read_text() == before  # skipped cases' rows come back from their maps


def test_a_broken_calibration_json_is_named_with_its_fix_and_nothing_is_written(trained, tmp_path, capsys):
    run, root = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    body = json.loads((copy / "report" / "calibration.json").read_text())
    body["temperatures"]["background"] = -1
    (copy / "report" / "calibration.json").write_text(json.dumps(body))
    out = tmp_path / "out"
    assert predict(["--model", str(copy), "--input", str(root / "imagesTr"), "--output", str(out),
                    "--no-progress"]) == 2  # fmt: skip
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "calibration.json" in error[0] and "delete it and run seg-eval" in error[0]
    assert not out.exists()
