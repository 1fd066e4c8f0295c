"""seg-predict's bad inputs (issue 12): each case is one command line, its exit code and its sentences.

Every case asserts the exit code, exactly the expected ``error:`` lines (one sentence each, no
traceback) and that nothing already in the run, the inputs, the references or the output folder
changed; with exit 2 nothing at all was written.
"""

from __future__ import annotations

import errno
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from adversarial_seg.cli.seg_predict import main as predict

from .conftest import (
    assert_kept,
    check_messages,
    copy_run,
    make_read_only,
    snapshot,
    truncate,
    write_tampered_checkpoint,
)


@dataclass
class Workspace:
    """A copy of a trained run, one input case, its reference and an output folder holding a user's file."""

    root: Path
    run: Path
    images: Path
    refs: Path
    out: Path
    data_root: Path
    marker: Path  # created if a tampered checkpoint's payload ran

    def template(self) -> dict[str, str]:
        return {k: str(v) for k, v in vars(self).items()}


@dataclass
class Case:
    id: str
    args: list[str]  # {run} {images} {refs} {out} {root} are filled in; --model/--input/--output default to ours
    code: int
    errors: list  # a fragment of each expected `error:` line, in order (a tuple: several in one line)
    setup: Callable[[Workspace], None] | None = None
    patch: Callable[[pytest.MonkeyPatch], None] | None = None
    model: str = "prostate"
    new_outputs: bool = False  # exit 1 after predicting some cases: new files in the output folder only


def workspace(tmp_path: Path, tiny, model: str) -> Workspace:
    run = copy_run(tiny, tmp_path / "run")
    images, refs, out = tmp_path / "images", tmp_path / "refs", tmp_path / "out"
    for folder in (images, refs, out):
        folder.mkdir()
    if model == "prostate":
        for channel in (0, 1):
            name = f"prostate_000_000{channel}.nii.gz"
            shutil.copy(tiny.data_root / "imagesTr" / name, images / name)
        shutil.copy(tiny.data_root / "labelsTr" / "prostate_000.nii.gz", refs / "prostate_000.nii.gz")
    else:
        shutil.copy(tiny.data_root / "images" / "skin_000.png", images / "skin_000.png")
    (out / "keep.txt").write_text("a user's file in the output folder\n")
    return Workspace(tmp_path, run, images, refs, out, tiny.data_root, tmp_path / "payload_ran")


# ----------------------------------------------------------------------------- setups
def copy_case(ws: Workspace, case: str) -> None:
    for channel in (0, 1):
        name = f"{case}_000{channel}.nii.gz"
        shutil.copy(ws.data_root / "imagesTr" / name, ws.images / name)


def write_file(relative: str, content: bytes) -> Callable[[Workspace], None]:
    def setup(ws: Workspace) -> None:
        path = ws.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)

    return setup


def link_to_images(ws: Workspace) -> None:
    (ws.root / "link").symlink_to(ws.images, target_is_directory=True)


def replace_channel(ws: Workspace, transform: Callable[[np.ndarray], np.ndarray], name: str) -> None:
    """Write ``name`` (a channel file or a whole case) from prostate_000's T2 changed by ``transform``."""
    image = nib.load(ws.images / "prostate_000_0000.nii.gz")
    data = transform(np.asarray(image.dataobj, dtype=np.float32))
    nib.save(nib.Nifti1Image(data, image.affine), ws.images / name)


def only_bad_case(ws: Workspace) -> None:
    for path in ws.images.iterdir():
        path.unlink()


def three_channels(ws: Workspace) -> None:
    replace_channel(ws, lambda a: np.stack([a] * 3, axis=-1), "threechannels.nii.gz")
    for channel in (0, 1):
        (ws.images / f"prostate_000_000{channel}.nii.gz").unlink()


def nan_image(ws: Workspace) -> None:
    def with_nan(array: np.ndarray) -> np.ndarray:
        array = array.copy()
        array[3, 3, 1] = np.nan
        return array

    replace_channel(ws, with_nan, "prostate_000_0000.nii.gz")


def empty_channel(ws: Workspace) -> None:
    (ws.images / "prostate_000_0000.nii.gz").write_bytes(b"")


def truncated_image(ws: Workspace) -> None:
    truncate(ws.images / "prostate_000_0000.nii.gz")


def volume_for_2d_model(ws: Workspace) -> None:
    only_bad_case(ws)
    nib.save(nib.Nifti1Image(np.zeros((40, 56, 6), np.float32), np.eye(4)), ws.images / "volume.nii.gz")


def png_for_volume_model(ws: Workspace) -> None:
    only_bad_case(ws)
    Image.fromarray(np.zeros((48, 40), np.uint8)).save(ws.images / "slice.png")


def reference_on_other_grid(ws: Workspace) -> None:
    reference = ws.refs / "prostate_000.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((20, 20, 5), np.uint8), np.eye(4)), reference)


def no_reference(ws: Workspace) -> None:
    (ws.refs / "prostate_000.nii.gz").rename(ws.refs / "other_case.nii.gz")


def second_case_without_reference(ws: Workspace) -> None:
    copy_case(ws, "prostate_001")


def existing_output_damaged(ws: Workspace) -> None:
    (ws.out / "prostate_000.nii.gz").write_bytes(b"")  # skipped (it exists), then read to be scored


def tampered_checkpoint(ws: Workspace) -> None:
    write_tampered_checkpoint(ws.run / "fold_0" / "checkpoint_last.pt", ws.marker)


def truncated_checkpoint(ws: Workspace) -> None:
    truncate(ws.run / "fold_1" / "checkpoint_last.pt")


def missing_checkpoint(ws: Workspace) -> None:
    (ws.run / "fold_0" / "checkpoint_last.pt").unlink()


def foreign_checkpoint(ws: Workspace) -> None:
    torch.save({"segmentor": {"weight": torch.zeros(3)}}, ws.run / "fold_0" / "checkpoint_last.pt")


def run_file(relative: str, text: str) -> Callable[[Workspace], None]:
    def setup(ws: Workspace) -> None:
        (ws.run / relative).write_text(text)

    return setup


def misspelt_config_key(ws: Workspace) -> None:
    config = yaml.safe_load((ws.run / "config.yaml").read_text())
    config["train"]["epoch"] = config["train"].pop("epochs")
    (ws.run / "config.yaml").write_text(yaml.safe_dump(config))


def read_only_output(ws: Workspace) -> None:
    make_read_only(ws.out)


def disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(path, labels, props):
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(path).parent / ".x.1234.partial.nii.gz"))

    monkeypatch.setattr("adversarial_seg.seg.predict.write_label", full)


def ctrl_c(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("adversarial_seg.seg.predict.predict_native", interrupt)


def no_gpu_or_skip(ws: Workspace) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: --device cuda is valid here")


# ----------------------------------------------------------------------------- the table
INSIDE = "is or lies inside the --input folder"
# fmt: off
CASES = [
    Case("output_is_input", ["--output", "{images}"], 2, [INSIDE]),
    Case("output_is_input_overwrite", ["--output", "{images}", "--overwrite"], 2, [INSIDE]),
    Case("output_inside_input", ["--output", "{images}/predictions"], 2, [INSIDE]),
    Case("output_links_to_input", ["--output", "{root}/link"], 2, [INSIDE], setup=link_to_images),
    Case("output_is_folder_of_input_file",
         ["--input", "{images}/prostate_000_0000.nii.gz", "{images}/prostate_000_0001.nii.gz", "--output", "{images}"],
         2, ["is the folder holding the --input file"]),
    Case("output_is_labels", ["--labels", "{refs}", "--output", "{refs}"], 2, ["is the --labels folder"]),
    Case("output_is_file", ["--output", "{root}/notes.txt"], 2, ["notes.txt is a file; pass a folder"],
         setup=write_file("notes.txt", b"notes")),
    Case("output_under_file", ["--output", "{root}/notes.txt/out"], 2, ["notes.txt is a file, not a folder"],
         setup=write_file("notes.txt", b"notes")),
    Case("output_read_only", [], 2, ["is not writable (permission denied)"], setup=read_only_output),
    Case("tampered_checkpoint", [], 2, ["fold_0/checkpoint_last.pt holds objects other than weights"],
         setup=tampered_checkpoint),
    Case("truncated_checkpoint", [], 2, ["fold_1/checkpoint_last.pt cannot be read"], setup=truncated_checkpoint),
    Case("bad_checkpoint_new_output", ["--output", "{root}/new_out"], 2, ["fold_1/checkpoint_last.pt cannot be read"],
         setup=truncated_checkpoint),
    Case("missing_checkpoint", [], 2, ["fold_0/checkpoint_last.pt does not exist"], setup=missing_checkpoint),
    Case("foreign_checkpoint", [], 2, ["does not hold this run's segmentor"], setup=foreign_checkpoint),
    Case("corrupt_config_yaml", [], 2, ["config.yaml cannot be read as YAML"],
         setup=run_file("config.yaml", "data: [unclosed\n  : :")),
    Case("config_yaml_not_a_mapping", [], 2, ["config.yaml does not hold a run's config"],
         setup=run_file("config.yaml", "- a\n- b\n")),
    Case("config_yaml_unknown_key", [], 2, [("config.yaml: unknown key 'train.epoch'", "did you mean 'train.epochs'?")],
         setup=misspelt_config_key),
    Case("corrupt_data_plan", [], 2, ["data_plan.json cannot be read as JSON"],
         setup=run_file("data_plan.json", '{"labels": ')),
    Case("data_plan_wrong_content", [], 2, ["data_plan.json does not hold a data plan"],
         setup=run_file("data_plan.json", '{"file_dims": 3}')),
    Case("corrupt_fold_done", [], 2, ["fold_1/fold_done.json cannot be read as JSON"],
         setup=run_file("fold_1/fold_done.json", "")),
    Case("corrupt_postprocessing", [], 2, ["postprocessing.json: 'keep_largest_component' must map"],
         setup=run_file("report/postprocessing.json", json.dumps({"keep_largest_component": {"liver": True}}))),
    Case("not_a_run", ["--model", "{images}"], 2, ["is not a run directory (no config.yaml)"]),
    Case("folds_unfinished", ["--folds", "0,3"], 2, ["fold(s) [3] not finished"]),
    Case("folds_text", ["--folds", "first"], 2, ["give 'all' or fold numbers like 0,2"]),
    Case("labels_not_a_folder", ["--labels", "{root}/no_refs"], 2,
         ["no_refs is not a folder; pass the folder of reference label maps"]),
    Case("missing_input", ["--input", "{root}/missing"], 2, ["missing does not exist"]),
    Case("case_given_twice", ["--input", "{images}", "{images}/prostate_000_0000.nii.gz"], 2, ["is given twice"]),
    Case("device_cuda_without_gpu", ["--device", "cuda"], 2, ["no CUDA GPU is visible"], setup=no_gpu_or_skip),
    Case("labels_nothing_lines_up", ["--labels", "{refs}"], 1,
         ["not scored: reference", "no case was scored against --labels"],
         setup=reference_on_other_grid, new_outputs=True),
    Case("labels_no_reference", ["--labels", "{refs}"], 1,
         ["not scored: no reference prostate_000.<ending>", "no case was scored against --labels"],
         setup=no_reference, new_outputs=True),
    Case("labels_one_case_unscored", ["--labels", "{refs}"], 1,
         [("case 'prostate_001' (prostate_001_0000.nii.gz, prostate_001_0001.nii.gz in", "no reference prostate_001.")],
         setup=second_case_without_reference, new_outputs=True),
    Case("existing_output_damaged", ["--labels", "{refs}"], 1, ["its existing output"],
         setup=existing_output_damaged),
    Case("volume_to_2d_model", [], 1, ["volume.nii.gz: is 3D but the model was trained on 2D images"],
         setup=volume_for_2d_model, model="skin"),
    Case("png_to_volume_model", [], 1, ["slice.png: is 2D but the model was trained on 3D images"],
         setup=png_for_volume_model),
    Case("wrong_channel_count", [], 1, ["threechannels.nii.gz: has 3 channel(s) but the model takes 2"],
         setup=three_channels),
    Case("empty_file", [], 1, ["prostate_000_0000.nii.gz is empty (0 bytes)"], setup=empty_channel),
    Case("nan_image", [], 1, ["holds NaN or Inf values"], setup=nan_image),
    Case("truncated_image", [], 1, ["prostate_000_0000.nii.gz cannot be read"], setup=truncated_image),
    Case("disk_full", [], 1, ["out/prostate_000.nii.gz: the disk is full"], patch=disk_full),
    Case("ctrl_c", [], 1, ["interrupted; the label maps written so far are complete"], patch=ctrl_c),
]
# fmt: on


def command_line(case: Case, ws: Workspace) -> list[str]:
    args = list(case.args)
    for option, default in (("--model", "{run}"), ("--input", "{images}"), ("--output", "{out}")):
        if option not in args:
            args = [option, default, *args]
    if "--device" not in args:
        args += ["--device", "cpu"]
    return [a.format(**ws.template()) for a in args] + ["--no-progress"]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, request, tmp_path, capsys, monkeypatch):
    tiny = request.getfixturevalue("skin_run" if case.model == "skin" else "prostate_run")
    ws = workspace(tmp_path, tiny, case.model)
    if case.setup:
        case.setup(ws)
    if case.patch:
        case.patch(monkeypatch)
    before = snapshot(tmp_path)
    try:
        code = predict(command_line(case, ws))
    finally:
        ws.out.chmod(0o755)
    captured = capsys.readouterr()
    assert code == case.code, captured.err
    check_messages(captured.err, captured.out, case.errors)
    assert not ws.marker.exists(), "the tampered checkpoint's payload ran"
    assert_kept(before, snapshot(tmp_path), new_allowed_under=("out/",) if case.new_outputs else ())


def test_the_table_is_large_enough():
    assert len({c.id for c in CASES}) == len(CASES) >= 15
