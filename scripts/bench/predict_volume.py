"""Seconds and peak memory of ``seg-predict`` on one 512 x 512 x 64 volume, beside bare MONAI.

    python scripts/bench/predict_volume.py [--device cpu|cuda] [--threads 2] [--repeats 2]

The model is the segmentor and data plan of ``configs/prostate_msd.yaml`` (MSD prostate: T2 + ADC,
2D axial slices resized to 320 x 320, UNet 16..256 channels), untrained: timing and memory do
not depend on the weights. The input is a synthetic two-channel 4D NIfTI volume, 0.4 x 0.4 x
1.5 mm. Each measurement runs in its own process (``resource`` peak RSS of that process):

* ``seg-predict`` with ``--no-tta`` and ``--tta`` (4 in-plane mirrorings): load, reorient,
  resize, z-score, ``SliceInferer``, invert onto the native grid, argmax, write. Seconds per
  case as the command reports it (the volume's own time, without Python start-up and imports).
* bare MONAI ``sliding_window_inference`` on the same model: (a) on the resized 320 x 320 slices
  (the network's work alone, the floor), (b) on the native 512 x 512 slices with 320 px windows
  (what a user of bare MONAI would run). Volume already in memory; the forward passes only
  (no argmax, no reading or writing), so the ratio is the whole command against the network.

Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHAPE = (512, 512, 64)
SPACING = (0.4, 0.4, 1.5)


def make_run(folder: Path) -> Path:
    """A one-fold run directory with the prostate config's model and plan (untrained weights)."""
    import torch

    from adversarial_seg.config import load_config
    from adversarial_seg.data.labels import LabelSet
    from adversarial_seg.data.transforms import DataPlan
    from adversarial_seg.provenance import write_resolved_config
    from adversarial_seg.seg.networks import build_segmentor
    from adversarial_seg.seg.run import FOLD_DONE, write_data_plan

    config = load_config(REPO / "configs/prostate_msd.yaml", ["data.root=/unused"])
    plan = DataPlan(LabelSet.from_config(config.data), file_dims=3, model_dims=2, slice_axis=2,
                    size=tuple(config.data.size), spacing=None, patch_size=None, in_channels=2)  # fmt: skip
    run = folder / "run"
    (run / "fold_0").mkdir(parents=True)
    write_resolved_config(config, run / "config.yaml", seed=0)
    write_data_plan(plan, run)
    torch.manual_seed(0)
    segmentor = config.model.segmentor
    model = build_segmentor(segmentor.name, segmentor.kwargs(), 2, 2, plan.labels.num_classes)
    torch.save({"modules": {"segmentor": model.state_dict()}}, run / "fold_0" / "checkpoint_last.pt")
    (run / "fold_0" / FOLD_DONE).write_text(json.dumps({"fold": 0}))
    return run


def make_volume(folder: Path) -> Path:
    import nibabel as nib
    import numpy as np

    rng = np.random.default_rng(0)
    volume = rng.normal(300.0, 80.0, size=(*SHAPE, 2)).astype(np.float32)
    affine = np.diag([*SPACING, 1.0])
    path = folder / "volume.nii.gz"
    nib.save(nib.Nifti1Image(volume, affine), path)
    return path


def measure(code: str, threads: int) -> dict:
    """Run ``code`` in a fresh interpreter; it prints JSON with 'seconds'. Adds its peak RSS."""
    wrapper = (
        f"import json, resource, torch; torch.set_num_threads({threads})\n{code}\n"
        "result['peak_rss_gb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20\n"
        "print('RESULT', json.dumps(result))"
    )
    out = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, cwd=REPO)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.split("RESULT", 1)[1])


def seg_predict(run: Path, volume: Path, output: Path, tta: bool, device: str) -> str:
    args = ["--model", str(run), "--input", str(volume), "--output", str(output), "--overwrite",
            "--no-progress", "--device", device, "--tta" if tta else "--no-tta"]  # fmt: skip
    return (
        "import io, contextlib\nfrom adversarial_seg.cli.seg_predict import main\n"
        "buffer = io.StringIO()\nwith contextlib.redirect_stdout(buffer):\n"
        f"    code = main({args!r})\n"
        "assert code == 0, buffer.getvalue()\n"
        "import re\nseconds = float(re.search(r'([0-9.]+) s per predicted case', buffer.getvalue()).group(1))\n"
        "result = {'seconds': seconds}"
    )


def bare_monai(run: Path, volume: Path, resized: bool, device: str) -> str:
    return f"""
import time, nibabel as nib, numpy as np, torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference
from adversarial_seg.config import config_from_mapping
from adversarial_seg.provenance import read_resolved_config
from adversarial_seg.seg.networks import build_segmentor
config = config_from_mapping(read_resolved_config({str(run / "config.yaml")!r})[0])
s = config.model.segmentor
model = build_segmentor(s.name, s.kwargs(), 2, 2, 3)
model.load_state_dict(torch.load({str(run / "fold_0/checkpoint_last.pt")!r})['modules']['segmentor'])
device = torch.device({device!r})
model = model.to(device).eval()
data = np.asarray(nib.load({str(volume)!r}).dataobj, dtype=np.float32)       # (X, Y, Z, C)
data = (data - data.mean(axis=(0, 1, 2))) / data.std(axis=(0, 1, 2))
slices = torch.from_numpy(np.ascontiguousarray(data.transpose(2, 3, 0, 1)))  # (Z, C, X, Y)
if {resized!r}:
    slices = F.interpolate(slices, size=(320, 320), mode="bilinear", antialias=True)
slices = slices.to(device)
started = time.perf_counter()
with torch.no_grad(), torch.autocast(device.type, enabled=device.type == "cuda"):
    out = sliding_window_inference(slices, (320, 320), 4, model, overlap=0.25, mode="gaussian")
if device.type == "cuda":
    torch.cuda.synchronize()
result = {{'seconds': time.perf_counter() - started}}  # the forward passes only: no argmax, no I/O
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="runs per row; the fastest is reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run, volume = make_run(folder), make_volume(folder)
        rows = [
            ("seg-predict, no TTA", seg_predict(run, volume, folder / "out", False, args.device)),
            ("seg-predict, mirror TTA (4 passes)", seg_predict(run, volume, folder / "out", True, args.device)),
            ("bare sliding_window_inference, resized 320 x 320 slices", bare_monai(run, volume, True, args.device)),
            ("bare sliding_window_inference, native 512 x 512 slices", bare_monai(run, volume, False, args.device)),
        ]
        results = {}
        for label, code in rows:
            runs = [measure(code, args.threads) for _ in range(args.repeats)]
            results[label] = min(runs, key=lambda r: r["seconds"])
            print(f"{label}: {results[label]}", file=sys.stderr, flush=True)
    floor = results[rows[2][0]]["seconds"]
    print(f"\n{SHAPE[0]} x {SHAPE[1]} x {SHAPE[2]} volume, 2 channels, device {args.device}, "
          f"{args.threads} threads, fastest of {args.repeats}\n")  # fmt: skip
    print("| path | s / volume | x bare (resized) | peak RSS (GB) |\n|---|---|---|---|")
    for label, _ in rows:
        r = results[label]
        print(f"| {label} | {r['seconds']:.1f} | {r['seconds'] / floor:.2f} | {r['peak_rss_gb']:.2f} |")


if __name__ == "__main__":
    main()
