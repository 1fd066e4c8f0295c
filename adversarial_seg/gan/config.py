"""YAML -> typed, validated config for ``gan-train`` (the classic GAN variants).

Same rules as the segmentation config (``adversarial_seg/config.py``, whose helpers it uses):
unknown keys are errors naming the closest valid key, and ``--set key=value`` overrides are
applied to the raw mapping before validation.

Example:
    >>> cfg = gan_config_from_mapping({"variant": "wgan", "train": {"epochs": 2}})
    >>> (cfg.variant, cfg.loss.adversarial, cfg.loss.weight_clip, cfg.train.d_steps)
    ('wgan', 'wasserstein', 0.01, 5)
    >>> gan_config_from_mapping({"train": {"epoch": 2}})
    Traceback (most recent call last):
    ...
    adversarial_seg.config.ConfigError: config: unknown key 'train.epoch'; did you mean 'train.epochs'?
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from adversarial_seg.config import ConfigError, Source, StrictModel, describe_error, read_config_mapping, value_source

VARIANTS = (
    "vanilla", "dcgan", "cgan", "infogan", "wgan", "wgan_gp", "biggan", "pix2pix", "progressive", "srgan", "cyclegan",
    "stackgan",
)  # fmt: skip
PAIRED_VARIANTS = ("pix2pix", "srgan")  # image-to-image: G maps a source image to a target, no noise
LOSSES = ("minimax", "non_saturating", "least_squares", "hinge", "wasserstein")

# What each variant changes unless the config says otherwise (the papers' settings).
VARIANT_DEFAULTS: dict[str, dict] = {
    "vanilla": {"model": {"architecture": "mlp"}},
    "dcgan": {"model": {"architecture": "dcgan"}, "train": {"lr_g": 2e-4, "lr_d": 2e-4, "betas": [0.5, 0.999]}},
    "cgan": {"model": {"architecture": "mlp"}},
    "infogan": {"model": {"architecture": "dcgan"}, "train": {"lr_g": 1e-3, "lr_d": 2e-4, "betas": [0.5, 0.999]}},
    "wgan": {
        "model": {"architecture": "dcgan", "norm": "none"},
        "loss": {"adversarial": "wasserstein", "weight_clip": 0.01},
        "train": {"optimizer": "rmsprop", "lr_g": 5e-5, "lr_d": 5e-5, "d_steps": 5},
    },
    "wgan_gp": {
        "model": {"architecture": "dcgan", "norm": "layer"},
        "loss": {"adversarial": "wasserstein", "gradient_penalty": 10.0},
        "train": {"lr_g": 1e-4, "lr_d": 1e-4, "betas": [0.0, 0.9], "d_steps": 5},
    },
    # BigGAN-style (Brock et al. 2019) at SAGAN's two-timescale rates (Zhang et al. 2019): hinge loss,
    # Adam betas (0, 0.9), D at 4x G's learning rate; EMA of G for sampling
    "biggan": {
        "model": {"architecture": "biggan", "channels": 32},
        "loss": {"adversarial": "hinge"},
        "train": {"lr_g": 1e-4, "lr_d": 4e-4, "betas": [0.0, 0.9]},
    },
    # Ledig et al. 2017: pixel (+ content) loss with the adversarial term at 1e-3, Adam 1e-4 (0.9, 0.999)
    "srgan": {
        "data": {"dataset": "ph2"},
        "model": {"architecture": "srresnet", "channels": 32},
        "loss": {"w_sup": 1.0, "w_adv": 1e-3},
        "train": {"lr_g": 1e-4, "lr_d": 1e-4, "betas": [0.9, 0.999], "batch_size": 8},
    },
    # Karras et al. 2018: WGAN-GP (lambda 10) with the drift term (1e-3), one critic step per G step,
    # Adam 1e-3 (0, 0.99) for both
    "progressive": {
        "model": {"architecture": "progressive"},
        "loss": {"adversarial": "wasserstein", "gradient_penalty": 10.0, "drift": 1e-3},
        "train": {"lr_g": 1e-3, "lr_d": 1e-3, "betas": [0.0, 0.99], "growth": {}},
    },
    # Zhu et al. 2017: ResNet G (6 blocks at 128 px), LSGAN, cycle 10 and identity 5 in the paper's scale
    # (5 and 2.5 here: gan/variants/cyclegan.py), a pool of 50 images, Adam 2e-4 (0.5, 0.999)
    "cyclegan": {
        "data": {"dataset": "sites"},
        "model": {"architecture": "resnet", "channels": 32, "residual_blocks": 6},
        "loss": {"adversarial": "least_squares", "w_sup": 1.0, "cycle_weight": 5.0, "identity_weight": 2.5},
        "train": {"lr_g": 2e-4, "lr_d": 2e-4, "betas": [0.5, 0.999], "batch_size": 4, "pool_size": 50},
    },
    # Zhang et al. 2017: conditioning augmentation (KL weight 1), matching-aware D, Adam 2e-4 (0.5, 0.999);
    # stage I at half of data.ph2.size and stage II at it: 32 and 64 px here, the paper's 64 and 256
    "stackgan": {
        "data": {"dataset": "ph2_text", "ph2": {"size": [64, 64]}},
        "model": {"architecture": "stackgan", "channels": 32, "z_dim": 64},
        "loss": {"kl_weight": 1.0, "mismatch_weight": 1.0},
        "train": {"lr_g": 2e-4, "lr_d": 2e-4, "betas": [0.5, 0.999], "batch_size": 16},
    },
    # Isola et al. 2017: U-Net G, 70 x 70 PatchGAN D on (source, image), L1 weighted 100, Adam 2e-4 (0.5, 0.999)
    "pix2pix": {
        "data": {"dataset": "ph2"},
        "model": {"architecture": "unet", "channels": 32},
        "loss": {"w_sup": 100.0},
        "train": {"lr_g": 2e-4, "lr_d": 2e-4, "betas": [0.5, 0.999], "batch_size": 8},
    },
}


class RingConfig(StrictModel):
    modes: int = Field(8, ge=2)
    radius: float = Field(2.0, gt=0)
    std: float = Field(0.02, gt=0)
    samples: int = Field(5000, ge=100)


class PH2Config(StrictModel):
    """PH2 pairs (``gan/paired_data.py``): the folder layout of ../shared/data/ph2."""

    root: str = "../shared/data/ph2"
    size: tuple[int, int] = (96, 128)  # rows, columns: PH2's 3:4 shape
    scale: Literal[2, 4] = 4  # srgan: the source is the image downsampled this many times

    @model_validator(mode="after")
    def _divisible(self):
        if any(s < 16 or s % 16 for s in self.size):  # the U-Net halves the grid four times
            raise ValueError(f"data.ph2.size {list(self.size)}: give rows and columns that are multiples of 16")
        return self


class SitesConfig(StrictModel):
    """Two sites of a prostate dataset (``gan/site_data.py``): cyclegan's domains A and B, unpaired;
    for srgan the slices of both, each paired with its downsampled copy."""

    root: str = "../shared/data/prostate_zonal"
    column: str = "grid"  # the cases.csv column naming each case's site
    a: list[str] = Field(default_factory=lambda: ["320px"], min_length=1)
    b: list[str] = Field(default_factory=lambda: ["384px"], min_length=1)
    spacing: float = Field(0.75, gt=0)  # mm in-plane, seg-train's prostate grid
    size: tuple[int, int] = (160, 160)
    folds: int = Field(2, ge=2)
    fold: int = Field(0, ge=0)  # held out: the validation and test cases
    scale: Literal[2, 4] = 4  # srgan: the source is the slice downsampled this many times

    @model_validator(mode="after")
    def _consistent(self):
        if any(s < 16 or s % 4 for s in self.size):  # the ResNet generator halves the grid twice
            raise ValueError(f"data.sites.size {list(self.size)}: give rows and columns that are multiples of 4")
        if self.fold >= self.folds:
            raise ValueError(f"data.sites.fold {self.fold} must be below data.sites.folds {self.folds}")
        if set(self.a) & set(self.b):
            raise ValueError(f"data.sites.a and data.sites.b share {sorted(set(self.a) & set(self.b))}; the "
                             "domains must be different sites")  # fmt: skip
        return self


class DataConfig(StrictModel):
    dataset: Literal["digits", "ring", "ph2", "sites", "ph2_text", "ph2_images"] = "digits"
    size: Literal[8, 16, 32] = 16
    split_seed: int = 0
    ring: RingConfig = Field(default_factory=RingConfig)
    ph2: PH2Config = Field(default_factory=PH2Config)
    sites: SitesConfig = Field(default_factory=SitesConfig)

    @property
    def sr_scale(self) -> int:
        """srgan's downsampling factor: ``sites.scale`` on prostate slices, else ``ph2.scale``."""
        return self.sites.scale if self.dataset == "sites" else self.ph2.scale


class ModelConfig(StrictModel):
    # biggan, progressive: those variants' own networks; unet: pix2pix; srresnet: srgan; resnet: cyclegan
    architecture: Literal["mlp", "dcgan", "biggan", "unet", "progressive", "srresnet", "resnet", "stackgan"] = "mlp"
    z_dim: int = Field(32, ge=1)
    hidden: int = Field(256, ge=1)  # MLP width
    channels: int = Field(32, ge=1)  # DCGAN base width
    dropout: float = Field(0.0, ge=0, lt=1)  # MLP discriminator
    maxout: int = Field(1, ge=1)  # MLP discriminator pieces (1: LeakyReLU)
    norm: Literal["batch", "layer", "none"] = "batch"  # DCGAN discriminator normalisation
    categorical: int = Field(10, ge=0)  # InfoGAN categorical code size
    continuous: int = Field(2, ge=0)  # InfoGAN continuous codes
    ema_decay: float = Field(0.999, ge=0, lt=1)  # BigGAN: decay of the moving average of G's weights
    # stackgan: which stage trains, the stage I run a stage II refines, the text encoder's folder
    stage: Literal[1, 2] = 1
    stage1_run: str | None = None
    encoders: str = "runs/ph2_encoders"
    condition_dim: int = Field(32, ge=1)  # stackgan: size of the conditioning augmentation's output
    # stackgan stage II: draw the full-size image anew, or add a residual to the upsampled stage I image
    refine: Literal["image", "residual"] = "image"
    # a gan-train run whose generator weights G starts from (Ledig et al. start SRGAN from SRResNet)
    generator_init: str | None = None
    residual_blocks: int = Field(8, ge=1)  # srgan, cyclegan: residual blocks of G (srgan's paper: 16 at width 64)


class LossConfig(StrictModel):
    adversarial: Literal["minimax", "non_saturating", "least_squares", "hinge", "wasserstein"] = "non_saturating"
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    instance_noise: float = Field(0.0, ge=0)
    gradient_penalty: float = Field(0.0, ge=0)
    weight_clip: float | None = Field(None, gt=0)
    info_weight: float = Field(1.0, ge=0)
    w_sup: float = Field(0.0, ge=0)  # the variant's supervised term (pix2pix: L1 to the target; cyclegan: cycle)
    w_adv: float = Field(1.0, ge=0)  # 0: no adversarial term, no D updates (pix2pix's L1-only baseline)
    drift: float = Field(0.0, ge=0)  # progressive: weight of E[D(real)^2] in the critic's loss (Karras et al.)
    # srgan: MSE between features of a seg-train run's segmentor encoder (fold, first blocks)
    content_weight: float = Field(0.0, ge=0)
    content_run: str | None = None
    content_fold: int = Field(0, ge=0)
    content_depth: int = Field(2, ge=1)
    kl_weight: float = Field(0.0, ge=0)  # stackgan: weight of the conditioning augmentation's KL term
    mismatch_weight: float = Field(0.0, ge=0)  # stackgan: weight of real images with a wrong sentence as negatives
    cycle_weight: float = Field(0.0, ge=0)  # cyclegan: weight of the cycle L1 within the supervised term
    identity_weight: float = Field(0.0, ge=0)  # cyclegan: weight of the identity L1


class LRSchedule(StrictModel):
    """``torch.optim.lr_scheduler.MultiStepLR`` on both optimisers, stepped after every epoch: after
    epoch ``m`` of each milestone ``m`` every learning rate is multiplied by ``gamma`` (epochs count
    from 1; a milestone at or after ``train.epochs`` takes effect only when a resume trains longer).

    >>> gan_config_from_mapping({"train": {"epochs": 5, "lr_schedule": {"milestones": [3]}}}).train.lr_schedule
    LRSchedule(milestones=[3], gamma=0.1)
    """

    milestones: list[int] = Field(min_length=1)
    gamma: float = Field(0.1, gt=0)

    @model_validator(mode="after")
    def _increasing(self):
        if any(m < 1 for m in self.milestones) or any(b <= a for a, b in zip(self.milestones, self.milestones[1:])):
            raise ValueError(f"train.lr_schedule.milestones must be increasing epochs >= 1, got {self.milestones}")
        return self


class GrowthConfig(StrictModel):
    """The resolution schedule of progressive growing, in training images (G updates x batch size):
    ``start_size`` trains for ``stable_images``, then each doubling fades in over ``fade_images``
    and trains ``stable_images`` more; the final size (``data.size``) trains until ``train.epochs``.
    ``start_size`` equal to ``data.size`` is the same networks trained at full resolution throughout.

    >>> gan_config_from_mapping({"variant": "progressive", "train": {"growth": {"start_size": 4}}}).train.growth
    GrowthConfig(start_size=4, fade_images=6000, stable_images=6000)
    """

    start_size: Literal[4, 8, 16, 32, 64] = 4
    fade_images: int = Field(6000, ge=0)
    stable_images: int = Field(6000, ge=1)


class TrainConfig(StrictModel):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=2)
    d_steps: int = Field(1, ge=1)
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    lr_g: float = Field(2e-4, gt=0)
    lr_d: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    momentum: float = Field(0.5, ge=0, lt=1)  # sgd (Goodfellow et al. used momentum)
    grad_clip: float | None = Field(None, gt=0)
    amp: bool = False
    lr_schedule: LRSchedule | None = None  # none: constant learning rates
    growth: GrowthConfig | None = None  # progressive: the resolution schedule
    pool_size: int | None = Field(None, ge=0)  # cyclegan: generated images each D draws its fakes from


class EvalConfig(StrictModel):
    samples: int = Field(270, ge=10)  # per-epoch metrics and final FD / classifier score
    parzen_samples: int = Field(10000, ge=10)
    every: int = Field(1, ge=1)  # per-epoch metrics and sample grid every N epochs (and the last)
    grid: int = Field(8, ge=1)  # grid side (images per row)
    diversity_ratio: float = Field(0.3, ge=0)
    starved_steps: int = Field(100, ge=1)
    truncation: float | None = Field(None, gt=0)  # BigGAN: |z| threshold of samples and metrics (None: off)


class GANConfig(StrictModel):
    variant: Literal[VARIANTS] = "vanilla"  # each has a module of that name in gan/variants/
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    seed: int = 0

    @model_validator(mode="after")
    def _consistent(self):
        if self.variant == "wgan" and self.loss.weight_clip is None:
            raise ValueError("variant wgan needs loss.weight_clip (e.g. 0.01)")
        if self.variant == "wgan_gp" and self.loss.gradient_penalty <= 0:
            raise ValueError("variant wgan_gp needs loss.gradient_penalty > 0 (e.g. 10)")
        if self.variant in ("wgan", "wgan_gp") and self.loss.adversarial != "wasserstein":
            raise ValueError(f"variant {self.variant} needs loss.adversarial: wasserstein")
        if self.data.dataset == "ring" and self.variant in ("dcgan", "cgan", "infogan"):
            raise ValueError(f"variant {self.variant} needs images; use data.dataset: digits")
        if self.data.dataset == "ring" and self.model.architecture != "mlp":
            raise ValueError("data.dataset ring is 2D points; use model.architecture: mlp")
        cyclegan = self.variant == "cyclegan"
        if (cyclegan and self.data.dataset != "sites") or (
            self.data.dataset == "sites" and self.variant not in ("cyclegan", "srgan")
        ):
            raise ValueError(
                f"variant {self.variant} with data.dataset {self.data.dataset}: cyclegan needs two sites "
                "(data.dataset: sites), and the sites are for it and srgan only"
            )
        if cyclegan != (self.model.architecture == "resnet"):
            raise ValueError("model.architecture resnet is cyclegan's generator, and cyclegan needs it")
        if not cyclegan and (self.loss.cycle_weight or self.loss.identity_weight or self.train.pool_size is not None):
            raise ValueError(
                f"loss.cycle_weight, loss.identity_weight and train.pool_size are cyclegan's; variant {self.variant} "
                "has none of them: leave them out"
            )
        stackgan = self.variant == "stackgan"
        if stackgan != (self.data.dataset == "ph2_text") or stackgan != (self.model.architecture == "stackgan"):
            raise ValueError(
                f"variant {self.variant} with data.dataset {self.data.dataset} and model.architecture "
                f"{self.model.architecture}: stackgan needs data.dataset ph2_text and model.architecture stackgan, "
                "and they are for it only"
            )
        if not stackgan and (self.loss.kl_weight or self.loss.mismatch_weight):
            raise ValueError(f"loss.kl_weight and loss.mismatch_weight are stackgan's; variant {self.variant} has none")
        if stackgan and self.loss.adversarial not in ("minimax", "non_saturating"):
            raise ValueError("stackgan's matching-aware D is logistic: use loss.adversarial non_saturating or minimax")
        if stackgan and self.model.stage == 2 and not self.model.stage1_run:
            raise ValueError(
                "model.stage 2 refines a stage I run: give model.stage1_run (a stackgan stage 1 run directory)"
            )
        if self.model.refine != "image" and not (stackgan and self.model.stage == 2):
            raise ValueError("model.refine is stackgan stage 2's (it refines a stage I image): leave it at image")
        if stackgan and (self.data.ph2.size[0] != self.data.ph2.size[1] or self.data.ph2.size[0] < 32):
            raise ValueError(f"stackgan needs square images of 32 px or more: data.ph2.size {list(self.data.ph2.size)}")
        paired = self.variant in PAIRED_VARIANTS
        if paired != (self.data.dataset == "ph2" or (self.variant == "srgan" and self.data.dataset == "sites")):
            raise ValueError(
                f"variant {self.variant} with data.dataset {self.data.dataset}: pix2pix and srgan need paired "
                "data (data.dataset: ph2; srgan also sites, the prostate slices) and PH2 pairs are for them only"
            )
        if (self.variant == "pix2pix") != (self.model.architecture == "unet"):
            raise ValueError("model.architecture unet is pix2pix's generator, and pix2pix needs it")
        if (self.variant == "srgan") != (self.model.architecture == "srresnet"):
            raise ValueError("model.architecture srresnet is srgan's generator, and srgan needs it")
        if self.loss.content_weight > 0 and (self.variant != "srgan" or not self.loss.content_run):
            raise ValueError(
                "loss.content_weight > 0 is srgan's content loss and needs loss.content_run: a seg-train run "
                "directory whose segmentor gives the features (e.g. runs/ph2/ce)"
            )
        if self.loss.w_sup > 0 and not (paired or cyclegan):
            raise ValueError(f"loss.w_sup: variant {self.variant} has no supervised term; leave it at 0")
        if self.loss.w_adv == 0 and self.loss.w_sup == 0:
            raise ValueError("loss.w_adv 0 with loss.w_sup 0 trains nothing; give one of them a weight")
        if (self.variant == "biggan") != (self.model.architecture == "biggan"):
            raise ValueError("model.architecture biggan is the biggan variant's networks, and that variant needs it")
        if self.variant == "biggan" and self.data.dataset != "digits":
            raise ValueError("variant biggan needs labelled images; use data.dataset: digits")
        progressive = self.variant == "progressive"
        if progressive != (self.model.architecture == "progressive"):
            raise ValueError(
                "model.architecture progressive is the progressive variant's networks, and that variant needs it"
            )
        if progressive and self.data.dataset not in ("digits", "ph2_images"):
            raise ValueError("variant progressive needs images; use data.dataset: digits or ph2_images")
        if self.data.dataset == "ph2_images" and not progressive:
            raise ValueError("data.dataset ph2_images (PH2 images alone) is for variant progressive only")
        if self.data.dataset == "ph2_images" and self.data.ph2.size[0] != self.data.ph2.size[1]:
            raise ValueError(f"progressive needs square images: data.ph2.size {list(self.data.ph2.size)}")
        if progressive != (self.train.growth is not None):
            raise ValueError(
                "train.growth is the progressive variant's resolution schedule: give it for that variant "
                "(e.g. {start_size: 4, fade_images: 6000, stable_images: 6000}) and only for it"
            )
        side = self.data.ph2.size[0] if self.data.dataset == "ph2_images" else self.data.size
        if progressive and self.train.growth.start_size > side:
            raise ValueError(
                f"train.growth.start_size {self.train.growth.start_size} is above the image size {side}; "
                "give a start size at most the image size"
            )
        if self.loss.drift > 0 and not progressive:
            raise ValueError(f"loss.drift is the progressive variant's critic term; variant {self.variant} has none")
        if self.variant == "infogan" and self.model.categorical + self.model.continuous == 0:
            raise ValueError("variant infogan needs model.categorical or model.continuous > 0")
        if self.loss.gradient_penalty > 0 and self.model.norm == "batch" and self.model.architecture == "dcgan":
            raise ValueError(
                "the gradient penalty is per sample; batch norm in the critic breaks it: set model.norm: layer or none"
            )
        return self

    def digest(self) -> str:
        """Short hash of the resolved config, for result files.

        Keys added after runs were recorded (``LATER_KEYS``) are left out while they hold their
        defaults, so those runs keep their hashes.
        """
        return config_digest(self.model_dump(mode="json"))


# (section, ..., key) -> the default it is left out of the hash at (see ``GANConfig.digest``).
LATER_KEYS = {
    ("train", "lr_schedule"): None,
    ("loss", "w_sup"): 0.0,
    ("loss", "w_adv"): 1.0,
    ("data", "ph2"): {"root": "../shared/data/ph2", "size": [96, 128]},
    ("model", "ema_decay"): 0.999,
    ("eval", "truncation"): None,
    ("train", "growth"): None,
    ("loss", "drift"): 0.0,
    ("data", "ph2", "scale"): 4,
    ("model", "residual_blocks"): 8,
    ("loss", "content_weight"): 0.0,
    ("loss", "content_run"): None,
    ("loss", "content_fold"): 0,
    ("loss", "content_depth"): 2,
    ("data", "sites", "scale"): 4,
    ("data", "sites"): {k: v for k, v in SitesConfig().model_dump(mode="json").items() if k != "scale"},
    ("loss", "cycle_weight"): 0.0,
    ("loss", "identity_weight"): 0.0,
    ("train", "pool_size"): None,
    ("model", "stage"): 1,
    ("model", "stage1_run"): None,
    ("model", "encoders"): "runs/ph2_encoders",
    ("model", "condition_dim"): 32,
    ("model", "refine"): "image",
    ("model", "generator_init"): None,
    ("loss", "kl_weight"): 0.0,
    ("loss", "mismatch_weight"): 0.0,
}


def config_digest(body: dict) -> str:
    """``GANConfig.digest`` of a dumped config (``model_dump(mode="json")``), which may be edited first."""
    body = json.loads(json.dumps(body))  # a deep copy to edit
    for path, default in sorted(LATER_KEYS.items(), key=lambda item: -len(item[0])):  # the deepest first
        *parents, key = path
        parent = body
        for name in parents:
            parent = parent.get(name) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and key in parent and parent[key] == default:
            del parent[key]
    text = json.dumps(body, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def gan_config_from_mapping(raw: dict | None, source: Source = "config") -> GANConfig:
    """Validate a raw mapping after filling in the variant's defaults; one ConfigError lists every problem."""
    raw = dict(raw or {})
    variant = raw.get("variant", "vanilla")
    if variant in VARIANT_DEFAULTS:
        raw = _merge(VARIANT_DEFAULTS[variant], raw)
    try:
        return GANConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("\n".join(describe_error(e, source, GANConfig) for e in exc.errors())) from None


def load_gan_config(path: str | Path, overrides: list[str] = ()) -> GANConfig:
    """Read a YAML config, apply ``--set`` overrides, fill the variant's defaults and validate."""
    return gan_config_from_mapping(read_config_mapping(path, overrides), source=value_source(path, overrides))
