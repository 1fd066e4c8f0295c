"""Parts of a trained MONAI UNet segmentor that other networks reuse: its bottleneck (DANN's domain
features, the FCN score's feature space) and its first encoder blocks (SRGAN's content features,
handed to the GAN core by gan-train, which may not import segmentation code itself)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from adversarial_seg.errors import InputError


def _levels(model: nn.Module):
    """(down block, inner) pairs from the outermost level of a MONAI UNet inwards."""
    from monai.networks.layers import SkipConnection

    inner = model.model
    while isinstance(inner, nn.Sequential) and len(inner) == 3 and isinstance(inner[1], SkipConnection):
        yield inner[0], inner[1].submodule
        inner = inner[1].submodule


def unet_bottleneck(model: nn.Module) -> nn.Module:
    """The innermost block of a MONAI UNet (the encoder's deepest features)."""
    innermost = model.model
    for _, inner in _levels(model):
        innermost = inner
    return innermost


def unet_encoder(model: nn.Module, depth: int) -> nn.Module:
    """The first ``depth`` down-sampling blocks of a MONAI UNet, in order, as one module."""
    blocks = [down for down, _ in _levels(model)][:depth]
    if len(blocks) < depth:
        raise InputError(f"loss.content_depth {depth}: the content network has only {len(blocks)} encoder blocks")
    return nn.Sequential(*blocks)


def segmentor_encoder(run_dir: str | Path, fold: int, depth: int) -> nn.Module:
    """The frozen first ``depth`` encoder blocks of fold ``fold``'s segmentor in a seg-train run
    (InputError naming the run when it is not one)."""
    from adversarial_seg.seg.run import open_run

    run = open_run(Path(run_dir))
    encoder = unet_encoder(run.load_models([fold], torch.device("cpu"))[0], depth).eval()
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
    return encoder
