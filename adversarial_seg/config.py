"""YAML -> typed, validated config (DESIGN.md, "Config keys").

Unknown keys are errors that name the closest valid key. ``--set key=value`` overrides are
applied to the raw mapping before validation, so they are checked like the file itself.

Example:
    >>> cfg = config_from_mapping({"scheme": "hybrid", "train": {"epochs": 3}})
    >>> (cfg.train.epochs, cfg.loss_weights())
    (3, (0.5, 1.0))
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from adversarial_seg.errors import InputError


class ConfigError(InputError):
    """A config the user wrote is wrong; the message names the key and the fix."""


class StrictModel(BaseModel):
    """Base of every config section (segmentation and GAN): unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class _WithKwargs(BaseModel):
    """A network spec: ``name`` plus keyword arguments passed through to the network."""

    model_config = ConfigDict(extra="allow")
    name: str

    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class SyntheticConfig(StrictModel):
    """Phantom dataset written into the run directory when ``data.root`` is not given."""

    kind: Literal["prostate", "skin"] = "prostate"
    cases: int = Field(12, ge=2)
    seed: int = 0
    size: list[int] | None = None


class DataConfig(StrictModel):
    root: Path | None = None
    layout: Literal["folder", "msd", "nnunet"] = "folder"
    group: dict[Literal["column", "regex"], str] | None = None
    stratify: str | None = None
    labels: dict[str, int] | None = None
    regions: dict[str, list[int]] | None = None
    mask_threshold: int | None = Field(None, ge=1, le=255)
    channels: list[str] | None = None
    reference_channel: str | None = None
    slice_axis: int | None = Field(None, ge=0, le=2)
    context_slices: int = Field(0, ge=0, le=8)  # 2.5D: neighbouring slices on each side as extra channels
    size: list[int] | None = None
    spacing: list[float] | None = None
    synthetic: SyntheticConfig | None = None
    cache: bool = True
    # Volumes: z-score over the non-zero voxels only, so the zeros that pad a small field of view
    # (or a zero-filled border) do not shift every other voxel's normalised intensity.
    normalize_nonzero: bool = False

    @field_validator("group")
    @classmethod
    def _one_group_rule(cls, value):
        if value is not None and len(value) != 1:
            raise ValueError("give exactly one of {column: NAME} or {regex: PATTERN}")
        return value


class DiscriminatorConfig(_WithKwargs):
    name: str = "patch"
    mask_encoding: Literal["onehot", "product", "scaled"] = "scaled"
    input_scale: float = Field(0.5, gt=0, le=1)


class ModelConfig(StrictModel):
    segmentor: _WithKwargs = Field(
        default_factory=lambda: _WithKwargs(
            name="UNet", channels=[16, 32, 64, 128, 256], strides=[2, 2, 2, 2], num_res_units=2
        )
    )
    discriminator: DiscriminatorConfig = Field(default_factory=DiscriminatorConfig)


class LossConfig(StrictModel):
    supervised: Literal["ce", "dice_ce"] = "ce"
    # least_squares by default: with the logistic losses the demo's hybrid run collapsed to an
    # empty prediction (docs/performance.md, "Adversarial loss and stability").
    # segan_l1: SegAN's multi-scale L1 on D's features at every layer (Xue et al. 2018), min-max
    adversarial: Literal["minimax", "non_saturating", "least_squares", "hinge", "wasserstein", "segan_l1"] = (
        "least_squares"
    )
    w_sup: float | None = Field(None, ge=0)
    w_adv: float | None = Field(None, ge=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    instance_noise: float = Field(0.0, ge=0)
    gradient_penalty: float = Field(0.0, ge=0)
    feature_matching: float = Field(0.0, ge=0)  # weight of G's feature-matching term (Salimans et al. 2016)
    # Cap of the adversarial gradient's norm at the segmentor's output, as a share of the supervised
    # gradient's norm (per step): a D that wins outright otherwise swamps the supervised signal.
    max_adv_grad_ratio: float | None = Field(None, gt=0)
    # dice_ce: one Dice over the whole batch per class (nnU-Net's batch Dice) instead of a mean of
    # per-sample Dice, which punishes any foreground on the many slices that hold none.
    batch_dice: bool = False


AUGMENTATIONS = ("flip", "rotate", "intensity")  # what ``train.augment: true`` applies
# Every kind, in pipeline order; ``fov`` (a tighter field of view) only where it is listed.
AUGMENTATION_KINDS = ("flip", "rotate", "intensity", "fov")


class TrainConfig(StrictModel):
    epochs: int = Field(50, ge=1)
    batch_size: int = Field(8, ge=1)
    d_steps: int = Field(1, ge=1)
    lr_g: float = Field(1e-3, gt=0)
    lr_d: float = Field(1e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(1e-5, ge=0)
    grad_clip: float | None = Field(12.0, gt=0)
    amp: bool = True
    # bfloat16 autocast on the CPU too (with amp): 1.34x on a PH2 ce epoch (docs/performance.md)
    cpu_bf16: bool = False
    select: Literal["last", "inner_val"] = "last"
    num_workers: int = Field(0, ge=0)
    augment: bool | list[Literal["flip", "rotate", "intensity", "fov"]] = True  # true: flip, rotate, intensity
    # Axes of a training sample that ``flip`` mirrors (and mirror TTA with them); null: both in-plane axes.
    flip_axes: list[Literal[0, 1, 2]] | None = None
    # Share of the slices without any foreground that an epoch trains on (2D slices of volumes),
    # drawn anew each epoch: 1 keeps them all, 0 drops them.
    empty_slices: float = Field(1.0, ge=0, le=1)
    # Share of each fold's training patients to train on (small-data studies); an epoch keeps the
    # whole fold's number of samples, so the number of updates does not shrink with the data.
    fraction: float = Field(1.0, gt=0, le=1)

    @property
    def augmentations(self) -> tuple[str, ...]:
        """The kinds of augmentation ``augment`` asks for, in pipeline order."""
        if self.augment is True:
            return AUGMENTATIONS
        return tuple(kind for kind in AUGMENTATION_KINDS if kind in (self.augment or []))


class CVConfig(StrictModel):
    folds: int = Field(5, ge=2)
    seed: int = 0
    splits_file: Path | None = None


class MetricsConfig(StrictModel):
    specificity_region: str | None = None


class DomainConfig(StrictModel):
    """Cross-site training (domain adaptation): which sites' labels train and which site is scored.

    Each fold trains on its training cases of the ``source`` sites and is scored on its validation
    cases of the ``target`` sites (``column`` of cases.csv names each case's site). With ``adapt`` > 0
    the images of the fold's ``target`` training cases, without their labels, join the training
    through DANN (Ganin et al. 2016): a domain classifier on the segmentor's bottleneck features
    behind a gradient reversal layer of weight ``adapt`` (with ``adapt_ramp``, rising from 0 to ``adapt`` as
    Ganin et al. schedule it). ``source`` equal to ``target`` is training
    on the target site itself (the upper bound); ``adapt`` 0 with other sites is source-only training.
    """

    column: str
    source: list[str] = Field(min_length=1)
    target: list[str] = Field(min_length=1)
    adapt: float = Field(0.0, ge=0)
    # Ganin et al.'s schedule: the reversal weight rises from 0 to ``adapt`` over training (seg.domain.ganin_ramp)
    adapt_ramp: bool = False
    classifier_width: int = Field(64, ge=1)

    @model_validator(mode="after")
    def _sites(self):
        if self.adapt > 0 and set(self.source) & set(self.target):
            raise ValueError(
                f"domain.adapt > 0 needs disjoint domain.source and domain.target sites, got {self.source} and "
                f"{self.target}; DANN aligns one site's features to another's"
            )
        return self


SCHEME_WEIGHTS = {"ce": (1.0, 0.0), "adversarial": (0.0, 1.0), "hybrid": (0.5, 1.0)}


class Config(StrictModel):
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    cv: CVConfig = Field(default_factory=CVConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    domain: DomainConfig | None = None  # cross-site training and DANN (none: every case trains and is scored)
    scheme: Literal["ce", "adversarial", "hybrid"] = "hybrid"
    schemes: list[Literal["ce", "adversarial", "hybrid"]] | None = None
    seed: int = 0
    seeds: list[int] | None = None

    @model_validator(mode="after")
    def _regions_use_declared_labels(self):
        labels, regions = self.data.labels, self.data.regions
        if labels and regions:
            declared = set(labels.values())
            for name, values in regions.items():
                unknown = sorted(set(values) - declared)
                if unknown:
                    raise ValueError(
                        f"data.regions.{name} uses label values {unknown} that data.labels does not declare"
                    )
        return self

    @model_validator(mode="after")
    def _dann_needs_a_unet(self):
        if self.domain is not None and self.domain.adapt > 0 and self.model.segmentor.name != "UNet":
            raise ValueError(
                f"domain.adapt > 0 reads the features of a MONAI UNet's bottleneck; model.segmentor.name is "
                f"{self.model.segmentor.name!r}: use UNet or set domain.adapt: 0"
            )
        return self

    def loss_weights(self) -> tuple[float, float]:
        """(w_sup, w_adv) of the scheme, with ``loss.w_sup`` / ``loss.w_adv`` overriding."""
        w_sup, w_adv = SCHEME_WEIGHTS[self.scheme]
        if self.loss.w_sup is not None:
            w_sup = self.loss.w_sup
        if self.loss.w_adv is not None:
            w_adv = self.loss.w_adv
        return w_sup, w_adv

    def digest(self) -> str:
        """Short hash of the resolved config, for reports, result files and resume checks.

        Keys at their default value are left out, so a key that a newer version adds with a
        default that keeps the old behaviour does not make older runs "a different config".
        """
        text = json.dumps(self.model_dump(mode="json", exclude_defaults=True), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def valid_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names valid at ``loc`` (a pydantic error location)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


Source = str | Callable[[tuple], str]  # a name, or key location -> where its value came from


def describe_error(error: dict, source: Source, model: type[BaseModel] | None = None) -> str:
    """One sentence for one pydantic error of ``model`` (default ``Config``): where the value came
    from, the key, and for an unknown key the closest valid one. Shared by every config model."""
    loc = tuple(error["loc"])
    if callable(source):
        source = source(loc)
    if not loc:  # a rule across keys (model validator): its message names the keys
        return f"{source}: {error['msg'].removeprefix('Value error, ')}"
    key = ".".join(str(p) for p in loc)
    if error["type"] == "extra_forbidden":
        options = valid_keys(model or Config, loc)
        close = difflib.get_close_matches(str(loc[-1]), options, n=1, cutoff=0.5)
        hint = (
            f"did you mean '{'.'.join(map(str, loc[:-1] + (close[0],)))}'?"
            if close
            else (f"valid keys here: {', '.join(options)}")
        )
        return f"{source}: unknown key '{key}'; {hint}"
    return f"{source}: key '{key}': {error['msg']} (got {error.get('input')!r})"


def config_from_mapping(raw: dict | None, source: Source = "config") -> Config:
    """Validate a raw mapping; every problem is listed in one ConfigError."""
    try:
        return Config.model_validate(raw or {})
    except ValidationError as exc:
        raise ConfigError("\n".join(describe_error(e, source) for e in exc.errors())) from None


def apply_override(raw: dict, assignment: str) -> None:
    """Apply one ``key.sub=value`` override (value parsed as YAML) to a raw mapping in place."""
    if "=" not in assignment:
        raise ConfigError(f"--set '{assignment}': expected key=value, e.g. train.epochs=10")
    key, text = assignment.split("=", 1)
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set '{assignment}': '{part}' is a value, not a section")
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # a tag (!!python/...) or broken syntax: safe_load refuses it
        raise ConfigError(
            f"--set '{assignment}': the value is not plain YAML ({exc.__class__.__name__}); "
            "give a number, a word, or a [list] / {mapping}, and quote text with special characters"
        ) from None


def load_config(path: str | Path, overrides: list[str] = ()) -> Config:
    """Read a YAML config, apply ``--set`` overrides and validate."""
    return config_from_mapping(read_config_mapping(path, overrides), source=value_source(path, overrides))


def value_source(path: str | Path, overrides: list[str] = ()) -> Callable[[tuple], str]:
    """Where the value at a key location came from: the ``--set`` that gave it (or a section above
    it), else the file. Errors then blame what the user actually typed.

    >>> value_source("a.yaml", ["train.epochs=x"])(("train", "epochs"))
    "--set 'train.epochs=x'"
    >>> value_source("a.yaml", ["train.epochs=x"])(("train", "batch_size"))
    'a.yaml'
    """
    given = {tuple(a.split("=", 1)[0].strip().split(".")): a for a in overrides if "=" in a}

    def source(loc: tuple) -> str:
        parts = tuple(str(p) for p in loc)
        for n in range(len(parts), 0, -1):
            if parts[:n] in given:
                return f"--set '{given[parts[:n]]}'"
        return str(path)

    return source


def read_config_mapping(path: str | Path, overrides: list[str] = ()) -> dict:
    """The raw mapping of a YAML config file with ``--set`` overrides applied (not yet validated)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass an existing YAML file to --config")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a text file; pass a YAML config such as configs/demo.yaml") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML ({exc.__class__.__name__}); fix the syntax") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of sections (data:, model:, train: ...)")
    for assignment in overrides:
        apply_override(raw, assignment)
    return raw
