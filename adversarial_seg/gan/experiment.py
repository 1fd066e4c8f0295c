"""One ``gan-train`` run: data, variant, core trainer, per-epoch evaluation and figures, final metrics.

Run directory:
```
RUN/config.yaml            resolved config + provenance (config hash, git commit, versions, seed)
RUN/log.csv                per epoch: every loss term, d_real, d_fake, val_* metrics, lr_g / lr_d
                           (with a train.lr_schedule: the rates the epoch trained with), seconds
RUN/checkpoint_last.pt     the core trainer's checkpoint (resume with --resume)
RUN/samples/epoch_NNN.png  sample grid per epoch (one row per class for a cGAN; scatter for the ring;
                           source | generated | target rows for pix2pix)
RUN/traversal_*.png        InfoGAN latent traversals (after training)
RUN/metrics.png            per-epoch metrics plot
RUN/metrics.json           final metrics on the test split beside the same metrics on real held-out data
```
Per-epoch metrics (``val_*``) compare a fixed-noise sample with the validation split (pix2pix:
G's images for the validation sources against their targets, ``gan/translation.py``); the final
ones use the test split. Nothing is chosen on the test split.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml

from adversarial_seg.atomic_files import atomic_write_bytes
from adversarial_seg.config import ConfigError
from adversarial_seg.gan.config import PAIRED_VARIANTS, GANConfig, TrainConfig, config_digest
from adversarial_seg.gan.data import TensorPairs, digits_splits, ring_centers, ring_splits
from adversarial_seg.gan.diagnostics import MonitoredStep, diversity_warning, mode_coverage_warning
from adversarial_seg.gan.figures import save_image_grid, save_metrics_plot, save_ring_scatter
from adversarial_seg.gan.metrics import (
    classifier_outputs,
    digits_metrics,
    pairwise_spread,
    parzen_evaluation,
    ring_metrics,
)
from adversarial_seg.gan.trainer import Trainer, seeded_loader
from adversarial_seg.gan.translation import CycleEvaluator, TranslationEvaluator
from adversarial_seg.gan.variants import build_gan_step, build_lr_schedulers
from adversarial_seg.provenance import git_commit, write_resolved_config
from adversarial_seg.runtime import Precision, derived_seed, seed_everything

Tensor = torch.Tensor


# --------------------------------------------------------------------------- provenance
def resume_digest(config: GANConfig) -> str:
    """The config hash with ``train.epochs`` at its default: a run may be resumed to train longer."""
    body = config.model_dump(mode="json")
    body["train"]["epochs"] = TrainConfig.model_fields["epochs"].default
    return config_digest(body)


def write_config(config: GANConfig, path: Path, command: str) -> None:
    """``config.yaml``: the validated config plus provenance (hash, git commit, versions, command)."""
    write_resolved_config(config, path, resume_hash=resume_digest(config), command=command)


def stored_resume_hash(run_dir: Path) -> str | None:
    """The resume hash ``config.yaml`` of ``run_dir`` was written with (None without the file);
    ConfigError naming the file when it is not a run's config."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return None
    fix = "restore it from a copy, or start a new run in another --output"
    try:
        body = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:  # truncated, binary or unreadable
        raise ConfigError(f"{path} cannot be read as YAML ({exc.__class__.__name__}); {fix}") from None
    provenance = body.get("provenance") if isinstance(body, dict) else None
    if not isinstance(provenance, dict):
        raise ConfigError(f"{path} does not hold a gan-train run's config with its provenance; {fix}")
    return provenance.get("resume_hash")


# --------------------------------------------------------------------------- data
def image_data(splits: dict, classes: int = 0, **extra) -> dict:
    """``load_data``'s body for image splits ``{name: (x, y)}`` (the per-sample shape read off x)."""
    return {"splits": splits, "shape": tuple(splits["train"][0].shape[1:]), "classes": classes, "images": True, **extra}


def load_data(config: GANConfig) -> dict:
    """``{"splits": {name: (x, y)}, "shape": per-sample shape, "classes": K, "images": bool}``; for
    PH2 pairs x is the image, y the source (the mask; for srgan the downsampled image) and
    ``"cases"`` holds each split's case ids (srgan on two sites: x is a slice of either site, y its
    downsampled copy, and ``"cases"`` names each slice's case). For cyclegan's two sites x is B's slices, y A's (unpaired:
    their numbers differ); for stackgan y is the sentence's word ids (``"text"``: the sentences and
    attributes); for progressive on PH2 images y is unused."""
    if config.data.dataset == "sites":
        from adversarial_seg.gan.site_data import site_splits

        sites = site_splits(config.data.sites, config.data.split_seed)
        if config.variant == "srgan":  # the slices of both sites, each with its downsampled copy as the source
            from adversarial_seg.gan.paired_data import low_resolution

            both = {name: torch.cat([b, a]) for name, (b, a) in sites["splits"].items()}
            splits = {name: (x, low_resolution(x, config.data.sr_scale)) for name, x in both.items()}
            cases = {name: [*c["b"], *c["a"]] for name, c in sites["slice_cases"].items()}  # per slice
            return image_data(splits, cases=cases)
        return image_data(sites["splits"], cases=sites["cases"])
    if config.data.dataset == "ph2_text":
        from adversarial_seg.gan.ph2_text import ph2_text_splits

        text = ph2_text_splits(config.data.ph2.root, config.data.ph2.size, config.data.split_seed)
        splits = {name: (part["images"], part["tokens"]) for name, part in text.items()}
        return image_data(splits, cases={name: part["cases"] for name, part in text.items()}, text=text)
    if config.data.dataset in ("ph2", "ph2_images"):
        from adversarial_seg.gan.paired_data import low_resolution, ph2_pairs

        pairs = ph2_pairs(config.data.ph2.root, config.data.ph2.size, config.data.split_seed)
        splits = {name: (images, masks) for name, (images, masks, _) in pairs.items()}
        if config.data.dataset == "ph2_images":  # the images alone
            splits = {
                name: (images, torch.zeros(len(images), dtype=torch.long)) for name, (images, _) in splits.items()
            }
        elif config.variant == "srgan":  # the source is the image itself, downsampled
            splits = {name: (x, low_resolution(x, config.data.sr_scale)) for name, (x, _) in splits.items()}
        return image_data(splits, cases={name: cases for name, (_, _, cases) in pairs.items()})
    if config.data.dataset == "digits":
        return image_data(digits_splits(config.data.size, config.data.split_seed), classes=10)
    ring = config.data.ring
    splits = ring_splits(ring.modes, ring.radius, ring.std, ring.samples, config.data.split_seed)
    return {"splits": splits, "shape": (2,), "classes": ring.modes, "images": False}


def unit_pixels(images: Tensor) -> Tensor:
    """Images in [-1, 1] -> flattened 16x16 pixels in [0, 1] (the Parzen space)."""
    from adversarial_seg.gan.metrics import to_metric_space

    return (to_metric_space(images).flatten(1) + 1) / 2


# --------------------------------------------------------------------------- evaluation
class Evaluator:
    """Metrics of a task's samples against a real split; fixed noise per call for comparable epochs."""

    def __init__(self, config: GANConfig, data: dict):
        self.config, self.data = config, data
        self.images = data["images"]
        self.ring = config.data.ring
        self.centres = ring_centers(self.ring.modes, self.ring.radius)
        self._features: dict[str, object] = {}
        self._spread: dict[str, float] = {}

    def draw(self, task, n: int, purpose: str) -> Tensor:
        generator = torch.Generator().manual_seed(derived_seed(self.config.seed, "eval", purpose))
        labels = None
        if getattr(task, "conditional", False):
            labels = torch.arange(n) % task.num_classes
        chunks, done = [], 0
        while done < n:
            m = min(2048, n - done)
            chunks.append(task.sample(m, generator, None if labels is None else labels[done : done + m]).cpu())
            done += m
        return torch.cat(chunks)

    def reference_features(self, split: str):
        if split not in self._features:
            self._features[split] = classifier_outputs(self.data["splits"][split][0])[0]
        return self._features[split]

    def real_spread(self, split: str) -> float:
        if split not in self._spread:
            self._spread[split] = pairwise_spread(self.data["splits"][split][0])
        return self._spread[split]

    def epoch_metrics(self, task) -> dict[str, float]:
        """The per-epoch metrics of a fixed-noise sample against the validation split."""
        return self.labelled_metrics(task, self.config.eval.samples, "epoch", "val")

    def labelled_metrics(self, task, n: int, purpose: str, split: str) -> dict[str, float]:
        """``sample_metrics`` of a draw; for a class-conditional task on digits also ``class_accuracy``,
        the share of samples the shipped classifier assigns to the class they were drawn for."""
        samples = self.draw(task, n, purpose)
        metrics = self.sample_metrics(samples, split)
        if self.images and getattr(task, "conditional", False):
            asked = (torch.arange(n) % task.num_classes).numpy()
            metrics["class_accuracy"] = float((classifier_outputs(samples)[1].argmax(axis=1) == asked).mean())
        return metrics

    def sample_metrics(self, samples: Tensor, split: str) -> dict[str, float]:
        """Classifier score / FD (digits) or modes covered / high quality (ring), plus the spread ratio."""
        if self.images:
            metrics = digits_metrics(samples, self.reference_features(split))
        else:
            metrics = ring_metrics(samples, self.centres, self.ring.std)
        metrics["spread_ratio"] = pairwise_spread(samples) / max(self.real_spread(split), 1e-12)
        return metrics

    def parzen(self, centres: Tensor) -> dict[str, float]:
        val, test = self.data["splits"]["val"][0], self.data["splits"]["test"][0]
        if self.images:
            return parzen_evaluation(unit_pixels(centres), unit_pixels(val), unit_pixels(test))
        return parzen_evaluation(centres.flatten(1), val, test)

    def final(self, task) -> dict[str, float]:
        metrics = self.labelled_metrics(task, self.config.eval.samples, "final", "test")
        metrics.update(self.parzen(self.draw(task, self.config.eval.parzen_samples, "parzen")))
        return metrics

    def reference(self) -> dict[str, float]:
        """The same metrics on real held-out data: the validation split scored like a sample (against
        test), and Parzen windows on the training split."""
        images, labels = self.data["splits"]["val"]
        metrics = self.sample_metrics(images, "test")
        if self.images:  # how often the classifier names a real held-out digit right
            metrics["class_accuracy"] = float((classifier_outputs(images)[1].argmax(axis=1) == labels.numpy()).mean())
        metrics.update(self.parzen(self.data["splits"]["train"][0]))
        return metrics

    def save_samples(self, task, path: Path, title: str) -> None:
        config = self.config
        if not self.images:
            samples = self.draw(task, 1000, "grid")
            save_ring_scatter(samples, self.data["splits"]["val"][0], self.centres, path, title)
            return
        columns = config.eval.grid
        if getattr(task, "conditional", False):
            labels = torch.arange(task.num_classes).repeat_interleave(columns)
            generator = torch.Generator().manual_seed(derived_seed(config.seed, "eval", "grid"))
            images = task.sample(len(labels), generator, labels)
            save_image_grid(images, columns, path, title, row_labels=[str(c) for c in range(task.num_classes)])
        else:
            save_image_grid(self.draw(task, columns * columns, "grid"), columns, path, title)


def save_traversals(task, config: GANConfig, run_dir: Path) -> list[str]:
    """InfoGAN: one row per categorical value; columns vary z (categorical figure) or one
    continuous code from -2 to 2 with z fixed (one figure per continuous code)."""
    generator = torch.Generator().manual_seed(derived_seed(config.seed, "eval", "traversal"))
    k, n_continuous, columns = max(task.categorical, 1), task.continuous, config.eval.grid
    written = []
    cat = torch.arange(k).repeat_interleave(columns)
    z = torch.randn(columns, task.z_dim, generator=generator).repeat(k, 1)
    images = task.sample_with_codes(z, cat, torch.zeros(len(cat), n_continuous))
    path = run_dir / "traversal_categorical.png"
    save_image_grid(images, columns, path, "rows: categorical code; columns: z", [str(c) for c in range(k)])
    written.append(path.name)
    z_row = torch.randn(1, task.z_dim, generator=generator)
    for j in range(n_continuous):
        cont = torch.zeros(k * columns, n_continuous)
        cont[:, j] = torch.linspace(-2, 2, columns).repeat(k)
        images = task.sample_with_codes(z_row.repeat(k * columns, 1), cat, cont)
        path = run_dir / f"traversal_continuous_{j}.png"
        save_image_grid(
            images, columns, path, f"rows: categorical code; columns: c{j} from -2 to 2", [str(c) for c in range(k)]
        )
        written.append(path.name)
    return written


# --------------------------------------------------------------------------- the run
def generator_init_state(run: str | Path) -> dict:
    """The generator weights of the gan-train run ``model.generator_init`` names (ConfigError if none)."""
    from adversarial_seg.checkpoint import load_checkpoint
    from adversarial_seg.gan.trainer import CHECKPOINT_LAST

    path = Path(run) / CHECKPOINT_LAST
    if not path.is_file():
        raise ConfigError(f"model.generator_init {run} holds no {CHECKPOINT_LAST}; train that gan-train run first")
    state = load_checkpoint(path)
    generator = state.get("modules", {}).get("generator") if isinstance(state.get("modules"), dict) else None
    if not isinstance(generator, dict):
        raise ConfigError(f"model.generator_init: {path} holds no generator weights; give a gan-train run directory")
    return generator


def start_generator_from(task, state: dict, run: str | Path) -> None:
    """Load ``state`` (``generator_init_state``) into the task's generator; ConfigError when it does not fit."""
    try:
        task.generator.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(
            f"model.generator_init {run}: its generator does not fit this config's ({first}); "
            "give a run trained with the same model settings"
        ) from None


def train_gan(
    config: GANConfig,
    run_dir: Path,
    device: torch.device,
    resume: bool = False,
    command: str = "",
    print_fn: Callable[[str], None] | None = print,
    progress: bool = True,
    auxiliary: dict | None = None,
) -> dict:
    """Train ``config`` into ``run_dir`` (resuming from its checkpoint when asked); returns metrics.json's body.
    ``auxiliary``: networks the caller loaded for the variant (srgan's ``content``). G starts from the
    weights of ``model.generator_init`` when set (a resumed run takes its own from its checkpoint)."""
    data = load_data(config)  # unreadable data stops the run before anything is written
    seed_everything(config.seed)  # network initialisation
    precision = Precision.for_device(device, config.train.amp)
    step = build_gan_step(config, data["shape"], data["classes"], device, precision, **(auxiliary or {}))
    if config.model.generator_init and not resume:  # before anything is written: a misfit stops the run
        start_generator_from(step.task, generator_init_state(config.model.generator_init), config.model.generator_init)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "config.yaml").is_file():  # a resume keeps the record of the start
        write_config(config, run_dir / "config.yaml", command)
    log = {"warnings": []}  # checkpointed with the trainer, so a resumed run reports every warning

    def warn(message: str) -> None:
        log["warnings"].append(message)
        if print_fn is not None:
            print_fn(message)

    step = MonitoredStep.wrap(step, patience=config.eval.starved_steps, warn=warn)
    task = step.task
    if config.variant == "cyclegan":
        from adversarial_seg.gan.site_data import UnpairedImages

        dataset = UnpairedImages(*data["splits"]["train"])
    else:
        dataset = TensorPairs(*data["splits"]["train"])
    schedulers = build_lr_schedulers(config.train.lr_schedule, step)
    epoch_lr: dict[str, float] = {}  # the learning rates an epoch trains with (schedulers step after it)

    def make_loader(epoch: int):
        if schedulers:
            epoch_lr.update(lr_g=step.optimizer_g.param_groups[0]["lr"], lr_d=step.optimizer_d.param_groups[0]["lr"])
        return seeded_loader(dataset, config.train.batch_size, config.seed, (), epoch, drop_last=True)

    if config.variant == "cyclegan":
        evaluator = CycleEvaluator(config, data)
    elif config.variant == "stackgan":
        from adversarial_seg.gan.text_evaluation import TextEvaluator

        evaluator = TextEvaluator(config, data)
    elif config.data.dataset == "ph2_images":
        from adversarial_seg.gan.text_evaluation import PH2ImageEvaluator

        evaluator = PH2ImageEvaluator(config, data)
    elif config.variant in PAIRED_VARIANTS:
        evaluator = TranslationEvaluator(config, data)
    else:
        evaluator = Evaluator(config, data)

    def due(epoch: int) -> bool:
        return (epoch + 1) % config.eval.every == 0 or epoch + 1 == config.train.epochs

    def evaluate(epoch: int) -> dict:
        if not due(epoch):
            return {}
        metrics = evaluator.epoch_metrics(task)
        message = "spread_ratio" in metrics and diversity_warning(
            metrics["spread_ratio"], 1.0, config.eval.diversity_ratio
        )
        if message:
            warn(f"warning: epoch {epoch + 1}: {message}")
        return metrics

    def on_epoch_end(epoch: int, row: dict) -> None:
        if not due(epoch):
            return
        evaluator.save_samples(
            task, run_dir / "samples" / f"epoch_{epoch + 1:03d}.png", f"{config.variant}, epoch {epoch + 1}"
        )
        save_metrics_plot(trainer.history, run_dir / "metrics.png", f"{config.variant} ({config.data.dataset})")

    trainer = Trainer(
        step, make_loader, run_dir, config.seed, (), device, config.train.d_steps, schedulers=schedulers,
        evaluate=evaluate, probe=(lambda epoch: dict(epoch_lr)) if schedulers else None,
        on_epoch_end=on_epoch_end, print_fn=print_fn, progress=progress, extra_state=log,
    )  # fmt: skip
    if resume and trainer.resume() and print_fn is not None:
        print_fn(f"resumed {run_dir} after epoch {trainer.epochs_done}")
    started = time.perf_counter()
    trainer.fit(config.train.epochs)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    final = evaluator.final(task)
    if not evaluator.images:  # the ring: its modes are known, so missing ones can be counted
        message = mode_coverage_warning(int(final["modes_covered"]), config.data.ring.modes)
        if message:
            warn(f"warning: {message}")
    reference = evaluator.reference()
    figures = save_traversals(task, config, run_dir) if config.variant == "infogan" else []
    body = {
        "variant": config.variant,
        "dataset": config.data.dataset,
        "adversarial": config.loss.adversarial,
        "config_hash": config.digest(),
        "git_commit": git_commit(),
        "seed": config.seed,
        "epochs": trainer.epochs_done,
        "train_seconds": round(sum(float(r["seconds"]) for r in trainer.history), 2),
        "this_call_train_seconds": round(fit_seconds, 2),
        "eval_seconds": round(time.perf_counter() - started, 2),
        "device": str(device),
        "metrics": final,
        "reference": reference,
        "reference_note": (
            "bicubic upsampling of the test split's low-resolution sources, scored like G's images"
            if config.variant == "srgan"
            else "none: cyclegan's baseline, no translation, is scored by scripts/cyclegan_transfer.py"
            if config.variant == "cyclegan"
            else "real held-out PH2 images: the test cases' agreement with their own attributes; the validation "
            "images scored like a sample against the test images"
            if config.variant == "stackgan"
            else "none for paired data: a target scored against itself is perfect"
            if config.variant in PAIRED_VARIANTS
            else "held-out real data: the validation split scored like a sample against the test split; "
            "Parzen windows centred on the training split"
        ),
        "last_epoch": {
            k: v for k, v in trainer.history[-1].items() if isinstance(v, (int, float)) and math.isfinite(v)
        },
        "warnings": log["warnings"],
        **({"held_out": data["cases"]["test"]} if config.variant == "cyclegan" else {}),  # each site's cases
        **({"stage": config.model.stage} if config.variant == "stackgan" else {}),
        "figures": ["metrics.png", "samples/", *figures],
        "command": command,
    }
    atomic_write_bytes(run_dir / "metrics.json", (json.dumps(body, indent=2) + "\n").encode())
    return body
