"""seg-train's training loop against a bare PyTorch loop on the same MONAI UNet, in one process.

    python scripts/bench/train_step.py [--size 192 256] [--batch 8] [--batches 15] [--rounds 4] [--threads 2]

Both loops train the default segmentor of configs/ph2.yaml (MONAI UNet 16..256 channels, 2
residual units, 3 input channels, 2 classes) with DiceCE and Adam at the config's learning rate
on the same in-memory batches (PH2's epoch: 15 batches of 8 at 192 x 256), so the difference is
the project's loop alone: ``Trainer.train_epoch`` (seeded per epoch, ``to_device``, the
``AdversarialStep`` with its loss terms kept as device tensors, the epoch means) against
``zero_grad; loss(model(x), y).backward(); step``. The hybrid scheme's epoch (with the default
mask discriminator) runs in the same rounds. Each round times one epoch of each, in turn, after
one warm-up round, so load from elsewhere hits all alike; medians over the rounds. The checkpoint
seg-train writes after each epoch is timed separately (``checkpoint_s``). With ``--bf16`` a ce
epoch under CPU bfloat16 autocast joins the rounds (``ce_bf16_s``; not a seg-train option yet:
it tells whether one would pay on this CPU).

Target (issue 18): bare seconds / ours >= 0.95 for ce. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import machine, print_result
from monai.losses import DiceCELoss
from monai.networks.nets import UNet

from adversarial_seg.checkpoint import save_checkpoint
from adversarial_seg.config import config_from_mapping
from adversarial_seg.gan.trainer import Trainer
from adversarial_seg.runtime import Precision
from adversarial_seg.seg.task import build_segmentation_step

UNET = {"channels": (16, 32, 64, 128, 256), "strides": (2, 2, 2, 2), "num_res_units": 2}


def project_trainer(scheme: str, batches: list[dict], run_dir: Path, bf16: bool = False) -> Trainer:
    config = config_from_mapping({"scheme": scheme, "loss": {"supervised": "dice_ce"}})
    device = torch.device("cpu")
    precision = Precision.for_device(device, amp=bf16, cpu_bf16=bf16)
    step = build_segmentation_step(config, 2, 3, 2, device, precision)
    return Trainer(step, make_loader=lambda epoch: batches, run_dir=run_dir, seed=0, stream=(0,),
                   device=device, print_fn=None, progress=False)  # fmt: skip


class BareLoop:
    """What a user writes by hand: the same network, loss and optimiser, nothing else."""

    def __init__(self, batches: list[dict], lr: float, betas: tuple[float, float]):
        self.batches = batches
        self.model = UNet(spatial_dims=2, in_channels=3, out_channels=2, **UNET)
        self.loss = DiceCELoss(to_onehot_y=True, softmax=True)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr, betas=betas)

    def epoch(self) -> None:
        self.model.train()
        for batch in self.batches:
            self.optimizer.zero_grad(set_to_none=True)
            self.loss(self.model(batch["image"]), batch["label"]).backward()
            self.optimizer.step()


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=[192, 256])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--batches", type=int, default=15, help="batches per epoch (PH2: 120 cases / 8)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16", action="store_true", help="also time a ce epoch under CPU bf16 autocast")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    batches = [
        {
            "image": torch.randn(args.batch, 3, *args.size, generator=generator),
            "label": (torch.rand(args.batch, 1, *args.size, generator=generator) > 0.7).long(),
        }
        for _ in range(args.batches)
    ]
    defaults = config_from_mapping({}).train
    bare = BareLoop(batches, defaults.lr_g, tuple(defaults.betas))
    with tempfile.TemporaryDirectory() as tmp:
        ce = project_trainer("ce", batches, Path(tmp) / "ce")
        hybrid = project_trainer("hybrid", batches, Path(tmp) / "hybrid")
        loops = {"bare": bare.epoch, "ce": lambda: ce.train_epoch(0), "hybrid": lambda: hybrid.train_epoch(0)}
        if args.bf16:
            ce_bf16 = project_trainer("ce", batches, Path(tmp) / "ce_bf16", bf16=True)
            loops["ce_bf16"] = lambda: ce_bf16.train_epoch(0)
        times: dict[str, list[float]] = {name: [] for name in loops}
        for round_ in range(args.rounds + 1):
            for name, loop in loops.items():
                seconds = timed(loop)
                if round_:  # round 0 warms up
                    times[name].append(seconds)
        ce.run_dir.mkdir(parents=True)
        checkpoint = statistics.median(
            timed(lambda: save_checkpoint(ce.state_dict(), ce.checkpoint_path)) for _ in range(3)
        )
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"| loop | s / epoch ({args.batches} x {args.batch} x 3 x {args.size[0]} x {args.size[1]}) |")
    print("|---|---:|")
    for name, value in median.items():
        print(f"| {name} | {value:.3f} |")
    ratio = median["bare"] / median["ce"]
    print_result(
        {
            "bench": "train_step",
            "threads": args.threads,
            "rounds": args.rounds,
            "epoch_shape": [args.batches, args.batch, 3, *args.size],
            "bare_s": round(median["bare"], 3),
            "ce_s": round(median["ce"], 3),
            "hybrid_s": round(median["hybrid"], 3),
            "checkpoint_s": round(checkpoint, 3),
            **({"ce_bf16_s": round(median["ce_bf16"], 3)} if args.bf16 else {}),
            "bare_over_ce": round(ratio, 3),
            "hybrid_over_ce": round(median["hybrid"] / median["ce"], 3),
            "target": "bare_over_ce >= 0.95",
            "met": ratio >= 0.95,
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
