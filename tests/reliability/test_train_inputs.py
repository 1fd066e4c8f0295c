"""seg-train under bad input: every case exits with the README's code, says one sentence naming
the file or key (no traceback), and changes nothing in the dataset or in an existing run."""

import hashlib
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from adversarial_seg.cli.seg_train import main
from adversarial_seg.data.phantoms import phantom_data_config, write_skin_phantoms

TINY = {
    "model": {
        "segmentor": {"name": "UNet", "channels": [8, 16], "strides": [2], "num_res_units": 0},
        "discriminator": {"channels": 8, "input_scale": 1.0, "num_layers_d": 2},
    },
    "scheme": "hybrid",
    "train": {"epochs": 1, "batch_size": 4},
    "cv": {"folds": 2},
}


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path) -> sha256 of its bytes."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def skin(tmp_path_factory) -> Path:
    """Six 32 x 32 RGB skin phantoms (folder layout)."""
    return write_skin_phantoms(tmp_path_factory.mktemp("skin") / "skin", cases=6, seed=0, size=(32, 32))


@pytest.fixture(scope="module")
def trained(skin, tmp_path_factory) -> tuple[Path, Path]:
    """(config file, run directory) of a finished tiny run, for the cases about existing runs."""
    base = tmp_path_factory.mktemp("trained")
    config = write_config(base / "tiny.yaml", skin)
    assert main(["--config", str(config), "--output", str(base / "run"), "--no-progress"]) == 0
    return config, base / "run"


def write_config(path: Path, root: Path, **sections) -> Path:
    data = {**phantom_data_config("skin", root), **sections.pop("data", {})}
    body = {**TINY, **sections, "data": {k: v for k, v in data.items() if v is not None}}
    path.write_text(yaml.safe_dump(body))
    return path


def run(argv: list[str], capsys) -> tuple[int, str]:
    code = main([*argv, "--no-progress"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def copy_dataset(skin: Path, target: Path) -> Path:
    shutil.copytree(skin, target)
    return target


# --------------------------------------------------------------------------- config and arguments
# Each case: id, a function (tmp_path, skin) -> argv, the expected fragment of the one error line.


def _config(tmp_path, skin, **sections):
    return ["--config", str(write_config(tmp_path / "c.yaml", skin, **sections)), "--output", str(tmp_path / "run")]


def _with_data(tmp_path, root, **data):
    return _config(tmp_path, root, data=data)


def _empty_dataset(tmp_path, skin):
    for name in ("images", "masks"):
        (tmp_path / "empty" / name).mkdir(parents=True)
    return _with_data(tmp_path, tmp_path / "empty", stratify=None)


def _inner_val_with_one_patient(tmp_path, skin):
    two = write_skin_phantoms(tmp_path / "two", cases=2, seed=0, size=(32, 32))
    return _config(tmp_path, two, data={"stratify": None}, train={"select": "inner_val"})


def _mask_without_image(tmp_path, skin):
    root = copy_dataset(skin, tmp_path / "data")
    next((root / "images").iterdir()).unlink()
    return _with_data(tmp_path, root)


def _non_utf8_name(tmp_path, skin):
    root = copy_dataset(skin, tmp_path / "data")
    for folder in ("images", "masks"):
        os.rename(root / folder / "skin_000.png", os.fsencode(root / folder) + b"/sk\xffin.png")
    return _with_data(tmp_path, root)


def _undeclared_mask_value(tmp_path, skin):
    root = copy_dataset(skin, tmp_path / "data")
    mask = root / "masks" / "skin_000.png"
    array = np.array(Image.open(mask))
    array[0, 0] = 7
    Image.fromarray(array).save(mask)
    return _with_data(tmp_path, root)


def _output_inside_data(tmp_path, skin):
    root = copy_dataset(skin, tmp_path / "data")
    return ["--config", str(write_config(tmp_path / "c.yaml", root)), "--output", str(root / "runs" / "a")]


def _output_is_a_file(tmp_path, skin):
    (tmp_path / "taken").write_text("a user's file")
    return ["--config", str(write_config(tmp_path / "c.yaml", skin)), "--output", str(tmp_path / "taken")]


def _unreadable_splits_file(tmp_path, skin):
    (tmp_path / "splits.json").write_text("[{broken")
    return _config(tmp_path, skin, cv={"folds": 2, "splits_file": str(tmp_path / "splits.json")})


def _yaml_tag(tmp_path, skin):
    payload = tmp_path / "payload_ran"
    return _config(tmp_path, skin) + ["--set", f"train.epochs=!!python/object/apply:os.system ['touch {payload}']"]


CASES = [
    ("missing config file", lambda t, s: ["--config", str(t / "nope.yaml")], 2, "does not exist"),
    ("config not YAML", lambda t, s: ["--config", str(_write(t / "c.yaml", "data: [unclosed"))], 2, "not valid YAML"),
    ("config not a mapping", lambda t, s: ["--config", str(_write(t / "c.yaml", "- a\n- b\n"))], 2, "must hold a mapping"),
    ("unknown key", lambda t, s: _config(t, s, train={"epoch": 3}), 2, "train.epoch"),
    ("value of the wrong type", lambda t, s: _config(t, s, train={"epochs": "many"}), 2, "train.epochs"),
    ("unknown scheme", lambda t, s: _config(t, s, scheme="gan"), 2, "scheme"),
    ("--set without =", lambda t, s: _config(t, s) + ["--set", "train.epochs"], 2, "expected key=value"),
    ("--set into a value", lambda t, s: _config(t, s) + ["--set", "scheme.x=1"], 2, "is a value, not a section"),
    ("--set YAML tag", _yaml_tag, 2, "not plain YAML"),
    ("data root missing", lambda t, s: _with_data(t, t / "absent"), 2, "does not exist"),
    ("data root not set", lambda t, s: ["--config", str(_write(t / "c.yaml", "scheme: ce\n"))], 2, "data.root is not set"),
    ("empty dataset", _empty_dataset, 2, "no cases found"),
    ("mask without image", _mask_without_image, 2, "has no image"),
    ("non-UTF-8 file name", _non_utf8_name, 2, "not valid UTF-8"),
    ("undeclared mask value", _undeclared_mask_value, 2, "not declared in data.labels"),
    ("unknown segmentor", lambda t, s: _config(t, s, model={"segmentor": {"name": "NoSuchNet"}}), 2, "NoSuchNet"),
    ("bad segmentor argument", lambda t, s: _config(t, s, model={"segmentor": {"name": "UNet", "wings": 2}}), 2, "model.segmentor"),
    ("discriminator too deep", lambda t, s: _config(t, s, model={**TINY["model"], "discriminator": {"num_layers_d": 6}}), 2, "model.discriminator"),
    ("unknown specificity region", lambda t, s: _config(t, s, metrics={"specificity_region": "gland"}), 2, "metrics.specificity_region"),
    ("data.size of 3D for 2D images", lambda t, s: _with_data(t, s, size=[32, 32, 32]), 2, "data.size"),
    ("more folds than patients", lambda t, s: _config(t, s, cv={"folds": 9}), 2, "cv.folds"),
    ("inner_val with one training patient", _inner_val_with_one_patient, 2, "inner_val"),
    ("more strata folds than members", lambda t, s: _config(t, s, cv={"folds": 5}), 2, "data.stratify"),
    ("unreadable cv.splits_file", _unreadable_splits_file, 2, "splits.json"),
    ("output inside the dataset", _output_inside_data, 2, "inside the dataset"),
    ("output is a file", _output_is_a_file, 2, "is a file"),
    ("output cannot be created", lambda t, s: _config(t, s)[:2] + ["--output", "/proc/adversarial_seg_run"], 2, "cannot be created"),
    ("--fold out of range", lambda t, s: _config(t, s) + ["--fold", "5"], 2, "--fold 5"),
    ("--device cuda without a GPU", lambda t, s: _config(t, s) + ["--device", "cuda"], 2, "--device cuda"),
]  # fmt: skip


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("make_argv, code, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_up_front(make_argv, code, fragment, tmp_path, skin, capsys):
    """Exit 2, one error naming the key or file, the dataset untouched and no run written."""
    if fragment == "--device cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    before = snapshot(skin)
    argv = make_argv(tmp_path, skin)
    exit_code, err = run(argv, capsys)
    assert exit_code == code, err
    assert fragment in err, err
    lines = errors(err)
    listed = re.match(r"error: (\d+) problems? in the dataset:$", lines[0])  # a heading, then one line each
    assert len(lines) == (1 + int(listed[1]) if listed else 1), lines
    assert snapshot(skin) == before
    assert not (tmp_path / "run" / "splits.json").exists()
    assert not (tmp_path / "payload_ran").exists()
    assert not (tmp_path / "taken").exists() or (tmp_path / "taken").read_text() == "a user's file"


# --------------------------------------------------------------------------- existing runs


def test_a_run_with_another_config_is_not_overwritten(trained, skin, tmp_path, capsys):
    """A different config into an existing run: exit 2, the run unchanged."""
    _, run_dir = trained
    before = snapshot(run_dir)
    other = write_config(tmp_path / "other.yaml", skin, train={"epochs": 2, "batch_size": 4})
    code, err = run(["--config", str(other), "--output", str(run_dir)], capsys)
    assert code == 2 and "different config" in err
    assert snapshot(run_dir) == before


def test_a_corrupt_config_yaml_in_the_run_is_named(trained, tmp_path, capsys):
    """The run's config.yaml cut in half: exit 2 naming it, nothing else touched."""
    config, run_dir = trained
    copy = shutil.copytree(run_dir, tmp_path / "run")
    text = (copy / "config.yaml").read_text()
    (copy / "config.yaml").write_text(text[: len(text) // 3] + "\n  - [")
    before = snapshot(copy)
    code, err = run(["--config", str(config), "--output", str(copy)], capsys)
    assert code == 2 and "config.yaml cannot be read as YAML" in err, err
    assert snapshot(copy) == before


def test_a_corrupt_splits_json_in_the_run_is_named(trained, tmp_path, capsys):
    """The run's splits.json truncated: exit 2 naming it."""
    config, run_dir = trained
    copy = shutil.copytree(run_dir, tmp_path / "run")
    (copy / "splits.json").write_text('[{"fold": 0, "train"')
    before = snapshot(copy)
    code, err = run(["--config", str(config), "--output", str(copy), "--resume"], capsys)
    assert code == 2 and "splits.json" in err, err
    assert snapshot(copy) == before


def _unfinished(trained, tmp_path) -> tuple[Path, Path]:
    """A copy of the run whose fold 1 has a checkpoint but did not finish."""
    config, run_dir = trained
    copy = shutil.copytree(run_dir, tmp_path / "run")
    (copy / "fold_1" / "fold_done.json").unlink()
    return config, copy


def test_an_unfinished_fold_needs_resume(trained, tmp_path, capsys):
    """Unfinished fold without --resume: exit 2 pointing at --resume, nothing changed."""
    config, copy = _unfinished(trained, tmp_path)
    before = snapshot(copy)
    code, err = run(["--config", str(config), "--output", str(copy)], capsys)
    assert code == 2 and "--resume" in err
    assert snapshot(copy) == before


def test_a_tampered_checkpoint_is_refused_before_training(trained, tmp_path, capsys):
    """A checkpoint carrying a pickle payload: exit 2 naming it, the payload never runs."""
    config, copy = _unfinished(trained, tmp_path)
    marker = tmp_path / "payload_ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"modules": Payload()}, copy / "fold_1" / "checkpoint_last.pt")
    before = snapshot(copy)
    code, err = run(["--config", str(config), "--output", str(copy), "--resume"], capsys)
    assert code == 2 and "checkpoint_last.pt" in err and "not loaded" in err, err
    assert not marker.exists()
    assert snapshot(copy) == before


def test_a_truncated_checkpoint_is_refused_before_training(trained, tmp_path, capsys):
    """A checkpoint cut short: exit 2 naming it and saying how to go on."""
    config, copy = _unfinished(trained, tmp_path)
    checkpoint = copy / "fold_1" / "checkpoint_last.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    code, err = run(["--config", str(config), "--output", str(copy), "--resume"], capsys)
    assert code == 2 and "cannot be read" in err and "checkpoint_last.pt" in err, err


# --------------------------------------------------------------------------- legal but useless, or failing


def test_masks_without_foreground_train_with_a_warning(skin, tmp_path, capsys):
    """All-background masks are legal: exit 0, but a warning says the model can learn nothing."""
    root = copy_dataset(skin, tmp_path / "data")
    for mask in (root / "masks").iterdir():
        Image.fromarray(np.zeros_like(np.array(Image.open(mask)))).save(mask)
    code = main(
        ["--config", str(write_config(tmp_path / "c.yaml", root)), "--output", str(tmp_path / "run"), "--no-progress"]
    )
    err = capsys.readouterr().err
    assert code == 0
    warnings = [line for line in err.splitlines() if line.startswith("warning:") and "CPU is busy" not in line]
    assert warnings == [
        f"warning: every mask in {root} is background only; the model can only learn to predict background "
        "(check data.labels and data.mask_threshold)",
        "warning: run: class 'lesion' is absent from every reference of the 6 cases: nothing to learn or score",
    ]  # the data's warning before training, the report's after it


def test_a_failing_fold_is_named_and_the_others_go_on(skin, tmp_path, capsys):
    """A fold whose loss becomes NaN fails alone: exit 1, each failed fold named, no traceback."""
    config = write_config(tmp_path / "c.yaml", skin, train={"epochs": 1, "batch_size": 4, "lr_g": 1e30, "lr_d": 1e30})
    code, err = run(["--config", str(config), "--output", str(tmp_path / "run")], capsys)
    lines = errors(err)
    assert code == 1, err
    assert lines and all(" fold " in line and "failed" in line for line in lines), lines
