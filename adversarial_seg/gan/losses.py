"""Adversarial losses on logits, a discriminator (``d_*``) and a generator (``g_*``) form each.

All functions take raw discriminator outputs (logits, any shape, e.g. (B, 1, h, w) for a
PatchGAN) and return a scalar mean. Probabilities are never formed explicitly: log-sigmoid
terms are written with ``softplus`` so they stay finite and autocast-safe, which is why we do
not use MONAI's ``PatchAdversarialLoss`` (DESIGN.md).

With D(x) = sigmoid(l):  -log D = softplus(-l),  -log(1 - D) = softplus(l).

Example:
    >>> import torch
    >>> d_loss, g_loss = adversarial_losses("non_saturating")
    >>> round(float(g_loss(torch.zeros(4))), 4)  # -log(1/2)
    0.6931
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def d_logistic(real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
    """-E[t log D(x) + (1 - t) log(1 - D(x))] - E[log(1 - D(G(z)))], t = real_target.

    ``real_target`` < 1 is one-sided label smoothing (Salimans et al. 2016): only the real
    label is softened.
    """
    real_term = real_target * F.softplus(-real) + (1.0 - real_target) * F.softplus(real)
    return real_term.mean() + F.softplus(fake).mean()


def g_minimax(fake: Tensor) -> Tensor:
    """Saturating generator loss of Goodfellow et al. 2014: minimise E[log(1 - D(G(z)))].

    Its gradient with respect to the logit is -D(G(z)): it vanishes when D confidently
    rejects the fakes, which is when G most needs a signal.
    """
    return -F.softplus(fake).mean()


def g_non_saturating(fake: Tensor) -> Tensor:
    """Non-saturating generator loss: maximise E[log D(G(z))]. Gradient -(1 - D(G(z)))."""
    return F.softplus(-fake).mean()


def d_least_squares(real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
    """LSGAN (Mao et al. 2017, a=0, b=1): 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]."""
    return 0.5 * ((real - real_target) ** 2).mean() + 0.5 * (fake**2).mean()


def g_least_squares(fake: Tensor) -> Tensor:
    """LSGAN generator (c=1): 1/2 E[(D(G(z)) - 1)^2]."""
    return 0.5 * ((fake - 1.0) ** 2).mean()


def d_hinge(real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
    """Hinge loss (Lim & Ye 2017): E[relu(t - D(x))] + E[relu(1 + D(G(z)))]."""
    return F.relu(real_target - real).mean() + F.relu(1.0 + fake).mean()


def g_hinge(fake: Tensor) -> Tensor:
    """Hinge generator loss: -E[D(G(z))]."""
    return -fake.mean()


def d_wasserstein(real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
    """WGAN critic (Arjovsky et al. 2017): E[f(G(z))] - E[f(x)]. Label smoothing has no meaning here."""
    return fake.mean() - real.mean()


def g_wasserstein(fake: Tensor) -> Tensor:
    """WGAN generator: -E[f(G(z))]."""
    return -fake.mean()


DLoss = Callable[..., Tensor]
GLoss = Callable[[Tensor], Tensor]

ADVERSARIAL_LOSSES: dict[str, tuple[DLoss, GLoss]] = {
    "minimax": (d_logistic, g_minimax),
    "non_saturating": (d_logistic, g_non_saturating),
    "least_squares": (d_least_squares, g_least_squares),
    "hinge": (d_hinge, g_hinge),
    "wasserstein": (d_wasserstein, g_wasserstein),
}


def adversarial_losses(name: str) -> tuple[DLoss, GLoss]:
    """(d_loss(real_logits, fake_logits, real_target=1.0), g_loss(fake_logits)) chosen by name.

    A feature loss (``FEATURE_LOSSES``, e.g. ``segan_l1``) returns (d_loss(real_features,
    fake_features), g_loss(real_features, fake_features)) on lists of every layer's output.
    """
    if name in FEATURE_LOSSES:
        return FEATURE_LOSSES[name]
    try:
        return ADVERSARIAL_LOSSES[name]
    except KeyError:
        names = ", ".join([*ADVERSARIAL_LOSSES, *FEATURE_LOSSES])
        raise ValueError(f"unknown adversarial loss {name!r}; choose one of {names}") from None


def multiscale_l1(real_features: Sequence[Tensor], fake_features: Sequence[Tensor]) -> Tensor:
    """SegAN's multi-scale L1 (Xue et al. 2018): mean over layers of mean |f_i(real) - f_i(fake)|.

    ``*_features``: the critic's output at every layer, layer i (B, C_i, *s_i), the same shapes in
    both lists. Each layer counts equally, whatever its size. (The SegAN code concatenates the
    flattened layers and the critic's input, so large layers dominate there.)

    >>> import torch
    >>> real = [torch.zeros(1, 1, 2), torch.zeros(1, 2, 1)]
    >>> fake = [torch.tensor([[[1.0, 3.0]]]), torch.tensor([[[1.0], [-1.0]]])]
    >>> float(multiscale_l1(real, fake))  # ((1 + 3) / 2 + (1 + 1) / 2) / 2
    1.5
    """
    if len(real_features) != len(fake_features) or not real_features:
        raise ValueError("multiscale_l1 needs the same, non-zero number of real and fake feature layers")
    per_layer = [(r.float() - f.float()).abs().mean() for r, f in zip(real_features, fake_features)]
    return torch.stack(per_layer).mean()


def d_multiscale_l1(real_features: Sequence[Tensor], fake_features: Sequence[Tensor]) -> Tensor:
    """SegAN critic: maximise the multi-scale L1 between the expert and the predicted pair."""
    return -multiscale_l1(real_features, fake_features)


def g_multiscale_l1(real_features: Sequence[Tensor], fake_features: Sequence[Tensor]) -> Tensor:
    """SegAN segmentor: minimise it (real features carry no gradient to G)."""
    return multiscale_l1([r.detach() for r in real_features], fake_features)


FeatureLoss = Callable[[Sequence[Tensor], Sequence[Tensor]], Tensor]

# Losses on the critic's features at every layer (logits last) rather than on the logits alone.
FEATURE_LOSSES: dict[str, tuple[FeatureLoss, FeatureLoss]] = {"segan_l1": (d_multiscale_l1, g_multiscale_l1)}


def feature_matching(real_features: Sequence[Tensor], fake_features: Sequence[Tensor]) -> Tensor:
    """Feature matching (Salimans et al. 2016): mean over layers of mean (E_b f_i(real) - E_b f_i(fake))^2.

    Layer i is (B, C_i, *s_i); E_b is the mean over the batch, so G matches D's mean features at
    every channel and position, not each sample's. Pass the intermediate layers (without the
    logits); the real features are detached.

    >>> import torch
    >>> real = [torch.tensor([[1.0], [3.0]])]  # batch mean 2
    >>> fake = [torch.tensor([[0.0], [0.0]])]  # batch mean 0
    >>> float(feature_matching(real, fake))
    4.0
    """
    if len(real_features) != len(fake_features) or not real_features:
        raise ValueError("feature_matching needs the same, non-zero number of real and fake feature layers")
    per_layer = [
        ((r.detach().float().mean(0) - f.float().mean(0)) ** 2).mean() for r, f in zip(real_features, fake_features)
    ]
    return torch.stack(per_layer).mean()


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    generator: torch.Generator | None = None,
    grad_scale: float | Tensor | None = None,
) -> Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017): E[(||grad f(x_hat)||_2 - 1)^2].

    x_hat = eps * real + (1 - eps) * fake with one eps ~ U[0, 1] per sample (shape (B, 1, ...)),
    drawn from ``generator`` when given. ``critic`` maps a (B, ...) batch to logits; conditioning
    (the image of an (image, mask) pair) lives in the closure.

    Under fp16 autocast pass ``grad_scale`` = the GradScaler's scale: the critic output is
    multiplied by it before ``autograd.grad`` (so small gradients do not underflow) and the
    gradients are divided by it afterwards, as in PyTorch's AMP examples.
    """
    batch = real.shape[0]
    eps_shape = (batch,) + (1,) * (real.dim() - 1)
    eps = torch.rand(eps_shape, generator=generator, device="cpu").to(real.device, real.dtype)
    interpolates = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    out = critic(interpolates)
    if grad_scale is not None:
        out = out * grad_scale
    (grads,) = torch.autograd.grad(out.sum(), interpolates, create_graph=True)
    if grad_scale is not None:
        grads = grads / grad_scale
    norms = grads.float().flatten(1).norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()


def add_instance_noise(x: Tensor, sigma: float) -> Tensor:
    """Gaussian instance noise (Sønderby et al. 2017) on a discriminator input; identity at 0."""
    return x if sigma <= 0 else x + sigma * torch.randn_like(x)
