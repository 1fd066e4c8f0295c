"""How separable are expert and predicted masks at all? A fresh discriminator on frozen predictions.

    python scripts/probe_discriminator.py RUN [--fold K] [--steps N] [--encoding onehot|product|scaled]
        [--batch-size B] [--lr LR] [--seed S] [--harden] [--device auto|cpu|cuda]

Loads fold K's trained segmentor from the run (``checkpoint_last.pt``, or ``checkpoint_best.pt``
with ``train.select: inner_val``), predicts the fold's training and validation cases once (the
training transforms without augmentation) and keeps the predictions frozen. A fresh
``MaskDiscriminator`` of the run's configuration (``--encoding`` overrides its mask encoding) is
trained for ``--steps`` Adam steps on the training pairs, expert mask against prediction, with
the logistic loss; the held-out AUC on the validation pairs says how separable the two are when
the segmentor does not move. For comparison the run's own last-epoch discriminator is scored on
the same validation pairs when the checkpoint holds one and the encoding is the run's, once as
trained and once with each prediction hardened to the one-hot mask of its argmax
(``run_d_val_auc_hard``): a D that only tells soft from hard masks drops to about 0.5 there,
one that judges the shape does not. ``--harden`` trains and scores the fresh D on hardened
predictions too: how separable expert and predicted shapes are once softness is no clue.

Prints a few progress lines, then one JSON line last:
``{"run", "fold", "encoding", "steps", "train_pairs", "val_pairs", "train_auc", "val_auc",
"run_d_val_auc", "run_d_val_auc_hard", "harden", "seconds"}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from adversarial_seg.checkpoint import load_checkpoint
from adversarial_seg.data.dataset import build_training_dataset
from adversarial_seg.data.layouts import discover_cases
from adversarial_seg.errors import InputError
from adversarial_seg.gan.losses import d_logistic
from adversarial_seg.runtime import Precision, resolve_device, seed_everything
from adversarial_seg.seg.evaluate import read_run_splits
from adversarial_seg.seg.networks import MASK_ENCODINGS, MaskDiscriminator
from adversarial_seg.seg.probe import pair_auc, pair_scores
from adversarial_seg.seg.run import open_run

FP32 = Precision("cpu", None)


@torch.no_grad()
def frozen_pairs(segmentor, dataset, device, batch_size: int = 16) -> dict[str, torch.Tensor]:
    """Every sample of ``dataset`` with the segmentor's logits: {image, label, logits}, on ``device``."""
    segmentor.eval()
    parts = {"image": [], "label": [], "logits": []}
    for batch in torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False):
        image = batch["image"].as_tensor() if hasattr(batch["image"], "as_tensor") else batch["image"]
        label = batch["label"].as_tensor() if hasattr(batch["label"], "as_tensor") else batch["label"]
        image, label = image.to(device), label.to(device)
        parts["image"].append(image)
        parts["label"].append(label)
        parts["logits"].append(segmentor(image).float())
    return {k: torch.cat(v) for k, v in parts.items()}


def hardened(logits: torch.Tensor) -> torch.Tensor:
    """Logits whose softmax is exactly the one-hot mask of their argmax (in float32)."""
    onehot = torch.nn.functional.one_hot(logits.argmax(1), logits.shape[1]).movedim(-1, 1).float()
    return onehot * 200 - 100  # softmax of (100, -100): exp(-200) underflows to 0


def batches(pairs: dict, batch_size: int):
    """The frozen pairs as batches in order: {image, label} plus the fixed logits."""
    n = pairs["image"].shape[0]
    for start in range(0, n, batch_size):
        yield {k: v[start : start + batch_size] for k, v in pairs.items()}


class FrozenSegmentor(torch.nn.Module):
    """Returns the stored logits of the batch being scored (``pair_scores`` calls it on the image)."""

    def __init__(self):
        super().__init__()
        self.logits = None

    def forward(self, image):
        return self.logits


def score(discriminator, pairs: dict, batch_size: int) -> float:
    """Held-out AUC of ``discriminator`` on frozen ``pairs``."""
    frozen = FrozenSegmentor()
    expert, predicted = [], []
    for batch in batches(pairs, batch_size):
        frozen.logits = batch["logits"]
        e, p = pair_scores(frozen, discriminator, [batch], batch["image"].device, FP32)
        expert += e.tolist()
        predicted += p.tolist()
    return pair_auc(expert, predicted)


def train_discriminator(discriminator, pairs: dict, steps: int, batch_size: int, lr: float, seed: int, log=print):
    """``steps`` Adam steps of the logistic loss, expert pairs real, predictions fake; minibatches
    drawn with replacement from a generator seeded by ``seed``."""
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    generator = torch.Generator().manual_seed(seed)
    n = pairs["image"].shape[0]
    discriminator.train()
    for step in range(steps):
        index = torch.randint(0, n, (min(batch_size, n),), generator=generator).to(pairs["image"].device)
        image, label, logits = pairs["image"][index], pairs["label"][index], pairs["logits"][index]
        real = discriminator(image, discriminator.expert_mask(label, logits))
        fake = discriminator(image, discriminator.predicted_mask(logits))
        loss = d_logistic(real.float(), fake.float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if (step + 1) % max(1, steps // 5) == 0:
            log(f"step {step + 1}/{steps}: loss_d {float(loss):.4f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a single-scheme run directory written by seg-train")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--steps", type=int, default=2000, help="discriminator training steps (default 2000)")
    parser.add_argument("--encoding", choices=MASK_ENCODINGS, help="mask encoding (default: the run's)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the run's train.batch_size")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--harden", action="store_true", help="train and score the fresh D on argmax masks")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        device = resolve_device(args.device)
        run = open_run(args.run)
        folds = read_run_splits(run.run_dir / "splits.json")
        if not 0 <= args.fold < len(folds):
            raise InputError(f"--fold {args.fold}: the run has folds 0 to {len(folds) - 1}")
        split = folds[args.fold]
        records = {r.case_id: r for r in discover_cases(run.config.data)}
        missing = [c for c in split["train"] + split["val"] if c not in records]
        if missing:
            raise InputError(f"cases {missing[:3]} of splits.json are not in the dataset {run.config.data.root}")
        segmentor = run.load_models([args.fold], device)[0]
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cfg = run.config
    batch_size = args.batch_size or cfg.train.batch_size
    pairs = {}
    for part in ("train", "val"):
        dataset = build_training_dataset([records[c] for c in split[part]], cfg.data, augment=(), plan=run.plan)
        pairs[part] = frozen_pairs(segmentor, dataset, device)
        print(f"{part}: {len(split[part])} cases, {pairs[part]['image'].shape[0]} pairs predicted", file=sys.stderr)
    disc_cfg = cfg.model.discriminator
    encoding = args.encoding or disc_cfg.mask_encoding
    in_channels, num_classes = pairs["train"]["image"].shape[1], pairs["train"]["logits"].shape[1]

    def fresh(encoding: str) -> MaskDiscriminator:
        d = MaskDiscriminator(run.plan.model_dims, in_channels, num_classes, mask_encoding=encoding,
                              input_scale=disc_cfg.input_scale, **disc_cfg.kwargs())  # fmt: skip
        return d.to(device)

    hard = {part: dict(p, logits=hardened(p["logits"])) for part, p in pairs.items()}
    seen = hard if args.harden else pairs  # what the fresh D trains and is scored on
    seed_everything(args.seed)
    discriminator = fresh(encoding)
    train_discriminator(discriminator, seen["train"], args.steps, batch_size, args.lr, args.seed,
                        log=lambda text: print(text, file=sys.stderr))  # fmt: skip
    result = {
        "run": str(run.run_dir), "fold": args.fold, "encoding": encoding, "steps": args.steps,
        "train_pairs": int(pairs["train"]["image"].shape[0]), "val_pairs": int(pairs["val"]["image"].shape[0]),
        "train_auc": score(discriminator, seen["train"], batch_size),
        "val_auc": score(discriminator, seen["val"], batch_size),
        "run_d_val_auc": None, "run_d_val_auc_hard": None, "harden": args.harden,
    }  # fmt: skip
    state = load_checkpoint(run.run_dir / f"fold_{args.fold}" / "checkpoint_last.pt", map_location=device)
    own = state.get("modules", {}).get("discriminator")
    if own is not None and encoding == disc_cfg.mask_encoding:
        run_d = fresh(encoding)
        run_d.load_state_dict(own)
        result["run_d_val_auc"] = score(run_d, pairs["val"], batch_size)
        result["run_d_val_auc_hard"] = score(run_d, hard["val"], batch_size)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
