"""``seg-train``'s work: patient-grouped k-fold training, fold predictions, metrics, report.

One call may hold several runs (``schemes`` x ``seeds``); they share one ``splits.json`` and
each is a complete run directory (DESIGN.md, "Run directory"). A fold is done when its
``fold_done.json`` exists: a later call (after ``--fold K`` jobs, or after a crash with
``--resume``) skips finished folds, resumes unfinished ones from ``checkpoint_last.pt`` and
assembles the report from every finished fold.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from adversarial_seg.atomic_files import atomic_write_bytes
from adversarial_seg.checkpoint import load_checkpoint, save_checkpoint
from adversarial_seg.config import Config, ConfigError, config_from_mapping
from adversarial_seg.data.dataset import build_training_dataset, prepare_case, write_prediction
from adversarial_seg.data.io import read_label
from adversarial_seg.data.labels import LabelSet
from adversarial_seg.data.layouts import CaseRecord
from adversarial_seg.data.transforms import DataPlan, make_plan
from adversarial_seg.gan.trainer import Trainer, seeded_loader
from adversarial_seg.plots import plot_training_curves
from adversarial_seg.provenance import git_commit, read_resolved_config, write_resolved_config
from adversarial_seg.runtime import Precision, derived_seed, seed_everything, to_device
from adversarial_seg.seg.inference import predict_native, window_divisor, write_probabilities
from adversarial_seg.seg.postprocess import decide_postprocessing
from adversarial_seg.seg.run import (
    FOLD_DONE,
    POSTPROCESSING,
    RunStateError,
    case_file,
    fold_done,
    trained_by,
    write_data_plan,
)
from adversarial_seg.seg.scoring import score_prediction
from adversarial_seg.seg.splits import check_splits, fold_splits, inner_split, read_splits, write_splits
from adversarial_seg.seg.summary import format_table, read_cases_csv, summarise, write_cases_csv, write_json
from adversarial_seg.seg.task import build_segmentation_step


@dataclass
class RunPlan:
    """One scheme and one seed: a complete run directory."""

    config: Config
    run_dir: Path
    name: str


@dataclass
class FoldOutcome:
    fold: int
    status: str  # "trained", "skipped" (already done), "failed"
    seconds: float = 0.0
    message: str = ""


@dataclass
class RunOutcome:
    plan: RunPlan
    folds: list[FoldOutcome] = field(default_factory=list)
    summary: dict | None = None

    @property
    def failed(self) -> list[FoldOutcome]:
        return [f for f in self.folds if f.status == "failed"]


# ----------------------------------------------------------------------------- planning


def plan_runs(config: Config, output: Path) -> list[RunPlan]:
    """Expand ``schemes`` x ``seeds`` into run directories (the run itself when there is one)."""
    schemes = config.schemes or [config.scheme]
    seeds = config.seeds or [config.seed]
    if len(schemes) * len(seeds) == 1:
        single = config.model_copy(update={"scheme": schemes[0], "seed": seeds[0], "schemes": None, "seeds": None})
        return [RunPlan(single, output, schemes[0])]
    plans = []
    for scheme in schemes:
        for seed in seeds:
            name = scheme + (f"_seed{seed}" if len(seeds) > 1 else "")
            run_config = config.model_copy(update={"scheme": scheme, "seed": seed, "schemes": None, "seeds": None})
            plans.append(RunPlan(run_config, output / name, name))
    return plans


def prepare_splits(config: Config, output: Path, records: list[CaseRecord]) -> list[dict]:
    """``output/splits.json``: reused when present, else from ``cv.splits_file``, else made."""
    cases = [r.case_id for r in records]
    target = output / "splits.json"
    if target.is_file():
        folds = read_splits(target)
        check_splits(folds, cases, str(target))
        return folds
    if config.cv.splits_file is not None:
        folds = read_splits(config.cv.splits_file)
        check_splits(folds, cases, str(config.cv.splits_file))
    else:
        strata = None
        if config.data.stratify:
            strata = [r.stratum for r in records]
        folds = fold_splits(cases, [r.patient for r in records], config.cv.folds, config.cv.seed, strata)
    write_splits(folds, target)
    return folds


def check_run_dir(plan: RunPlan, resume: bool, only_fold: int | None) -> None:
    """Refuse to overwrite: a run made with another config, or unfinished folds without --resume."""
    config_path = plan.run_dir / "config.yaml"
    if config_path.is_file():
        _, provenance = read_resolved_config(config_path)
        if provenance.get("config_hash") != plan.config.digest():
            raise RunStateError(
                f"{plan.run_dir} holds a run made with a different config (config.yaml); "
                "choose another --output, or delete that folder to start over"
            )
    if resume:
        return
    for fold_dir in sorted(plan.run_dir.glob("fold_*")):
        fold = int(fold_dir.name.split("_")[1])
        if only_fold is not None and fold != only_fold:
            continue
        if (fold_dir / "checkpoint_last.pt").is_file() and not (fold_dir / FOLD_DONE).is_file():
            raise RunStateError(
                f"{fold_dir} holds an unfinished fold; pass --resume to continue it, or choose another --output"
            )


# ----------------------------------------------------------------------------- one fold


class FoldRunner:
    """Trains one fold of one run, predicts its validation cases and scores them."""

    def __init__(self, plan: RunPlan, folds, records, data_plan: DataPlan, device, progress: bool, print_fn=print):
        self.plan = plan
        self.config = plan.config
        self.folds = folds
        self.records = {r.case_id: r for r in records}
        self.data_plan = data_plan
        self.labels = data_plan.labels
        self.device = device
        self.precision = Precision.for_device(device, self.config.train.amp)
        self.progress = progress
        self.print = print_fn

    def fold_dir(self, fold: int) -> Path:
        return self.plan.run_dir / f"fold_{fold}"

    def _split(self, fold: int) -> tuple[list[str], list[str], list[str] | None]:
        """(training cases, validation = test cases, inner selection cases or None)."""
        train, val = self.folds[fold]["train"], self.folds[fold]["val"]
        if self.config.train.select != "inner_val":
            return train, val, None
        groups = [self.records[c].patient for c in train]
        inner_train, inner_val = inner_split(train, groups, seed=derived_seed(self.config.cv.seed, fold, "inner"))
        return inner_train, val, inner_val

    def run(self, fold: int) -> FoldOutcome:
        fold_dir = self.fold_dir(fold)
        if (fold_dir / FOLD_DONE).is_file():
            return FoldOutcome(fold, "skipped")
        started = time.perf_counter()
        train_ids, val_ids, select_ids = self._split(fold)
        model, earlier = self.train(fold, train_ids, select_ids or val_ids, select=select_ids is not None)
        rows = self.predict_and_score(fold, model, val_ids)
        write_cases_csv(rows, fold_dir / "cases.csv")
        seconds = time.perf_counter() - started + earlier
        done = {"fold": fold, "seconds": round(seconds, 1), "train": len(train_ids), "val": len(val_ids),
                "git_commit": git_commit()}  # fmt: skip
        atomic_write_bytes(fold_dir / FOLD_DONE, json.dumps(done).encode())
        return FoldOutcome(fold, "trained", seconds)

    def train(self, fold: int, train_ids, monitor_ids, select: bool) -> tuple[torch.nn.Module, float]:
        """The fold's segmentor, and the seconds of the epochs an interrupted earlier process ran."""
        cfg, fold_dir, plan = self.config, self.fold_dir(fold), self.data_plan
        train_records = [self.records[c] for c in train_ids]
        monitor_records = [self.records[c] for c in monitor_ids]
        dataset = build_training_dataset(train_records, cfg.data, augment=cfg.train.augmentations, plan=plan)
        monitor = build_training_dataset(monitor_records, cfg.data, augment=(), plan=plan)
        in_channels = dataset[0]["image"].shape[0]
        seed_everything(derived_seed(cfg.seed, fold, "init"))
        step = build_segmentation_step(
            cfg, plan.model_dims, in_channels, self.labels.num_classes, self.device, self.precision
        )
        scheduler = torch.optim.lr_scheduler.PolynomialLR(step.optimizer_g, total_iters=cfg.train.epochs, power=0.9)
        best = {"score": -math.inf}

        def evaluate(epoch: int) -> dict:
            scores = monitor_dsc(step.task.generator, monitor, self.labels, self.device, self.precision)
            if select:
                score = np.nanmean(list(scores.values())) if scores else -math.inf
                if score > best["score"]:
                    best["score"] = score
                    save_checkpoint(
                        {"segmentor": step.task.generator.state_dict(), "epoch": epoch + 1, "score": float(score)},
                        fold_dir / "checkpoint_best.pt",
                    )
            return scores

        def on_epoch_end(epoch: int, row: dict) -> None:
            plot_training_curves(trainer.history, fold_dir / "progress.png", f"{self.plan.name} fold {fold}")

        trainer = Trainer(
            step,
            make_loader=lambda epoch: seeded_loader(
                dataset,
                cfg.train.batch_size,
                cfg.seed,
                (fold,),
                epoch,
                num_workers=cfg.train.num_workers,
                drop_last=len(dataset) > cfg.train.batch_size,
            ),  # fmt: skip
            run_dir=fold_dir,
            seed=cfg.seed,
            stream=(fold,),
            device=self.device,
            d_steps=cfg.train.d_steps,
            schedulers={"lr_g": scheduler},
            evaluate=evaluate,
            on_epoch_end=on_epoch_end,
            print_fn=lambda line: self.print(f"[{self.plan.name} fold {fold}] {line}"),
            progress=self.progress,
            extra_state={"config_hash": cfg.digest()},
        )
        earlier = 0.0
        if trainer.resume():
            self.print(f"[{self.plan.name} fold {fold}] resumed after epoch {trainer.epochs_done}")
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


# ----------------------------------------------------------------------------- report


def pooled_predictions(plan: RunPlan, folds: list[dict], records: dict[str, CaseRecord], scheme: LabelSet):
    """(prediction, reference) label-value maps of every cross-validation case, one at a time."""
    for split in folds:
        predictions = plan.run_dir / f"fold_{split['fold']}" / "predictions"
        for case in split["val"]:
            path = case_file(predictions, case)
            if path is None:
                raise RunStateError(f"{predictions} has no prediction for case {case}; delete the fold's "
                                    "fold_done.json and run seg-train --resume to predict it again")  # fmt: skip
            reference, _ = read_label(records[case].label_path, scheme.mask_threshold, scheme.foreground_value)
            yield read_label(path)[0], reference


def assemble_report(plan: RunPlan, folds: list[dict], records: dict[str, CaseRecord], scheme: LabelSet) -> dict | None:
    """``report/cases.csv`` and ``report/summary.json`` from every finished fold; once all folds
    have finished, the post-processing decisions (``report/postprocessing.json``, then frozen)."""
    rows, finished, missing, done = [], [], [], []
    for fold in range(len(folds)):
        fold_dir = plan.run_dir / f"fold_{fold}"
        record = fold_done(fold_dir)
        if record is not None:
            rows += read_cases_csv(fold_dir / "cases.csv")
            done.append(record)
            finished.append(fold)
        else:
            missing.append(fold)
    if not rows:
        return None
    for row in rows:
        row["fold"] = int(row["fold"])
    report_dir = plan.run_dir / "report"
    write_cases_csv(rows, report_dir / "cases.csv")
    summary = {
        "run": plan.name,
        "scheme": plan.config.scheme,
        "seed": plan.config.seed,
        "weights": dict(zip(("w_sup", "w_adv"), plan.config.loss_weights())),
        "dataset": str(plan.config.data.root),
        "config_hash": plan.config.digest(),
        "git_commit": trained_by(done),  # the code that trained the folds, not the one assembling this
        "folds_finished": finished,
        "folds_missing": missing,
        "complete": not missing,
        "n_cases": len({r["case"] for r in rows}),
        "train_seconds": round(sum(d["seconds"] for d in done), 1),
        "classes": summarise(rows),
    }
    post_path = plan.run_dir / POSTPROCESSING
    if not missing and not post_path.is_file():
        write_json(decide_postprocessing(lambda: pooled_predictions(plan, folds, records, scheme), scheme), post_path)
    if post_path.is_file():
        summary["postprocessing"] = json.loads(post_path.read_text())
    write_json(summary, report_dir / "summary.json")
    return summary


# ----------------------------------------------------------------------------- data


def resolve_data(config: Config, output: Path) -> Config:
    """Absolute ``data.root``; with ``data.synthetic`` and no root, phantoms are written into
    ``output/data`` (once) and the keys that read them are filled in under the user's own."""
    from adversarial_seg.data.phantoms import phantom_data_config, write_phantoms

    data = config.data
    if data.root is not None:
        return config.model_copy(
            update={"data": data.model_copy(update={"root": Path(data.root).expanduser().resolve()})}
        )
    if data.synthetic is None:
        raise ConfigError("data.root is not set; point it at a dataset folder, or set data.synthetic to use phantoms")
    root = (output / "data").resolve()
    marker = root / ".phantoms_complete"
    if marker.is_file():
        mapping = phantom_data_config(data.synthetic.kind, root)
    else:
        mapping = write_phantoms(data.synthetic, root)
        atomic_write_bytes(marker, b"")
    mapping.update(data.model_dump(exclude_unset=True, exclude={"root"}))
    raw = config.model_dump(exclude_unset=True)
    raw["data"] = mapping
    return config_from_mapping(raw, source="data.synthetic")


def probe_networks(config: Config, record: CaseRecord, plan: DataPlan) -> None:
    """Run the segmentor and the discriminator once on a training-sized input, so that a size
    they cannot take is refused up front (exit 2) rather than after data loading in fold 0."""
    image = prepare_case(record, plan).image
    spatial = list(image.shape[1:])
    if plan.model_dims == 2 and len(spatial) == 3:
        spatial.pop(plan.slice_axis)
    spatial = list(plan.patch_size or plan.size or spatial)
    cpu = torch.device("cpu")
    step = build_segmentation_step(
        config, plan.model_dims, image.shape[0], plan.labels.num_classes, cpu, Precision("cpu", None)
    )
    batch = {"image": torch.zeros(2, image.shape[0], *spatial), "label": torch.zeros(2, 1, *spatial, dtype=torch.long)}
    with torch.no_grad():
        try:
            logits = step.task.generate(batch)
        except (RuntimeError, ValueError) as exc:
            raise RunStateError(
                f"model.segmentor cannot take training inputs of size {spatial} ({exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0]}); make data.size a multiple of {window_divisor(config)}"
            ) from None
        if step.task.discriminator is not None:
            try:
                step.task.discriminate(batch, step.task.fake_sample(batch, logits))
            except (RuntimeError, ValueError):
                disc = config.model.discriminator
                raise RunStateError(
                    f"model.discriminator: a {spatial} input scaled by input_scale {disc.input_scale} is too small "
                    "for its layers; raise model.discriminator.input_scale, lower num_layers_d, or enlarge data.size"
                ) from None


def run_study(
    config: Config,
    output: Path,
    records: list[CaseRecord],
    device: torch.device,
    only_fold: int | None = None,
    resume: bool = False,
    progress: bool = True,
    print_fn=print,
) -> list[RunOutcome]:
    """Every run of the study on the same splits; returns per-run outcomes (failures included)."""
    plans = plan_runs(config, output)
    data_plan = make_plan(config.data, records)  # the runs differ in scheme and seed, not in data
    for plan in plans:
        check_run_dir(plan, resume, only_fold)
        probe_networks(plan.config, records[0], data_plan)
    folds = prepare_splits(config, output, records)
    if only_fold is not None and not 0 <= only_fold < len(folds):
        raise RunStateError(f"--fold {only_fold} does not exist; folds are 0..{len(folds) - 1}")
    outcomes = []
    for plan in plans:
        plan.run_dir.mkdir(parents=True, exist_ok=True)
        if plan.run_dir != output:
            write_splits(folds, plan.run_dir / "splits.json")
        if not (plan.run_dir / "config.yaml").is_file():  # a resume keeps the provenance of the start
            write_resolved_config(plan.config, plan.run_dir / "config.yaml", seed=plan.config.seed)
        write_data_plan(data_plan, plan.run_dir)
        runner = FoldRunner(plan, folds, records, data_plan, device, progress, print_fn)
        outcome = RunOutcome(plan)
        for fold in [only_fold] if only_fold is not None else range(len(folds)):
            try:
                outcome.folds.append(runner.run(fold))
            except (FloatingPointError, RuntimeError) as exc:
                print_fn(f"[{plan.name} fold {fold}] failed: {exc}")
                outcome.folds.append(FoldOutcome(fold, "failed", message=str(exc)))
        outcome.summary = assemble_report(plan, folds, runner.records, data_plan.labels)
        if outcome.summary is not None:
            print_fn(f"\n{plan.name}: {len(outcome.summary['folds_finished'])}/{len(folds)} folds finished")
            print_fn(format_table(outcome.summary["classes"]))
        outcomes.append(outcome)
    return outcomes
