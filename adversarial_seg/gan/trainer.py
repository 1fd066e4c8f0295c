"""The epoch loop shared by segmentation and the GAN variants: log, checkpoint, resume.

Reproducibility (DESIGN.md): at the start of every epoch all global generators are seeded from
``derived_seed(seed, *stream, epoch)`` and the caller's ``make_loader(epoch)`` seeds the
DataLoader (and through MONAI's DataLoader the transforms' own RandomState) from the same
triple. A run resumed from ``checkpoint_last.pt`` therefore continues exactly as an
uninterrupted one. The checkpoint also stores the global RNG states, so work done after the
last epoch (prediction, plotting) sees the same random state either way.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from adversarial_seg import distributed
from adversarial_seg.atomic_files import atomic_write_bytes, remove_stale_temporaries
from adversarial_seg.checkpoint import load_checkpoint, save_checkpoint
from adversarial_seg.gan.step import AdversarialStep
from adversarial_seg.runtime import derived_seed, rng_state, seed_everything, set_rng_state, to_device

CHECKPOINT_LAST = "checkpoint_last.pt"


def write_log_csv(rows: list[dict], path: Path) -> None:
    """All epochs so far, one row each; columns are the union of keys, in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, text.getvalue().encode())


def seeded_loader(
    dataset,
    batch_size: int,
    seed: int,
    stream: tuple,
    epoch: int,
    shuffle: bool = True,
    num_workers: int = 0,
    drop_last: bool = False,
):
    """A MONAI DataLoader whose order, workers and transforms' RandomState derive from
    (seed, stream, epoch): MONAI seeds the dataset's random transforms from the loader's generator.
    Under torchrun each process loads its shard of every global batch (``distributed``)."""
    from monai.data import DataLoader

    generator = torch.Generator().manual_seed(derived_seed(seed, *stream, epoch, "loader"))
    if distributed.world_size() > 1 and shuffle:
        # The loader's own generator: it draws the workers' base seed from it before the first
        # permutation, exactly as it does before RandomSampler's, so the orders agree.
        shards = distributed.ShardedBatchSampler(
            len(dataset), batch_size, generator, drop_last, distributed.world_size(), distributed.rank()
        )
        return DataLoader(dataset, batch_sampler=shards, num_workers=num_workers, generator=generator)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        generator=generator,
        drop_last=drop_last,
        persistent_workers=False,
    )


def _chunks(iterable: Iterable, size: int):
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Trainer:
    """Runs epochs of an ``AdversarialStep`` with per-epoch logging and checkpoints.

    Args:
        step: the adversarial step (owns task, optimisers, scalers).
        make_loader: ``epoch -> iterable of batches``, seeded from (seed, stream, epoch).
        run_dir: folder for ``checkpoint_last.pt`` and ``log.csv``.
        seed, stream: the run seed and a stream id such as (fold,), for derived seeds.
        device: where batches go (the one place they are moved).
        schedulers: learning-rate schedulers stepped once per epoch.
        evaluate: optional ``epoch -> dict`` of validation metrics, logged with the epoch (``val_`` + key).
        probe: optional ``epoch -> dict`` of diagnostics logged under their own names after
            ``evaluate`` (e.g. the discriminator probe's ``d_auc``).
        on_epoch_end: optional ``(epoch, row) -> None`` called after the checkpoint is written.
        print_fn: receives one summary line per epoch (None: silent).
        extra_state: the caller's plain values saved in every checkpoint and put back into this
            same dict on resume (e.g. the config hash, the warnings so far).
    """

    def __init__(
        self,
        step: AdversarialStep,
        make_loader: Callable[[int], Iterable],
        run_dir: Path,
        seed: int,
        stream: tuple = (),
        device: torch.device | None = None,
        d_steps: int = 1,
        schedulers: dict[str, Any] | None = None,
        evaluate: Callable[[int], dict] | None = None,
        probe: Callable[[int], dict] | None = None,
        on_epoch_end: Callable[[int, dict], None] | None = None,
        print_fn: Callable[[str], None] | None = print,
        progress: bool = True,
        extra_state: dict | None = None,
    ):
        self.step = step
        self.make_loader = make_loader
        self.run_dir = Path(run_dir)
        self.seed = seed
        self.stream = tuple(stream)
        self.device = device or torch.device("cpu")
        self.d_steps = d_steps if step.adversarial_on else 1
        self.schedulers = schedulers or {}
        self.evaluate = evaluate
        self.probe = probe
        self.on_epoch_end = on_epoch_end
        self.print_fn = print_fn
        self.progress = progress
        self.extra_state = extra_state or {}
        self.history: list[dict] = []
        self.epochs_done = 0

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT_LAST

    def state_dict(self) -> dict:
        return {
            "modules": {name: m.state_dict() for name, m in self.step.task.modules().items()},
            "step": self.step.state_dict(),
            "schedulers": {name: s.state_dict() for name, s in self.schedulers.items()},
            "epoch": self.epochs_done,
            "history": self.history,
            "rng": rng_state(),
            "seed": self.seed,
            "stream": self.stream,
            **self.extra_state,
        }

    def load_state_dict(self, state: dict) -> None:
        for name, module in self.step.task.modules().items():
            module.load_state_dict(state["modules"][name])
        self.step.load_state_dict(state["step"])
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
        self.epochs_done = state["epoch"]
        self.history = list(state["history"])
        set_rng_state(state["rng"])
        for key in self.extra_state:  # the caller's own state (e.g. warnings so far) continues too
            if key in state:
                self.extra_state[key] = state[key]

    def resume(self) -> bool:
        """Load ``checkpoint_last.pt`` if present; True when it was. Temporaries a killed write left
        in the run folder are removed first (only files ``atomic_files`` signed)."""
        remove_stale_temporaries(self.run_dir)
        if not self.checkpoint_path.is_file():
            return False
        self.load_state_dict(load_checkpoint(self.checkpoint_path, map_location=self.device))
        return True

    def train_epoch(self, epoch: int) -> dict[str, float]:
        sums: dict[str, torch.Tensor] = {}  # device tensors: no host sync per step
        counts: dict[str, int] = {}
        loader = self.make_loader(epoch)
        total = math.ceil(len(loader) / self.d_steps) if hasattr(loader, "__len__") else None
        bar = tqdm(
            _chunks(loader, self.d_steps),
            total=total,
            desc=f"epoch {epoch + 1}",
            leave=False,
            disable=not self.progress,
            dynamic_ncols=True,
        )
        for batches in bar:
            terms = self.step([to_device(b, self.device) for b in batches])
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + value.float()
                counts[key] = counts.get(key, 0) + 1
        means = distributed.mean_over_ranks({key: float(sums[key] / counts[key]) for key in sums})
        bad = [k for k, v in means.items() if k.startswith("loss") and not math.isfinite(v)]
        if bad:
            raise FloatingPointError(
                f"{', '.join(bad)} became NaN/Inf in epoch {epoch + 1} (run {self.run_dir}); "
                "lower train.lr_g / train.lr_d or turn off train.amp and resume from the last checkpoint"
            )
        return means

    def fit(self, epochs: int) -> list[dict]:
        """Train from ``self.epochs_done`` up to ``epochs``; returns the per-epoch history."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for epoch in range(self.epochs_done, epochs):
            seed_everything(derived_seed(self.seed, *self.stream, epoch))
            started = time.perf_counter()
            row: dict[str, Any] = {"epoch": epoch + 1}
            row.update(self.train_epoch(epoch))
            for scheduler in self.schedulers.values():
                scheduler.step()
            if self.evaluate is not None:
                # plain floats: the history goes into a checkpoint that loads with weights_only
                row.update({f"val_{k}": float(v) for k, v in self.evaluate(epoch).items()})
            if self.probe is not None:
                row.update({k: float(v) for k, v in self.probe(epoch).items()})
            row["seconds"] = round(time.perf_counter() - started, 3)
            self.history.append(row)
            self.epochs_done = epoch + 1
            if not distributed.is_main():  # the other ranks hold the same state; rank 0 writes it
                continue
            save_checkpoint(self.state_dict(), self.checkpoint_path)
            write_log_csv(self.history, self.run_dir / "log.csv")
            if self.print_fn is not None:
                self.print_fn(format_epoch_line(row, epochs))
            if self.on_epoch_end is not None:
                self.on_epoch_end(epoch, row)
        return self.history


def format_epoch_line(row: dict, epochs: int) -> str:
    """``epoch 3/20  loss_g 0.412  loss_d 1.301  d_real 0.61  d_fake 0.38  12.4 s``."""
    parts = [f"epoch {row['epoch']}/{epochs}"]
    for key, value in row.items():
        if key in ("epoch", "seconds"):
            continue
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    parts.append(f"{row['seconds']:.1f} s")
    return "  ".join(parts)
