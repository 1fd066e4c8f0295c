"""Train the PH2 text encoder and attribute classifiers that the stackgan variant conditions on and is
judged by (``adversarial_seg/gan/ph2_encoders.py``):

    python scripts/train_ph2_encoders.py --output runs/ph2_encoders [--root ../shared/data/ph2] [--epochs 60]

Trained on the training split of gan-train's PH2 split (``data.split_seed`` 0: 106 cases) at 64 x 64;
writes DIR/encoders.pt and DIR/encoders.json with the attribute classifiers' balanced accuracy per label
on the validation and test cases (what real held-out images score: the bar for generated ones) and how
well the text encoder finds each held-out image's sentence among the split's sentences.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from adversarial_seg.gan.ph2_encoders import agreement, balanced_accuracy, save_encoders, train_encoders
from adversarial_seg.gan.ph2_text import ph2_text_splits


@torch.no_grad()
def sentence_match(models, split: dict) -> float:
    """Share of images whose own sentence is the nearest of the split's sentences in the joint embedding."""
    t = F.normalize(models["text"](split["tokens"]), dim=1)
    v = F.normalize(models["image"](split["images"]), dim=1)
    nearest = (v @ t.T).argmax(1)
    return float((split["tokens"][nearest] == split["tokens"]).all(1).float().mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--root", default="../shared/data/ph2")
    parser.add_argument("--size", type=int, nargs=2, default=[64, 64])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    splits = ph2_text_splits(args.root, tuple(args.size), 0)
    started = time.perf_counter()
    models = train_encoders(splits["train"], args.epochs, args.seed)
    seconds = round(time.perf_counter() - started, 1)
    held_out = {}
    for name in ("val", "test"):
        predicted = models["attributes"].predict(splits[name]["images"])
        scores = balanced_accuracy(predicted, splits[name]["attributes"])
        held_out[name] = {"agreement": agreement(predicted, splits[name]["attributes"]), "balanced_accuracy": scores,
                          "text_retrieval": sentence_match(models, splits[name]), "cases": len(splits[name]["cases"])}  # fmt: skip
    record = {"size": list(args.size), "epochs": args.epochs, "seed": args.seed, "seconds": seconds,
              "train_cases": len(splits["train"]["cases"]), "held_out": held_out,
              "command": "python scripts/train_ph2_encoders.py " + " ".join(sys.argv[1:]),
              "versions": {"torch": torch.__version__, "python": platform.python_version()}}  # fmt: skip
    save_encoders(models, args.output, record)
    for name, body in held_out.items():
        print(f"{name}: agreement {body['agreement']:.3f}, text retrieval {body['text_retrieval']:.3f}")
    print(f"wrote {args.output}/encoders.pt ({seconds} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
