"""Train the small digits classifier whose features give the GAN metrics (classifier score,
Fréchet distance) and ship it in the package:

    python scripts/train_digits_classifier.py

Writes adversarial_seg/gan/assets/digits_classifier.pt (float32 state dict) and
digits_classifier.json beside it (sha256 of the weights, accuracy on the validation and the
held-out test split, the command, seed and library versions). Trained on the train split only,
with 1-pixel random shifts; a fixed number of epochs, nothing chosen on the test split.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time

import torch
import torch.nn.functional as F

from adversarial_seg.atomic_files import atomic_write_bytes
from adversarial_seg.gan.data import digits_splits
from adversarial_seg.gan.metrics import (
    CLASSIFIER_RECORD,
    CLASSIFIER_WEIGHTS,
    METRIC_SIZE,
    DigitsClassifier,
    file_sha256,
)


def shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shift by up to one pixel in each direction, filling with background (-1)."""
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
    dy, dx = torch.randint(0, 3, (2,), generator=generator).tolist()
    return padded[..., dy : dy + METRIC_SIZE, dx : dx + METRIC_SIZE]


@torch.no_grad()
def accuracy(model, images, labels) -> float:
    return float((model(images).argmax(1) == labels).float().mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    splits = digits_splits(size=METRIC_SIZE)
    x, y = splits["train"]
    model = DigitsClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    started = time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 64):
            idx = order[start : start + 64]
            loss = F.cross_entropy(model(shift(x[idx], generator)), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    atomic_write_bytes(CLASSIFIER_WEIGHTS, buffer.getvalue())
    record = {
        "file": CLASSIFIER_WEIGHTS.name,
        "sha256": file_sha256(CLASSIFIER_WEIGHTS),
        "bytes": CLASSIFIER_WEIGHTS.stat().st_size,
        "architecture": "DigitsClassifier (adversarial_seg/gan/metrics.py): 2 conv blocks, 64 features, 10 classes",
        "input": "16x16 digits in [-1, 1] (sklearn load_digits upsampled bilinearly)",
        "train_split_size": len(x),
        "accuracy": {name: accuracy(model, *splits[name]) for name in ("train", "val", "test")},
        "held_out_split": "test",
        "epochs": args.epochs,
        "seed": args.seed,
        "seconds": round(time.perf_counter() - started, 1),
        "command": "python scripts/train_digits_classifier.py" + "".join(f" {a}" for a in sys.argv[1:]),
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
    atomic_write_bytes(CLASSIFIER_RECORD, (json.dumps(record, indent=2) + "\n").encode())
    print(json.dumps(record["accuracy"]), record["bytes"], "bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
