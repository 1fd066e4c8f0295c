"""seg-predict end to end: a tiny trained run on prostate phantoms (T2 + ADC channel files)."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from adversarial_seg.cli.seg_predict import main as predict
from adversarial_seg.data.io import read_label
from adversarial_seg.data.phantoms import phantom_data_config, write_prostate_phantoms
from adversarial_seg.seg.metrics import CASE_COLUMNS, confusion_counts, dsc

from .conftest import train_tiny


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("predict")
    root = write_prostate_phantoms(base / "phantoms", cases=4, seed=3, size=(48, 40, 5))
    data = {**phantom_data_config("prostate", root), "size": [48, 48]}
    return train_tiny(base, data, scheme="ce", train={"epochs": 1}), root


def images_of(root, tmp_path, cases=None):
    """A copy of the phantoms' image files (the run never reads its training data again)."""
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    for path in sorted((root / "imagesTr").iterdir()):
        if cases is None or path.name.rsplit("_", 1)[0] in cases:
            shutil.copy(path, folder / path.name)
    return folder


def test_outputs_overlay_inputs_and_metrics_match_the_files(trained, tmp_path, capsys):
    run, root = trained
    out = tmp_path / "out"
    code = predict(["--model", str(run), "--input", str(images_of(root, tmp_path)), "--output", str(out),
                    "--labels", str(root / "labelsTr"), "--probabilities", "--no-progress"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "done 4, skipped 0" in printed and "s per predicted case" in printed
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert list(rows[0])[: len(CASE_COLUMNS)] == list(CASE_COLUMNS)
    for case in ("prostate_000", "prostate_003"):
        image = nib.load(root / "imagesTr" / f"{case}_0000.nii.gz")
        written = nib.load(out / f"{case}.nii.gz")
        assert written.shape == image.shape and np.allclose(written.affine, image.affine)
        probabilities = np.load(out / f"{case}.npz")["probabilities"]
        assert probabilities.shape == (4, *image.shape) and probabilities.dtype == np.float16
        prediction, reference = (
            read_label(out / f"{case}.nii.gz")[0],
            read_label(root / "labelsTr" / f"{case}.nii.gz")[0],
        )
        gland = next(r for r in rows if r["case"] == case and r["class"] == "gland")
        expected = dsc(confusion_counts(prediction > 0, reference > 0))
        assert float(gland["dsc"]) == pytest.approx(expected, abs=1e-5)
    summary = json.loads((out / "metrics_summary.json").read_text())
    assert summary["folds"] == [0, 1] and summary["classes"]["gland"]["overall"]["dsc"]["n"] == 4
    # every case trained one of the two fold models: the scores are optimistic, and say so
    assert len(summary["scored_training_cases"]) == 4


def test_scoring_cases_the_models_trained_on_is_flagged(trained, tmp_path, capsys):
    """With fold 0's model only, its validation cases are fair and its training cases are flagged."""
    run, root = trained
    splits = json.loads((run / "splits.json").read_text())
    out = tmp_path / "out"
    code = predict(["--model", str(run), "--input", str(images_of(root, tmp_path)), "--output", str(out),
                    "--labels", str(root / "labelsTr"), "--folds", "0", "--no-progress"])  # fmt: skip
    assert code == 0
    summary = json.loads((out / "metrics_summary.json").read_text())
    assert summary["scored_training_cases"] == sorted(splits[0]["train"])
    err = capsys.readouterr().err
    assert f"warning: {len(splits[0]['train'])} of the scored cases" in err and "optimistic" in err


def test_bad_files_are_named_and_the_good_ones_still_predicted(trained, tmp_path, capsys):
    run, root = trained
    folder = images_of(root, tmp_path, cases={"prostate_000", "prostate_001"})
    (folder / "corrupt_0000.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    shutil.copy(folder / "prostate_000_0001.nii.gz", folder / "corrupt_0001.nii.gz")
    (folder / "empty_0000.nii.gz").write_bytes(b"")
    shutil.copy(folder / "prostate_000_0001.nii.gz", folder / "empty_0001.nii.gz")
    t2 = nib.load(folder / "prostate_000_0000.nii.gz")
    three = np.stack([np.asarray(t2.dataobj)] * 3, axis=-1)
    nib.save(nib.Nifti1Image(three, t2.affine), folder / "threechannels.nii.gz")
    # the right channel count in one 4D file is a valid input
    adc = nib.load(folder / "prostate_001_0001.nii.gz")
    both = np.stack([np.asarray(nib.load(folder / "prostate_001_0000.nii.gz").dataobj), np.asarray(adc.dataobj)], -1)
    nib.save(nib.Nifti1Image(both.astype(np.float32), adc.affine), folder / "fourd.nii.gz")
    out = tmp_path / "out"
    code = predict(["--model", str(run), "--input", str(folder), "--output", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 3
    assert any("corrupt_0000.nii.gz" in e and "cannot be read" in e for e in errors)
    assert any("empty_0000.nii.gz is empty (0 bytes)" in e for e in errors)
    assert any("threechannels.nii.gz: has 3 channel(s) but the model takes 2" in e for e in errors)
    assert "done 3, skipped 0 (output exists; --overwrite to redo), failed 3" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["fourd.nii.gz", "prostate_000.nii.gz", "prostate_001.nii.gz"]
    np.testing.assert_array_equal(read_label(out / "fourd.nii.gz")[0], read_label(out / "prostate_001.nii.gz")[0])


def test_wrong_arguments_do_nothing_and_exit_2(trained, tmp_path, capsys):
    run, root = trained
    images = images_of(root, tmp_path, cases={"prostate_000"})
    out = tmp_path / "out"
    base = ["--input", str(images), "--output", str(out), "--no-progress"]
    assert predict(["--model", str(images)] + base) == 2  # not a run directory
    assert predict(["--model", str(run.parent)] + base) == 2  # a folder of runs (schemes / seeds)
    assert predict(["--model", str(run), "--folds", "3"] + base) == 2
    assert predict(["--model", str(run), "--input", str(tmp_path / "missing"), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert (
        "is not a run directory" in err
        and "holds runs in subfolders (run); pass one of them" in err
        and "fold(s) [3] not finished" in err
        and "does not exist" in err
    )
    assert not out.exists()


def test_keep_largest_component_is_applied_when_the_run_decided_so(trained, tmp_path):
    run, root = trained
    decided = tmp_path / "run"
    shutil.copytree(run, decided)
    post = decided / "report" / "postprocessing.json"
    decision = json.loads(post.read_text())
    decision["keep_largest_component"] = {"pz": True, "tz": True, "lesion": True}
    post.write_text(json.dumps(decision))
    images = images_of(root, tmp_path)
    assert (
        predict(["--model", str(decided), "--input", str(images), "--output", str(tmp_path / "out"), "--no-progress"])
        == 0
    )
    for path in (tmp_path / "out").glob("*.nii.gz"):
        labels = read_label(path)[0]
        for value in (1, 2, 3):
            _, count = ndimage.label(labels == value, structure=np.ones((3, 3, 3)))
            assert count <= 1, (path.name, value)


def outputs(folder):
    """Label maps under their final names (a writer's temporaries are hidden files)."""
    return sorted(p for p in folder.glob("*.nii.gz") if not p.name.startswith("."))


def test_a_killed_batch_leaves_no_partial_file_and_a_rerun_completes_it(trained, tmp_path):
    run, root = trained
    images = images_of(root, tmp_path)
    for copy in range(12):  # more, bigger work so that the kill lands mid-batch
        for channel in (0, 1):
            shutil.copy(images / f"prostate_000_000{channel}.nii.gz", images / f"copy{copy:02d}_000{channel}.nii.gz")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "adversarial_seg.cli.seg_predict", "--model", str(run), "--input", str(images),
               "--output", str(out), "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while not outputs(out) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = outputs(out)
    assert 0 < len(finished) < 16, "the kill should land mid-batch"
    for path in finished:
        nib.load(path).get_fdata()  # every file under its final name is complete
    rerun = subprocess.run(command, capture_output=True, text=True, env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert f"skipped {len(finished)}" in rerun.stdout and f"done {16 - len(finished)}" in rerun.stdout
    assert len(outputs(out)) == 16 and not [p for p in out.iterdir() if p.name.startswith(".")]
    reference = read_label(out / "prostate_000.nii.gz")[0]
    for copy in range(12):
        np.testing.assert_array_equal(read_label(out / f"copy{copy:02d}.nii.gz")[0], reference)


def test_mha_volumes_get_mha_label_maps_on_their_grid(trained, tmp_path):
    import SimpleITK as sitk

    run, root = trained
    folder = tmp_path / "mha"
    folder.mkdir()
    for channel in (0, 1):
        image = sitk.ReadImage(str(root / "imagesTr" / f"prostate_002_000{channel}.nii.gz"))
        sitk.WriteImage(image, str(folder / f"prostate_002_000{channel}.mha"))
    assert (
        predict(["--model", str(run), "--input", str(folder), "--output", str(tmp_path / "out"), "--no-progress"]) == 0
    )
    source, written = (
        sitk.ReadImage(str(folder / "prostate_002_0000.mha")),
        sitk.ReadImage(str(tmp_path / "out" / "prostate_002.mha")),
    )
    assert written.GetSize() == source.GetSize()
    assert np.allclose(written.GetOrigin(), source.GetOrigin()) and np.allclose(
        written.GetSpacing(), source.GetSpacing()
    )
    assert np.allclose(written.GetDirection(), source.GetDirection())
    assert written.GetPixelID() == sitk.sitkUInt8


def test_a_skin_model_writes_png_masks_for_png_and_jpg_images(tmp_path):
    from PIL import Image

    from adversarial_seg.data.phantoms import write_skin_phantoms

    root = write_skin_phantoms(tmp_path / "skin", cases=4, seed=0, size=(40, 56))
    train_tiny(tmp_path, {**phantom_data_config("skin", root), "size": [32, 48]}, scheme="ce", train={"epochs": 1})
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    first, second = sorted((root / "images").glob("*.png"))[:2]
    shutil.copy(first, inputs / first.name)
    Image.open(second).convert("RGB").save(inputs / f"{second.stem}.jpg", quality=95)
    out = tmp_path / "out"
    assert (
        predict(["--model", str(tmp_path / "run"), "--input", str(inputs), "--output", str(out), "--no-progress"]) == 0
    )
    for name in (first.stem, second.stem):
        mask = np.asarray(Image.open(out / f"{name}.png"))
        assert mask.shape == (40, 56) and set(np.unique(mask)) <= {0, 255}
