"""Train a tiny hybrid segmentation model for a few epochs; used by test_trainer.py in a subprocess.

    python resume_script.py RUN_DIR EPOCHS [--kill-after-epoch K]

With --kill-after-epoch the process SIGKILLs itself right after epoch K's checkpoint is written
(no clean shutdown, as a scheduler's kill would do). Run again without it, it resumes.
"""

import argparse
import os
import signal
from pathlib import Path

import torch
from monai.data import Dataset
from monai.transforms import Compose, RandFlipd, RandGaussianNoised

from adversarial_seg.config import config_from_mapping
from adversarial_seg.gan.trainer import Trainer, seeded_loader
from adversarial_seg.runtime import Precision, seed_everything
from adversarial_seg.seg.task import build_segmentation_step


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("epochs", type=int)
    parser.add_argument("--kill-after-epoch", type=int, default=None)
    args = parser.parse_args()

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(123)
    samples = [
        {"image": torch.randn(1, 64, 64, generator=g), "label": torch.randint(0, 2, (1, 64, 64), generator=g)}
        for _ in range(12)
    ]
    augment = Compose(
        [RandFlipd(["image", "label"], prob=0.5, spatial_axis=0), RandGaussianNoised(["image"], prob=0.5, std=0.1)]
    )
    dataset = Dataset(samples, transform=augment)
    config = config_from_mapping(
        {
            "scheme": "hybrid",
            "model": {
                "segmentor": {"name": "UNet", "channels": [4, 8, 16], "strides": [2, 2], "dropout": 0.1},
                "discriminator": {"channels": 4},
            },
        }
    )
    seed_everything(0)  # network initialisation
    device = torch.device("cpu")
    step = build_segmentation_step(config, 2, 1, 2, device, Precision.for_device(device, amp=False))
    scheduler = torch.optim.lr_scheduler.StepLR(step.optimizer_g, step_size=1, gamma=0.9)

    def on_epoch_end(epoch, row):
        if args.kill_after_epoch is not None and epoch + 1 == args.kill_after_epoch:
            os.kill(os.getpid(), signal.SIGKILL)

    trainer = Trainer(
        step,
        make_loader=lambda epoch: seeded_loader(dataset, 4, seed=7, stream=(0,), epoch=epoch),
        run_dir=args.run_dir,
        seed=7,
        stream=(0,),
        device=device,
        schedulers={"lr_g": scheduler},
        on_epoch_end=on_epoch_end,
        print_fn=None,
        progress=False,
    )
    trainer.resume()
    trainer.fit(args.epochs)


if __name__ == "__main__":
    main()
