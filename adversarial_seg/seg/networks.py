"""Segmentor (a MONAI network named in the config) and the mask discriminator.

The mask discriminator judges an (image, mask) pair. How the mask is shown to it is the
``mask_encoding``:

- ``onehot``: image channels + K class channels; expert masks one-hot, predictions softmax.
  D can tell them apart from value statistics alone (exact 0/1 vs soft values), so it
  need not look at the image at all.
- ``product``: the image multiplied by each class mask, K * C channels (SegAN, Xue et al. 2018).
- ``scaled``: image + K class channels, but the expert mask is softened towards the prediction
  (Luc et al. 2016): at each pixel the true class gets max(tau, s_true) and the other classes
  share the rest in proportion to the prediction s, so both inputs are soft.

``input_scale`` < 1 shows D an area-downsampled pair, which is most of its cost.
"""

from __future__ import annotations

import inspect

import monai.networks.nets as monai_nets
import torch
import torch.nn.functional as F
from torch import nn

from adversarial_seg.errors import InputError

MASK_ENCODINGS = ("onehot", "product", "scaled")


class NetworkConfigError(InputError):
    """A network name or keyword in the config is wrong; names the key and the fix."""


def build_monai_network(name: str, key: str, fixed: dict, kwargs: dict) -> nn.Module:
    """Instantiate ``monai.networks.nets.<name>(**fixed, **kwargs)`` with clear errors.

    ``key`` is the config path (e.g. ``model.segmentor``) used in messages.
    """
    cls = getattr(monai_nets, name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise NetworkConfigError(
            f"{key}.name: {name!r} is not a network in monai.networks.nets; use e.g. UNet, BasicUNet, DynUNet"
        )
    accepted = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    unknown = sorted(k for k in kwargs if k not in accepted and not takes_any)
    if unknown:
        raise NetworkConfigError(
            f"{key}: {name} has no argument {', '.join(unknown)}; valid: "
            f"{', '.join(k for k in accepted if k not in ('self', *fixed))}"
        )
    clash = sorted(set(kwargs) & set(fixed))
    if clash:
        raise NetworkConfigError(f"{key}: {', '.join(clash)} is set from the data; remove it from the config")
    try:
        return cls(**fixed, **kwargs)
    except (TypeError, ValueError, AssertionError) as exc:
        raise NetworkConfigError(f"{key}: {name}({kwargs}) failed: {exc}") from None


def build_segmentor(name: str, kwargs: dict, spatial_dims: int, in_channels: int, num_classes: int) -> nn.Module:
    """A MONAI network mapping (B, in_channels, *spatial) to (B, num_classes, *spatial) logits."""
    fixed = {"spatial_dims": spatial_dims, "in_channels": in_channels, "out_channels": num_classes}
    return build_monai_network(name, "model.segmentor", fixed, kwargs)


def scaled_encoding(onehot: torch.Tensor, probs: torch.Tensor, tau: float = 0.9) -> torch.Tensor:
    """Luc et al. 2016 "scale" encoding of an expert mask, shape (B, K, ...) like ``probs``.

    y_true = max(tau, s_true); y_other = s_other * (1 - y_true) / (1 - s_true). Sums to 1.
    """
    probs = probs.detach().float()
    s_true = (probs * onehot).sum(1, keepdim=True)
    y_true = torch.clamp(s_true, min=tau)
    rest = (1.0 - y_true) / (1.0 - s_true).clamp_min(1e-6)
    return onehot * y_true + (1.0 - onehot) * probs * rest


class MaskDiscriminator(nn.Module):
    """PatchGAN (MONAI ``PatchDiscriminator``) on an encoded (image, mask) pair.

    It owns the whole encoding of a pair: ``expert_mask`` and ``predicted_mask`` turn class
    indices and logits into the (B, K, *S) masks it judges, ``forward`` combines them with the
    image. forward(image (B, C, *S), mask (B, K, *S)) -> patch logits (B, 1, *s).
    """

    def __init__(
        self,
        spatial_dims: int,
        image_channels: int,
        num_classes: int,
        mask_encoding: str = "scaled",
        input_scale: float = 0.5,
        channels: int = 16,
        num_layers_d: int = 3,
        norm: str | tuple = "INSTANCE",
        **kwargs,
    ):
        super().__init__()
        if mask_encoding not in MASK_ENCODINGS:
            raise NetworkConfigError(
                f"model.discriminator.mask_encoding: {mask_encoding!r} is not one of {', '.join(MASK_ENCODINGS)}"
            )
        self.mask_encoding = mask_encoding
        self.input_scale = float(input_scale)
        in_channels = image_channels * num_classes if mask_encoding == "product" else image_channels + num_classes
        fixed = {"spatial_dims": spatial_dims, "in_channels": in_channels, "out_channels": 1}
        self.net = build_monai_network(
            "PatchDiscriminator",
            "model.discriminator",
            fixed,
            {"channels": channels, "num_layers_d": num_layers_d, "norm": norm, **kwargs},
        )

    @staticmethod
    def predicted_mask(logits: torch.Tensor) -> torch.Tensor:
        """The segmentor's class probabilities (B, K, *S), in float32 for a stable softmax under AMP."""
        return torch.softmax(logits.float(), dim=1)

    def expert_mask(self, label: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """The expert mask (B, 1, *S) class indices, encoded as D sees it: one-hot, or for ``scaled``
        softened towards the (detached) prediction so both masks are soft (Luc et al. 2016)."""
        onehot = F.one_hot(label[:, 0].long(), logits.shape[1]).movedim(-1, 1).float()
        if self.mask_encoding == "scaled":
            return scaled_encoding(onehot, self.predicted_mask(logits))
        return onehot

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.input_scale < 1:
            image = F.interpolate(image, scale_factor=self.input_scale, mode="area")
            mask = F.interpolate(mask, scale_factor=self.input_scale, mode="area")
        mask = mask.to(image.dtype)
        if self.mask_encoding == "product":
            pair = (image.unsqueeze(1) * mask.unsqueeze(2)).flatten(1, 2)
        else:
            pair = torch.cat([image, mask], dim=1)
        return self.net(pair)[-1]  # PatchDiscriminator returns every layer's output; logits last
