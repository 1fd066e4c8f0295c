"""One fold of one run: train the segmentor (on the GAN core), predict the fold's validation
cases in their native geometry, score them, and mark the fold done.

A fold is done when its ``fold_done.json`` exists; an unfinished fold resumes from
``checkpoint_last.pt`` exactly (the core ``Trainer``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from adversarial_seg import distributed
from adversarial_seg.atomic_files import atomic_write_bytes, remove_stale_temporaries
from adversarial_seg.checkpoint import load_checkpoint, save_checkpoint
from adversarial_seg.data.dataset import build_training_dataset, prepare_case, write_prediction
from adversarial_seg.data.labels import LabelSet
from adversarial_seg.data.transforms import DataPlan
from adversarial_seg.gan.trainer import Trainer, format_epoch_line, seeded_loader
from adversarial_seg.plots import plot_training_curves
from adversarial_seg.provenance import git_commit
from adversarial_seg.runtime import Precision, derived_seed, seed_everything, to_device
from adversarial_seg.seg.domain import ganin_ramp
from adversarial_seg.seg.inference import predict_native, write_probabilities
from adversarial_seg.seg.probe import discriminator_probe
from adversarial_seg.seg.progress import StudyClock
from adversarial_seg.seg.run import FOLD_DONE, RunSpec
from adversarial_seg.seg.scoring import score_prediction
from adversarial_seg.seg.splits import SplitsError, inner_split, scored_folds, training_subset
from adversarial_seg.seg.summary import write_cases_csv
from adversarial_seg.seg.task import build_segmentation_step


@dataclass
class FoldOutcome:
    fold: int
    status: str  # "trained", "skipped" (already done), "failed"
    seconds: float = 0.0
    message: str = ""


def fold_cases(config, folds: list[dict], fold: int, records: dict) -> tuple[list[str], list[str], list[str] | None]:
    """(training cases, validation = test cases, inner selection cases or None) of one fold.

    With ``domain`` set, the fold trains on its training cases of the ``domain.source`` sites and is
    scored on its validation cases of the ``domain.target`` sites. ``train.fraction`` keeps a
    seeded, stratified share of the training patients (the validation cases never change). With
    ``train.select: inner_val`` a grouped inner split of those training
    cases chooses the checkpoint (DESIGN.md, "Model selection"); SplitsError when a fold has too
    few patients.
    """
    train, val = folds[fold]["train"], scored_folds(config, [folds[fold]], records)[0]["val"]
    if config.domain is not None:
        source, target = config.domain.source, config.domain.target
        train = [c for c in train if records[c].domain in source]
        if not train or not val:
            raise SplitsError(
                f"fold {fold} has {len(train)} training cases of domain.source {source} and {len(val)} validation "
                f"cases of domain.target {target}; every fold needs both: lower cv.folds or stratify by "
                f"{config.domain.column} (data.stratify)"
            )
    if config.train.fraction < 1:
        strata = [records[c].stratum for c in train] if config.data.stratify else None
        groups = [records[c].patient for c in train]
        seed = derived_seed(config.cv.seed, fold, "fraction")
        train = training_subset(train, groups, config.train.fraction, seed, strata)
    if config.train.select != "inner_val":
        return train, val, None
    groups = [records[c].patient for c in train]
    inner_train, inner_val = inner_split(train, groups, seed=derived_seed(config.cv.seed, fold, "inner"))
    return inner_train, val, inner_val


def unlabelled_target_cases(config, folds: list[dict], fold: int, records: dict) -> list[str]:
    """DANN's target images: the fold's training cases of the ``domain.target`` sites (their labels
    are never read for training); empty without ``domain.adapt``."""
    if config.domain is None or config.domain.adapt <= 0:
        return []
    return [c for c in folds[fold]["train"] if records[c].domain in config.domain.target]


class WithTargetImages:
    """The labelled batches, each with ``target_image``: the next batch of the target site's images
    (their loader restarts when it runs out); as long as the labelled loader."""

    def __init__(self, labelled, unlabelled):
        self.labelled, self.unlabelled = labelled, unlabelled

    def __len__(self) -> int:
        return len(self.labelled)

    def __iter__(self):
        target = iter(self.unlabelled)
        for batch in self.labelled:
            try:
                images = next(target)["image"]
            except StopIteration:
                target = iter(self.unlabelled)
                images = next(target)["image"]
            yield {**batch, "target_image": images}


class FoldRunner:
    """Trains one fold of one run, predicts its validation cases and scores them."""

    def __init__(
        self,
        spec: RunSpec,
        folds,
        records,
        data_plan: DataPlan,
        device,
        progress: bool,
        print_fn=print,
        clock: StudyClock | None = None,
        label: str | None = None,
    ):
        self.spec = spec
        self.clock = clock or StudyClock(0)
        self.label = label or spec.name  # e.g. "hybrid_seed1 (run 3/4)"
        self.config = spec.config
        self.folds = folds
        self.records = {r.case_id: r for r in records}
        self.data_plan = data_plan
        self.labels = data_plan.labels
        self.device = device
        self.precision = Precision.for_device(device, self.config.train.amp, self.config.train.cpu_bf16)
        self.progress = progress
        self.print = print_fn

    def prefix(self, fold: int) -> str:
        return f"[{self.label}, fold {fold + 1}/{len(self.folds)}]"

    def fold_dir(self, fold: int) -> Path:
        return self.spec.run_dir / f"fold_{fold}"

    def run(self, fold: int) -> FoldOutcome:
        fold_dir = self.fold_dir(fold)
        if (fold_dir / FOLD_DONE).is_file():
            return FoldOutcome(fold, "skipped")
        started = time.perf_counter()
        remove_stale_temporaries(fold_dir / "predictions")  # a killed earlier process's half-written files
        train_ids, val_ids, select_ids = fold_cases(self.config, self.folds, fold, self.records)
        fraction, whole = self.config.train.fraction, len(self.folds[fold]["train"])
        share = f" (train.fraction {fraction:g} of {whole})" if fraction < 1 else ""
        self.print(
            f"{self.prefix(fold)} {len(train_ids)} training{share} and {len(val_ids)} validation cases, "
            f"{self.config.train.epochs} epochs, into {fold_dir}"
        )
        model, earlier = self.train(fold, train_ids, select_ids or val_ids, select=select_ids is not None)
        if not distributed.is_main():  # torchrun: rank 0 predicts, scores and marks the fold done
            distributed.barrier()
            return FoldOutcome(fold, "trained", time.perf_counter() - started + earlier)
        rows = self.predict_and_score(fold, model, val_ids)
        write_cases_csv(rows, fold_dir / "cases.csv")
        seconds = time.perf_counter() - started + earlier
        done = {"fold": fold, "seconds": round(seconds, 1), "train": len(train_ids), "val": len(val_ids),
                "train_cases": train_ids, "git_commit": git_commit()}  # fmt: skip
        atomic_write_bytes(fold_dir / FOLD_DONE, json.dumps(done).encode())
        distributed.barrier()
        return FoldOutcome(fold, "trained", seconds)

    def train(self, fold: int, train_ids, monitor_ids, select: bool) -> tuple[torch.nn.Module, float]:
        """The fold's segmentor, and the seconds of the epochs an interrupted earlier process ran."""
        cfg, fold_dir, data_plan = self.config, self.fold_dir(fold), self.data_plan
        train_records = [self.records[c] for c in train_ids]
        monitor_records = [self.records[c] for c in monitor_ids]
        dataset = build_training_dataset(
            train_records, cfg.data, augment=cfg.train.augmentations, plan=data_plan, flip_axes=cfg.train.flip_axes
        )
        monitor = build_training_dataset(monitor_records, cfg.data, augment=(), plan=data_plan, random_patches=False)
        target_ids = unlabelled_target_cases(cfg, self.folds, fold, self.records)
        target = None
        if target_ids:  # DANN: the target site's images, augmented alike; every slice, chosen without labels
            target = build_training_dataset([self.records[c] for c in target_ids], cfg.data,
                                            augment=cfg.train.augmentations, plan=data_plan,
                                            flip_axes=cfg.train.flip_axes)  # fmt: skip
            self.print(f"{self.prefix(fold)} DANN: {len(target_ids)} unlabelled target-site training cases")
        in_channels = dataset[0]["image"].shape[0]
        seed_everything(derived_seed(cfg.seed, fold, "init"))
        step = build_segmentation_step(
            cfg, data_plan.model_dims, in_channels, self.labels.num_classes, self.device, self.precision
        )
        for module in step.task.modules().values():
            distributed.broadcast_module(module)
        scheduler = torch.optim.lr_scheduler.PolynomialLR(step.optimizer_g, total_iters=cfg.train.epochs, power=0.9)
        best = {"score": -math.inf}

        def evaluate(epoch: int) -> dict:
            scores = monitor_dsc(step.task.generator, monitor, self.labels, self.device, self.precision)
            if select:
                score = np.nanmean(list(scores.values())) if scores else -math.inf
                if score > best["score"] and distributed.is_main():
                    best["score"] = score
                    save_checkpoint(
                        {"segmentor": step.task.generator.state_dict(), "epoch": epoch + 1, "score": float(score)},
                        fold_dir / "checkpoint_best.pt",
                    )
            return scores

        def probe(epoch: int) -> dict:
            """D's AUC at telling expert from predicted pairs on the monitor cases (chooses nothing)."""
            task = step.task
            return discriminator_probe(task.generator, task.discriminator, monitor, self.device, self.precision)

        def on_epoch_end(epoch: int, row: dict) -> None:
            self.clock.epoch_done()
            self.print(f"{self.prefix(fold)} {format_epoch_line(row, cfg.train.epochs)}  ({self.clock.status()})")
            plot_training_curves(trainer.history, fold_dir / "progress.png", f"{self.spec.name} fold {fold}")

        def make_loader(epoch: int):
            if target is not None and cfg.domain.adapt_ramp:  # the epoch's reversal weight, from its index alone
                step.task.adapt = cfg.domain.adapt * ganin_ramp(epoch / cfg.train.epochs)
            labelled = seeded_loader(
                dataset.epoch_samples(
                    cfg.train.empty_slices,
                    derived_seed(cfg.seed, fold, epoch, "empty_slices"),
                    repeat=1 / cfg.train.fraction,  # a fraction's epoch keeps the whole fold's length
                ),
                cfg.train.batch_size,
                cfg.seed,
                (fold,),
                epoch,
                num_workers=cfg.train.num_workers,
                drop_last=len(dataset) > cfg.train.batch_size,
            )  # fmt: skip
            if target is None:
                return labelled
            unlabelled = seeded_loader(target, cfg.train.batch_size, cfg.seed, (fold, "target"), epoch,
                                       num_workers=cfg.train.num_workers,
                                       drop_last=len(target) > cfg.train.batch_size)  # fmt: skip
            return WithTargetImages(labelled, unlabelled)

        trainer = Trainer(
            step,
            make_loader=make_loader,
            run_dir=fold_dir,
            seed=cfg.seed,
            stream=(fold,),
            device=self.device,
            d_steps=cfg.train.d_steps,
            schedulers={"lr_g": scheduler},
            evaluate=evaluate,
            probe=probe if step.task.discriminator is not None else None,
            on_epoch_end=on_epoch_end,
            print_fn=None,  # on_epoch_end prints the line with the study's progress
            progress=self.progress and distributed.is_main(),
            extra_state={"config_hash": cfg.digest()},
        )
        earlier = 0.0
        if trainer.resume():
            self.print(f"{self.prefix(fold)} resumed after epoch {trainer.epochs_done}")
            earlier = sum(row.get("seconds", 0.0) for row in trainer.history)
            if select and (fold_dir / "checkpoint_best.pt").is_file():
                best["score"] = load_checkpoint(fold_dir / "checkpoint_best.pt")["score"]
        trainer.fit(cfg.train.epochs)
        model = step.task.generator
        if select:
            model.load_state_dict(load_checkpoint(fold_dir / "checkpoint_best.pt")["segmentor"])
        return model, earlier

    def predict_and_score(self, fold: int, model, val_ids) -> list[dict]:
        """Predict each validation case in its native geometry and label values; one row per region."""
        out_dir = self.fold_dir(fold) / "predictions"
        rows = []
        for case in val_ids:
            record = self.records[case]
            inputs = prepare_case(record, self.data_plan)
            native = predict_native([model], inputs, self.config, self.device, self.precision)
            prediction = write_prediction(out_dir / f"{case}{inputs.suffix}", native, inputs)
            write_probabilities(out_dir / f"{case}.npz", native)
            rows += score_prediction(
                prediction, inputs.props, record.label_path, self.labels, self.config.metrics.specificity_region,
                case=case, patient=record.patient, fold=fold,
            )  # fmt: skip
        return rows


@torch.no_grad()
def monitor_dsc(model, dataset, labels: LabelSet, device, precision: Precision, batch_size: int = 16) -> dict:
    """DSC per region pooled over every voxel of ``dataset`` on the training grid.

    A cheap per-epoch curve for ``log.csv``. With ``train.select: last`` it is computed on the
    fold's validation cases and chooses nothing; with ``inner_val`` it is the selection score.
    """
    model.eval()
    counts = {name: np.zeros(3) for name in labels.regions}  # tp, pred, ref
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    class_values = torch.tensor(labels.values)
    for batch in loader:
        image = to_device(batch["image"], device)
        with precision.autocast():
            pred = model(image).argmax(1).cpu()
        pred_values, ref_values = class_values[pred], class_values[batch["label"][:, 0].long()]
        for name, values in labels.regions.items():
            values = torch.tensor(values)
            p, r = torch.isin(pred_values, values), torch.isin(ref_values, values)
            counts[name] += [float((p & r).sum()), float(p.sum()), float(r.sum())]
    model.train()
    return {f"dsc_{name}": (2 * c[0] / (c[1] + c[2]) if c[2] > 0 else math.nan) for name, c in counts.items()}
