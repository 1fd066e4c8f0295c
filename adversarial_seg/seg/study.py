"""``seg-train``'s work: one up-front preparation, then every run's folds, then the reports.

``prepare_study`` does everything that can find a wrong input before anything is trained or
written (resolve and validate the data, plan the preprocessing, place the output, probe the
networks, check keys that refer to each other, make or check the splits) and raises
``InputError`` (exit 2) with one sentence per problem. ``run_study`` then trains: one call may hold
several runs (``schemes`` x ``seeds``) that share one ``splits.json``, each a complete run
directory (DESIGN.md, "Run directory"). A fold that fails for any reason is named and the others go
on; a later call with ``--resume`` continues unfinished folds and assembles every report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from adversarial_seg import distributed
from adversarial_seg.atomic_files import atomic_write_bytes, check_output_folder
from adversarial_seg.checkpoint import load_checkpoint
from adversarial_seg.config import Config, ConfigError, config_from_mapping
from adversarial_seg.data.labels import LabelSet
from adversarial_seg.data.layouts import CaseRecord
from adversarial_seg.data.transforms import DataPlan, make_plan
from adversarial_seg.data.validate import validate_dataset
from adversarial_seg.errors import InputError, describe_os_error
from adversarial_seg.gan.trainer import CHECKPOINT_LAST
from adversarial_seg.provenance import read_resolved_config, write_resolved_config
from adversarial_seg.runtime import Precision
from adversarial_seg.seg.fold import FoldOutcome, FoldRunner, fold_cases
from adversarial_seg.seg.inference import window_divisor
from adversarial_seg.seg.progress import StudyClock, epochs_logged
from adversarial_seg.seg.report import assemble_report
from adversarial_seg.seg.run import FOLD_DONE, RunSpec, RunStateError, write_data_plan
from adversarial_seg.seg.splits import check_splits, fold_splits, read_splits, write_splits
from adversarial_seg.seg.summary import format_table
from adversarial_seg.seg.task import build_segmentation_step


@dataclass
class Study:
    """Everything ``run_study`` needs, checked: the runs, their shared data plan and splits."""

    config: Config
    output: Path
    records: list[CaseRecord]
    data_plan: DataPlan
    runs: list[RunSpec]
    folds: list[dict]
    only_fold: int | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class RunOutcome:
    spec: RunSpec
    folds: list[FoldOutcome] = field(default_factory=list)
    summary: dict | None = None
    report_error: str | None = None

    @property
    def failed(self) -> list[FoldOutcome]:
        return [f for f in self.folds if f.status == "failed"]


# ----------------------------------------------------------------------------- preparation


def prepare_study(config: Config, output: Path, resume: bool = False, only_fold: int | None = None) -> Study:
    """Resolve, validate and plan a ``seg-train`` call; InputError when anything is wrong.

    Nothing is written except the output folder itself and, for ``data.synthetic``, the phantoms.
    """
    output = Path(output).resolve()
    check_run_folder(output, config.data.root)
    config = resolve_data(config, output)
    warnings: list[str] = []
    records = validate_dataset(config.data, warnings, config.domain.column if config.domain else None)
    check_domains(config, records)
    data_plan = make_plan(config.data, records)  # the runs differ in scheme and seed, not in data
    check_cross_references(config, data_plan.labels)
    runs = run_specs(config, output)
    for spec in runs:
        check_run_dir(spec, resume, only_fold)
        probe_networks(spec.config, records[0], data_plan)
    folds = plan_splits(config, output, records)
    if only_fold is not None and not 0 <= only_fold < len(folds):
        raise RunStateError(f"--fold {only_fold} does not exist; folds are 0..{len(folds) - 1}")
    by_case = {r.case_id: r for r in records}
    for fold in range(len(folds)):  # inner selection splits fail here, not after fold 0 trained
        fold_cases(config, folds, fold, by_case)
    return Study(config, output, records, data_plan, runs, folds, only_fold, warnings)


def check_domains(config: Config, records) -> None:
    """With ``domain`` set, every case names its site and the sites named exist (InputError)."""
    if config.domain is None:
        return
    column = config.domain.column
    unnamed = [r.case_id for r in records if r.domain is None]
    if unnamed:
        raise InputError(f"cases {unnamed[:3]} have no {column} in cases.csv (domain.column); give every case its site")
    sites = {r.domain for r in records}
    for key in ("source", "target"):
        missing = sorted(set(getattr(config.domain, key)) - sites)
        if missing:
            raise InputError(
                f"domain.{key} names sites {missing} that no case has in column {column}; the sites are {sorted(sites)}"
            )


def check_run_folder(output: Path, data_root: Path | None) -> None:
    """The run folder may not lie inside the dataset (later scans would read its predictions as
    cases) and must be a folder we can create and write."""
    if data_root is not None:
        root = Path(data_root).expanduser().resolve()
        if output == root or root in output.parents:
            raise InputError(f"--output {output} lies inside the dataset {root}; choose a run folder outside data.root")
    check_output_folder(output)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"--output {output} cannot be created ({exc.strerror}); choose a folder you can write to"
        ) from None


def check_cross_references(config: Config, label_set: LabelSet) -> None:
    """Keys that name something defined elsewhere in the config."""
    region = config.metrics.specificity_region
    if region is not None and region not in label_set.regions:
        raise ConfigError(
            f"metrics.specificity_region '{region}' is not a region of this dataset "
            f"({', '.join(label_set.regions)}); name one of them or define it in data.regions"
        )


def run_specs(config: Config, output: Path) -> list[RunSpec]:
    """Expand ``schemes`` x ``seeds`` into run directories (the run itself when there is one)."""
    schemes = config.schemes or [config.scheme]
    seeds = config.seeds or [config.seed]
    if len(schemes) * len(seeds) == 1:
        single = config.model_copy(update={"scheme": schemes[0], "seed": seeds[0], "schemes": None, "seeds": None})
        return [RunSpec(single, output, schemes[0])]
    specs = []
    for scheme in schemes:
        for seed in seeds:
            name = scheme + (f"_seed{seed}" if len(seeds) > 1 else "")
            run_config = config.model_copy(update={"scheme": scheme, "seed": seed, "schemes": None, "seeds": None})
            specs.append(RunSpec(run_config, output / name, name))
    return specs


def plan_splits(config: Config, output: Path, records: list[CaseRecord]) -> list[dict]:
    """The study's folds: ``output/splits.json`` when present, else ``cv.splits_file``, else made
    with scikit-learn; checked against the dataset's cases. Nothing is written here."""
    cases = [r.case_id for r in records]
    existing = output / "splits.json"
    source = existing if existing.is_file() else config.cv.splits_file
    if source is not None:
        folds = read_splits(source)
        check_splits(folds, cases, str(source))
        return folds
    strata = [r.stratum for r in records] if config.data.stratify else None
    return fold_splits(cases, [r.patient for r in records], config.cv.folds, config.cv.seed, strata)


def check_run_dir(spec: RunSpec, resume: bool, only_fold: int | None) -> None:
    """Refuse to overwrite: a run made with another config, or unfinished folds without --resume."""
    config_path = spec.run_dir / "config.yaml"
    if config_path.is_file():
        _, provenance = read_resolved_config(config_path)
        if provenance.get("config_hash") != spec.config.digest():
            raise RunStateError(
                f"{spec.run_dir} holds a run made with a different config (config.yaml); "
                "choose another --output, or delete that folder to start over"
            )
    for fold_dir in sorted(spec.run_dir.glob("fold_*")):
        fold = int(fold_dir.name.split("_")[1])
        checkpoint = fold_dir / CHECKPOINT_LAST
        if only_fold is not None and fold != only_fold or (fold_dir / FOLD_DONE).is_file() or not checkpoint.is_file():
            continue
        if not resume:
            raise RunStateError(
                f"{fold_dir} holds an unfinished fold; pass --resume to continue it, or choose another --output"
            )
        load_checkpoint(checkpoint)  # a truncated or tampered checkpoint is refused before any fold trains


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
        raise ConfigError(
            "data.root is not set; give the dataset folder with --set data.root=/path/to/dataset (docs/data.md says "
            "which datasets each config fits and where they come from), or set data.synthetic to train on phantoms"
        )
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
    """Build the networks (an unknown name is a ConfigError) and run the segmentor and the
    discriminator once on a training-sized input, so that a size they cannot take is refused up
    front rather than after data loading in fold 0."""
    from adversarial_seg.data.dataset import prepare_case

    image = prepare_case(record, plan).image
    spatial = list(image.shape[1:])
    if plan.model_dims == 2 and len(spatial) == 3:
        spatial.pop(plan.slice_axis)
    spatial = list(plan.patch_size or plan.size or spatial)
    cpu = torch.device("cpu")
    step = build_segmentation_step(
        config, plan.model_dims, plan.model_in_channels, plan.labels.num_classes, cpu, Precision("cpu", None)
    )
    batch = {
        "image": torch.zeros(2, plan.model_in_channels, *spatial),
        "label": torch.zeros(2, 1, *spatial, dtype=torch.long),
    }
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


# ----------------------------------------------------------------------------- training


def run_study(study: Study, device: torch.device, progress: bool = True, print_fn=print) -> list[RunOutcome]:
    """Train every run of a prepared study on the same splits; per-run outcomes, failures included.

    A fold that raises anything but an interrupt is recorded as failed with its reason and the
    next fold starts; what it wrote stays (its checkpoint, for --resume).
    """
    if distributed.is_main():
        write_study_files(study)
    distributed.barrier()
    folds = [study.only_fold] if study.only_fold is not None else list(range(len(study.folds)))
    clock = StudyClock(epochs_left(study, folds))
    outcomes = []
    for index, spec in enumerate(study.runs):
        label = spec.name + (f" (run {index + 1}/{len(study.runs)})" if len(study.runs) > 1 else "")
        runner = FoldRunner(spec, study.folds, study.records, study.data_plan, device, progress, print_fn, clock, label)
        outcome = RunOutcome(spec)
        for fold in folds:
            try:
                outcome.folds.append(runner.run(fold))
            except Exception as exc:  # noqa: BLE001 - name the fold and its reason, go on with the others
                if distributed.world_size() > 1:
                    raise  # torchrun: the other ranks wait in this fold's collectives; stop them all
                message = _one_line(exc)
                print_fn(f"[{spec.name} fold {fold}] failed: {message}")
                outcome.folds.append(FoldOutcome(fold, "failed", message=message))
        if not distributed.is_main():  # torchrun: rank 0 writes the run's report
            outcomes.append(outcome)
            continue
        try:
            outcome.summary = assemble_report(spec, study.folds, runner.records, study.data_plan.labels)
        except Exception as exc:  # noqa: BLE001 - the folds' own files stay; the report can be redone
            outcome.report_error = _one_line(exc)
            print_fn(f"[{spec.name}] report failed: {outcome.report_error}")
        if outcome.summary is not None:
            print_fn(f"\n{spec.name}: {len(outcome.summary['folds_finished'])}/{len(study.folds)} folds finished")
            print_fn(format_table(outcome.summary["classes"]))
        outcomes.append(outcome)
    return outcomes


def write_study_files(study: Study) -> None:
    """``splits.json``, and per run its ``config.yaml`` (once: a resume keeps the provenance of the
    start), ``splits.json`` and ``data_plan.json``: before any fold trains, in one process."""
    write_splits(study.folds, study.output / "splits.json")
    for spec in study.runs:
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        if spec.run_dir != study.output:
            write_splits(study.folds, spec.run_dir / "splits.json")
        if not (spec.run_dir / "config.yaml").is_file():
            write_resolved_config(spec.config, spec.run_dir / "config.yaml", seed=spec.config.seed)
        write_data_plan(study.data_plan, spec.run_dir)


def pending_folds(study: Study) -> list[int]:
    """Folds that some run of the study has not finished."""
    return [
        fold
        for fold in range(len(study.folds))
        if any(not (spec.run_dir / f"fold_{fold}" / FOLD_DONE).is_file() for spec in study.runs)
    ]


def epochs_left(study: Study, folds: list[int]) -> int:
    """Epochs still to train over every run and the given folds (finished folds count 0)."""
    total = 0
    for spec in study.runs:
        for fold in folds:
            fold_dir = spec.run_dir / f"fold_{fold}"
            if not (fold_dir / FOLD_DONE).is_file():
                total += max(spec.config.train.epochs - epochs_logged(fold_dir), 0)
    return total


def _one_line(exc: BaseException) -> str:
    """A failure as one line: our own errors are sentences already; others get their type."""
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    text = str(exc).strip().splitlines()
    if isinstance(exc, (InputError, FloatingPointError)):
        return text[0] if text else exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text[0]}" if text else exc.__class__.__name__
