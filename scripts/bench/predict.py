"""Seconds and peak memory of ``seg-predict`` per volume, against the bare forward passes and against
the same pipeline written by hand with MONAI.

    python scripts/bench/predict.py [--cases synthetic_512 prostate_zonal] [--device cpu|cuda] [--threads 2] [--repeats 2]

Cases (untrained weights: timing and memory do not depend on them):

* ``synthetic_512``: a synthetic two-channel 4D NIfTI volume, 512 x 512 x 64 at 0.4 x 0.4 x 1.5 mm,
  with the model and data plan of ``configs/prostate_msd.yaml`` (T2 + ADC, 2D axial slices
  resized to 320 x 320, UNet 16..256 channels, 3 classes);
* ``prostate_zonal``: the real volume ``Case00`` of ../shared/data/prostate_zonal (320 x 320 x 15
  at 0.6 x 0.6 x 4 mm) with the model and plan of ``configs/prostate.yaml`` (0.75 mm in-plane,
  the central 160 x 160 pixels); skipped with a message when the shared data are absent.

Rows, each in a fresh process (``resource`` peak RSS of that process), the fastest of ``--repeats``:

* ``seg_predict``: the command with ``--no-tta``, its own seconds per case (load, reorient,
  resample, z-score, ``SliceInferer``, invert onto the native grid, argmax, label values, write);
* ``hand_monai``: the same steps written with MONAI's dictionary transforms as its tutorials do
  (LoadImaged, EnsureChannelFirstd, Orientationd, Spacingd or Resized, ResizeWithPadOrCropd,
  NormalizeIntensityd, SliceInferer, softmax, Invertd, AsDiscreted, SaveImaged), timed from the
  file name to the written label map;
* ``bare_forward``: the network's forward passes alone, through ``SliceInferer``, on slices
  already preprocessed in memory (the floor).

The effective speed is the forward FLOPs (``torch.utils.flop_counter`` on one slice, times the
slices) over each row's seconds, as a share of a same-process fp32 matmul's GFLOP/s.
Targets (issue 18): seg_predict <= 0.9 x hand_monai and <= 1.5 x bare_forward.
Prints a Markdown table, then one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, SHARED_DATA, machine, print_result

SYNTHETIC_SHAPE = (512, 512, 64)
SYNTHETIC_SPACING = (0.4, 0.4, 1.5)
PROSTATE_CASE = SHARED_DATA / "prostate_zonal" / "imagesTr" / "Case00_0000.nii.gz"


def make_run(folder: Path, config_name: str, in_channels: int, size, spacing) -> Path:
    """A one-fold run directory with the config's model and a 2D-slice data plan (untrained weights)."""
    import torch

    from adversarial_seg.config import load_config
    from adversarial_seg.data.labels import LabelSet
    from adversarial_seg.data.transforms import DataPlan
    from adversarial_seg.provenance import write_resolved_config
    from adversarial_seg.seg.networks import build_segmentor
    from adversarial_seg.seg.run import FOLD_DONE, write_data_plan

    config = load_config(REPO / "configs" / config_name, ["data.root=/unused"])
    plan = DataPlan(LabelSet.from_config(config.data), file_dims=3, model_dims=2, slice_axis=2,
                    size=tuple(size), spacing=spacing, patch_size=None, in_channels=in_channels)  # fmt: skip
    run = folder / config_name.removesuffix(".yaml")
    (run / "fold_0").mkdir(parents=True)
    write_resolved_config(config, run / "config.yaml", seed=0)
    write_data_plan(plan, run)
    torch.manual_seed(0)
    segmentor = config.model.segmentor
    model = build_segmentor(segmentor.name, segmentor.kwargs(), 2, in_channels, plan.labels.num_classes)
    torch.save({"modules": {"segmentor": model.state_dict()}}, run / "fold_0" / "checkpoint_last.pt")
    (run / "fold_0" / FOLD_DONE).write_text(json.dumps({"fold": 0}))
    return run


def make_synthetic_volume(folder: Path) -> Path:
    import nibabel as nib
    import numpy as np

    rng = np.random.default_rng(0)
    volume = rng.normal(300.0, 80.0, size=(*SYNTHETIC_SHAPE, 2)).astype(np.float32)
    path = folder / "synthetic_512.nii.gz"
    nib.save(nib.Nifti1Image(volume, np.diag([*SYNTHETIC_SPACING, 1.0])), path)
    return path


def measure(code: str, threads: int) -> dict:
    """Run ``code`` in a fresh interpreter; it sets ``result`` with 'seconds'. Adds its peak RSS."""
    wrapper = (
        f"import json, resource, torch; torch.set_num_threads({threads})\n{code}\n"
        "result['peak_rss_gb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20\n"
        "print('RESULT', json.dumps(result))"
    )
    out = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, cwd=REPO)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.split("RESULT", 1)[1])


def seg_predict_code(run: Path, volume: Path, output: Path, device: str) -> str:
    args = ["--model", str(run), "--input", str(volume), "--output", str(output), "--overwrite",
            "--no-progress", "--device", device, "--no-tta"]  # fmt: skip
    return (
        "import io, contextlib, re\nfrom adversarial_seg.cli.seg_predict import main\n"
        "buffer = io.StringIO()\nwith contextlib.redirect_stdout(buffer):\n"
        f"    code = main({args!r})\n"
        "assert code == 0, buffer.getvalue()\n"
        "seconds = float(re.search(r'([0-9.]+) s per predicted case', buffer.getvalue()).group(1))\n"
        "result = {'seconds': seconds}"
    )


MODEL_CODE = """
import time, torch
from monai.inferers import SliceInferer
from adversarial_seg.config import config_from_mapping
from adversarial_seg.provenance import read_resolved_config
from adversarial_seg.seg.networks import build_segmentor
config = config_from_mapping(read_resolved_config({config!r})[0])
s = config.model.segmentor
model = build_segmentor(s.name, s.kwargs(), 2, {in_channels}, 3)
model.load_state_dict(torch.load({weights!r}, weights_only=True)['modules']['segmentor'])
device = torch.device({device!r})
model = model.to(device).eval()
inferer = SliceInferer(roi_size={roi!r}, sw_batch_size=4, overlap=0.25, mode="gaussian", spatial_dim=2, progress=False)
"""


def preprocessing_code(size, spacing) -> str:
    """The hand-written MONAI preprocessing of the plan: RAS, then spacing and crop / pad, or resize."""
    resample = (
        f"Spacingd('image', pixdim={tuple(spacing)!r}, mode='bilinear'), "
        f"ResizeWithPadOrCropd('image', spatial_size=({size[0]}, {size[1]}, -1))"
        if spacing
        else f"Resized('image', spatial_size=({size[0]}, {size[1]}, -1), mode='bilinear', anti_aliasing=True)"
    )
    return f"""
from monai.transforms import (AsDiscreted, Compose, EnsureChannelFirstd, Invertd, LoadImaged, NormalizeIntensityd,
    Orientationd, ResizeWithPadOrCropd, Resized, SaveImaged, Spacingd)
pre = Compose([LoadImaged('image', image_only=True), EnsureChannelFirstd('image'), Orientationd('image', axcodes='RAS'),
    {resample}, NormalizeIntensityd('image', channel_wise=True)])
"""


def model_code(run: Path, in_channels: int, size, device: str) -> str:
    return MODEL_CODE.format(config=str(run / "config.yaml"), weights=str(run / "fold_0/checkpoint_last.pt"),
                             in_channels=in_channels, device=device, roi=tuple(size))  # fmt: skip


def hand_monai_code(run: Path, volume: Path, output: Path, in_channels: int, size, spacing, device: str) -> str:
    return (
        model_code(run, in_channels, size, device)
        + preprocessing_code(size, spacing)
        + f"""
post = Compose([Invertd('pred', transform=pre, orig_keys='image', nearest_interp=False),
    AsDiscreted('pred', argmax=True),
    SaveImaged('pred', output_dir={str(output)!r}, output_postfix='hand', separate_folder=False, resample=False,
               output_dtype=torch.uint8, print_log=False)])
started = time.perf_counter()
data = pre({{'image': {str(volume)!r}}})
with torch.inference_mode():
    logits = inferer(data['image'].unsqueeze(0).to(device), model)
data['pred'] = torch.softmax(logits[0].float(), 0).cpu()
post(data)
result = {{'seconds': time.perf_counter() - started}}
"""
    )


def bare_forward_code(run: Path, volume: Path, in_channels: int, size, spacing, device: str) -> str:
    return (
        model_code(run, in_channels, size, device)
        + preprocessing_code(size, spacing)
        + f"""
from torch.utils.flop_counter import FlopCounterMode
x = pre({{'image': {str(volume)!r}}})['image'].as_tensor().unsqueeze(0).to(device)
with torch.inference_mode():
    inferer(x, model)  # warm-up
    started = time.perf_counter()
    inferer(x, model)
    if device.type == 'cuda':
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    counter = FlopCounterMode(display=False)
    with counter:
        model(x[..., 0])
flops = counter.get_total_flops() * x.shape[-1]
a = torch.randn(2048, 2048, device=device)
with torch.inference_mode():
    a @ a
    t0 = time.perf_counter()
    for _ in range(5):
        a @ a
    if device.type == 'cuda':
        torch.cuda.synchronize()
    matmul_gflops = 5 * 2 * 2048**3 / (time.perf_counter() - t0) / 1e9
result = {{'seconds': seconds, 'forward_gflop': flops / 1e9, 'slices': int(x.shape[-1]), 'matmul_gflops': matmul_gflops}}
"""
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["synthetic_512", "prostate_zonal"],
                        choices=["synthetic_512", "prostate_zonal"])  # fmt: skip
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="runs per row; the fastest is reported")
    args = parser.parse_args()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for case in args.cases:
            if case == "synthetic_512":
                volume, setup = make_synthetic_volume(folder), ("prostate_msd.yaml", 2, (320, 320), None)
            elif PROSTATE_CASE.is_file():
                volume, setup = PROSTATE_CASE, ("prostate.yaml", 1, (160, 160), (0.75, 0.75, 0.0))
            else:
                print(f"{PROSTATE_CASE} is absent: the prostate_zonal case is skipped", file=sys.stderr)
                continue
            config_name, channels, size, spacing = setup
            run = make_run(folder, config_name, channels, size, spacing)
            out = folder / f"out_{case}"
            rows = {
                "seg_predict": seg_predict_code(run, volume, out, args.device),
                "hand_monai": hand_monai_code(run, volume, out, channels, size, spacing, args.device),
                "bare_forward": bare_forward_code(run, volume, channels, size, spacing, args.device),
            }
            measured = {}
            for row, code in rows.items():
                runs = [measure(code, args.threads) for _ in range(args.repeats)]
                measured[row] = min(runs, key=lambda r: r["seconds"])
                print(f"{case} {row}: {measured[row]}", file=sys.stderr, flush=True)
            bare = measured["bare_forward"]
            for r in measured.values():
                r["gflops"] = bare["forward_gflop"] / r["seconds"]
                r["share_of_matmul"] = r["gflops"] / bare["matmul_gflops"]
            measured["ratios"] = {
                "seg_predict_over_hand_monai": measured["seg_predict"]["seconds"] / measured["hand_monai"]["seconds"],
                "seg_predict_over_bare_forward": measured["seg_predict"]["seconds"] / bare["seconds"],
            }
            results[case] = measured
    print(f"\ndevice {args.device}, {args.threads} threads, fastest of {args.repeats}\n")
    print("| case | path | s / volume | x bare forward | GFLOP/s | share of matmul peak | peak RSS (GB) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for case, measured in results.items():
        bare = measured["bare_forward"]["seconds"]
        for row in ("seg_predict", "hand_monai", "bare_forward"):
            r = measured[row]
            print(f"| {case} | {row} | {r['seconds']:.2f} | {r['seconds'] / bare:.2f} | {r['gflops']:.1f} | "
                  f"{r['share_of_matmul']:.1%} | {r['peak_rss_gb']:.2f} |")  # fmt: skip
    met = all(m["ratios"]["seg_predict_over_hand_monai"] <= 0.9 and m["ratios"]["seg_predict_over_bare_forward"] <= 1.5
              for m in results.values())  # fmt: skip
    print_result({"bench": "predict", "device": args.device, "threads": args.threads, "results": results,
                  "target": "seg_predict <= 0.9 x hand_monai and <= 1.5 x bare_forward", "met": met,
                  "machine": machine(args.device)})  # fmt: skip


if __name__ == "__main__":
    main()
