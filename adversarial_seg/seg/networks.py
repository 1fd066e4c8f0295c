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

``input_scale`` < 1 shows D an area-downsampled pair, which is most of its cost; a
full-resolution D at lower width is ``input_scale: 1`` with a smaller ``channels``.

``norm`` is the normalisation of PatchDiscriminator's inner layers (``INSTANCE``, ``BATCH``,
``GROUP``/``LAYER`` with arguments as ``[name, {...}]``, or ``NONE`` / null for none); with
``spectral_norm`` every convolution's weight is divided by its largest singular value
(Miyato et al. 2018, ``torch.nn.utils.parametrizations.spectral_norm``).
"""

from __future__ import annotations

import inspect

import monai.networks.nets as monai_nets
import torch
import torch.nn.functional as F
from torch import nn

from adversarial_seg.errors import InputError

MASK_ENCODINGS = ("onehot", "product", "scaled")
NORMS = ("INSTANCE", "BATCH", "GROUP", "LAYER", "LOCALRESPONSE", "SYNCBATCH", "INSTANCE_NVFUSER")


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


def discriminator_norm(norm) -> str | tuple | None:
    """``model.discriminator.norm`` as MONAI takes it: None for ``NONE`` / null, else the name (or
    (name, arguments)); NetworkConfigError naming the key for anything else.

    >>> discriminator_norm("none"), discriminator_norm("instance"), discriminator_norm(["GROUP", {"num_groups": 2}])
    (None, 'INSTANCE', ('GROUP', {'num_groups': 2}))
    """
    if norm is None or (isinstance(norm, str) and norm.upper() == "NONE"):
        return None
    name, args = norm, None
    if isinstance(norm, list | tuple) and len(norm) == 2:
        name, args = norm
    if not isinstance(name, str) or name.upper() not in NORMS or not isinstance(args, dict | None):
        raise NetworkConfigError(
            f"model.discriminator.norm: {norm!r} is not a normalisation; use INSTANCE, BATCH, NONE (or null), "
            "or [GROUP, {num_groups: N}]"
        )
    return name.upper() if args is None else (name.upper(), args)


def add_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation on the weight of every convolution in ``module`` (in place)."""
    for layer in list(module.modules()):
        if isinstance(layer, nn.Conv1d | nn.Conv2d | nn.Conv3d):
            nn.utils.parametrizations.spectral_norm(layer)
    return module


class MaskDiscriminator(nn.Module):
    """PatchGAN (MONAI ``PatchDiscriminator``) on an encoded (image, mask) pair.

    It owns the whole encoding of a pair: ``expert_mask`` and ``predicted_mask`` turn class
    indices and logits into the (B, K, *S) masks it judges, ``forward`` combines them with the
    image. forward(image (B, C, *S), mask (B, K, *S)) -> patch logits (B, 1, *s); ``features``
    returns every layer's output, (B, C_i, *s_i), the logits last.
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
        norm: str | tuple | None = "INSTANCE",
        spectral_norm: bool = False,
        **kwargs,
    ):
        super().__init__()
        if mask_encoding not in MASK_ENCODINGS:
            raise NetworkConfigError(
                f"model.discriminator.mask_encoding: {mask_encoding!r} is not one of {', '.join(MASK_ENCODINGS)}"
            )
        if not isinstance(spectral_norm, bool):
            raise NetworkConfigError(f"model.discriminator.spectral_norm: {spectral_norm!r} is not true or false")
        self.mask_encoding = mask_encoding
        self.input_scale = float(input_scale)
        in_channels = image_channels * num_classes if mask_encoding == "product" else image_channels + num_classes
        fixed = {"spatial_dims": spatial_dims, "in_channels": in_channels, "out_channels": 1}
        self.net = build_monai_network(
            "PatchDiscriminator",
            "model.discriminator",
            fixed,
            {"channels": channels, "num_layers_d": num_layers_d, "norm": discriminator_norm(norm), **kwargs},
        )
        if spectral_norm:
            add_spectral_norm(self.net)

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

    def features(self, image: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output on the encoded pair, (B, C_i, *s_i) each, patch logits (B, 1, *s) last."""
        if self.input_scale < 1:
            image = F.interpolate(image, scale_factor=self.input_scale, mode="area")
            mask = F.interpolate(mask, scale_factor=self.input_scale, mode="area")
        mask = mask.to(image.dtype)
        if self.mask_encoding == "product":
            pair = (image.unsqueeze(1) * mask.unsqueeze(2)).flatten(1, 2)
        else:
            pair = torch.cat([image, mask], dim=1)
        return self.net(pair)  # PatchDiscriminator returns every layer's output; logits last

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.features(image, mask)[-1]
