"""Predictions for one case: MONAI inferers, fold ensembles, mirror TTA, native-geometry files.

A 2D model runs on a 2D image through ``SlidingWindowInferer`` and on a volume slice by
slice along the training slice axis through ``SliceInferer``; a 3D model uses a sliding
window over the volume. Windows are blended with Gaussian weights. Probabilities of several
models (the folds of a run) and of mirrored inputs (TTA) are averaged before any argmax.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from monai.inferers import SliceInferer, SlidingWindowInferer
from torch import nn

from adversarial_seg.atomic_files import atomic_write_bytes
from adversarial_seg.config import Config
from adversarial_seg.data.dataset import PreparedCase, probabilities_to_native
from adversarial_seg.data.transforms import sample_flip_axes, volume_with_context
from adversarial_seg.runtime import Precision, to_device


def make_inferer(model_dims: int, image_dims: int, roi_size: Sequence[int], slice_axis: int | None, batch: int = 4):
    """The MONAI inferer for a ``model_dims``-D model on an ``image_dims``-D image.

    ``slice_axis`` is the spatial axis (0-based, of the image's spatial axes) a 2D model
    slides along on a volume.
    """
    common = {"roi_size": tuple(roi_size), "sw_batch_size": batch, "overlap": 0.25, "mode": "gaussian"}
    if model_dims == 2 and image_dims == 3:
        if slice_axis is None:
            raise ValueError("a 2D model on a volume needs the training slice axis")
        return SliceInferer(spatial_dim=slice_axis, progress=False, **common)
    if model_dims != image_dims:
        raise ValueError(f"a {model_dims}D model cannot run on a {image_dims}D image")
    return SlidingWindowInferer(**common)


def mirror_axes(spatial_dims: int) -> list[tuple[int, ...]]:
    """Flip sets for mirror TTA over the spatial axes of a (B, C, *spatial) tensor: all 2^d."""
    axes = [a + 2 for a in range(spatial_dims)]
    combos: list[tuple[int, ...]] = [()]
    for axis in axes:
        combos += [c + (axis,) for c in combos]
    return combos


def tta_flips(spatial_dims: int, tta: bool, tta_axes: Sequence[int] | None) -> list[tuple[int, ...]]:
    """The flip sets (dims of a (B, C, *spatial) tensor) of mirror TTA: only () without ``tta``;
    with it every subset of ``tta_axes`` (0-based spatial axes; default all)."""
    if not tta:
        return [()]
    allowed = {a + 2 for a in (range(spatial_dims) if tta_axes is None else tta_axes)}
    return [f for f in mirror_axes(spatial_dims) if set(f) <= allowed]


@torch.no_grad()
def predict_probabilities(
    models: Sequence[nn.Module],
    image: torch.Tensor,
    inferer,
    precision: Precision,
    tta: bool = False,
    tta_axes: Sequence[int] | None = None,
) -> torch.Tensor:
    """Mean softmax of ``models`` (and mirrored inputs with ``tta``) on ``image`` (1, C, *S).

    ``tta_axes``: which spatial axes (0-based) to mirror; default all. A 2D model on a volume
    should not mirror along the slice axis (it changes nothing but costs time).
    Returns float32 (1, K, *S) on the image's device.
    """
    total, members = None, 0
    for probs in member_probabilities(models, image, inferer, precision, tta_flips(image.dim() - 2, tta, tta_axes)):
        total, members = (probs if total is None else total + probs), members + 1  # a running sum: one volume held
    return total / members


def member_probabilities(models, image: torch.Tensor, inferer, precision: Precision, flips):
    """Each (model, flip) member's softmax (1, K, *S) float32 on ``image`` (1, C, *S), flipped back;
    the one loop behind the ensemble mean and the members' mutual information."""
    for model in models:
        model.eval()
        for dims in flips:
            x = image.flip(dims) if dims else image
            with precision.autocast():
                logits = inferer(x, model)
            probs = torch.softmax(logits.float(), dim=1)
            yield probs.flip(dims) if dims else probs


def window_divisor(config: Config) -> int:
    """Input sizes the segmentor accepts are multiples of this (its total downsampling)."""
    strides = config.model.segmentor.kwargs().get("strides")
    if strides is None:
        return 32
    return int(np.prod([s if isinstance(s, int) else max(s) for s in strides]))


def predict_native(
    models, case: PreparedCase, config: Config, device, precision: Precision, tta: bool = False
) -> torch.Tensor:
    """Mean class probabilities of ``models`` on ``case``, on its native grid: (K, *native), float32.

    ``tta`` mirrors the axes training flipped (``train.flip_axes``; by default the two in-plane
    axes), never a 2D model's slice axis.
    """
    image, inferer, tta_axes = model_input(case, config, device)
    probabilities = predict_probabilities(models, image, inferer, precision, tta=tta, tta_axes=tta_axes)[0]
    return probabilities_to_native(probabilities, case)


def model_input(case: PreparedCase, config: Config, device) -> tuple[torch.Tensor, object, list[int]]:
    """What the models see of ``case``: the image (1, C', *S) on ``device`` (with its neighbouring
    slices as channels for 2.5D), the MONAI inferer, and the image axes mirror TTA may flip (those
    training flipped, ``train.flip_axes``; never a 2D model's slice axis)."""
    plan = case.plan
    image = case.image.as_tensor()
    if plan.context_slices:
        image = volume_with_context(image, plan.slice_axis, plan.context_slices)
    image = to_device(image[None], device)
    spatial = list(image.shape[2:])
    sample_axes = list(range(len(spatial)))  # image axis of each training-sample axis
    if plan.model_dims == 2 and len(spatial) == 3:
        spatial.pop(plan.slice_axis)
        sample_axes.pop(plan.slice_axis)
    tta_axes = [sample_axes[a] for a in sample_flip_axes(plan, config.train.flip_axes)]
    divisor = window_divisor(config)
    roi = [int(math.ceil(s / divisor) * divisor) for s in (plan.patch_size or spatial)]
    return image, make_inferer(plan.model_dims, len(image.shape) - 2, roi, plan.slice_axis), tta_axes


def write_probabilities(path: Path, native: torch.Tensor) -> Path:
    """``<case>.npz`` holding ``probabilities``: float16 (K, *native spatial), written atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, probabilities=native.numpy().astype(np.float16))
    atomic_write_bytes(path, buffer.getvalue())
    return path


@torch.no_grad()
def predict_probabilities_and_information(
    models: Sequence[nn.Module],
    image: torch.Tensor,
    inferer,
    precision: Precision,
    tta: bool = False,
    tta_axes: Sequence[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``predict_probabilities``' mean softmax (same members, same order) and the members' mutual
    information: entropy of the mean minus the mean member entropy, in nats, >= 0.

    Members are every (model, mirror) pair. Returns float32 (1, K, *S) and (1, 1, *S).
    """
    flips = tta_flips(image.dim() - 2, tta, tta_axes)
    total = entropy_total = None
    members = 0
    for probs in member_probabilities(models, image, inferer, precision, flips):
        member_entropy = torch.special.entr(probs).sum(dim=1, keepdim=True)
        total = probs if total is None else total + probs
        entropy_total = member_entropy if entropy_total is None else entropy_total + member_entropy
        members += 1
    mean = total / members
    information = (torch.special.entr(mean).sum(dim=1, keepdim=True) - entropy_total / members).clamp_min(0)
    return mean, information


def predict_native_with_information(
    models, case: PreparedCase, config: Config, device, precision: Precision, tta: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``predict_native``'s mean probabilities (K, *native) and the members' mutual information
    (*native), both float32 on the native grid.

    The mutual information is computed on the model's grid and resampled with the probabilities
    (linear): identical members give exactly 0, and it stays within the entropy of the mean.
    """
    image, inferer, tta_axes = model_input(case, config, device)
    mean, information = predict_probabilities_and_information(
        models, image, inferer, precision, tta=tta, tta_axes=tta_axes
    )
    native = probabilities_to_native(torch.cat([mean[0], information[0]]), case)
    return native[:-1], native[-1].clamp_min(0)
