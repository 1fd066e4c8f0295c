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

from collections.abc import Callable

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
    """(d_loss(real_logits, fake_logits, real_target=1.0), g_loss(fake_logits)) chosen by name."""
    try:
        return ADVERSARIAL_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown adversarial loss {name!r}; choose one of {', '.join(ADVERSARIAL_LOSSES)}") from None


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
