"""Adversarial losses: hand-computed values, gradient signs, saturation, gradient penalty."""

import math

import pytest
import torch

from adversarial_seg.gan.losses import (
    ADVERSARIAL_LOSSES,
    adversarial_losses,
    d_hinge,
    d_least_squares,
    d_logistic,
    d_wasserstein,
    g_hinge,
    g_least_squares,
    g_minimax,
    g_non_saturating,
    g_wasserstein,
    gradient_penalty,
)


def t(*values):
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


def test_logistic_discriminator_value():
    # softplus(-2) + softplus(-1) = log(1 + e^-2) + log(1 + e^-1)
    expected = math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))
    assert d_logistic(t(2.0), t(-1.0)).item() == pytest.approx(expected, abs=1e-12)
    assert d_logistic(t(0.0), t(0.0)).item() == pytest.approx(2 * math.log(2), abs=1e-12)


def test_one_sided_label_smoothing_softens_only_the_real_term():
    # target 0.9 on a real logit of 2: 0.9 * softplus(-2) + 0.1 * softplus(2); fake term unchanged
    real_term = 0.9 * math.log(1 + math.exp(-2)) + 0.1 * math.log(1 + math.exp(2))
    fake_term = math.log(1 + math.exp(-1))
    assert d_logistic(t(2.0), t(-1.0), real_target=0.9).item() == pytest.approx(real_term + fake_term, abs=1e-12)


def test_generator_logistic_values():
    # minimax: log(1 - D) with D = sigmoid(0.5); non-saturating: -log D
    d = 1 / (1 + math.exp(-0.5))
    assert g_minimax(t(0.5)).item() == pytest.approx(math.log(1 - d), abs=1e-12)
    assert g_non_saturating(t(0.5)).item() == pytest.approx(-math.log(d), abs=1e-12)


def test_least_squares_hinge_wasserstein_values():
    assert d_least_squares(t(1.5), t(0.5)).item() == pytest.approx(0.5 * 0.25 + 0.5 * 0.25)
    assert g_least_squares(t(0.5)).item() == pytest.approx(0.5 * 0.25)
    assert d_hinge(t(0.5), t(-0.5)).item() == pytest.approx(1.0)
    assert d_hinge(t(2.0), t(-2.0)).item() == pytest.approx(0.0)  # both outside the margin
    assert g_hinge(t(0.5, 1.5)).item() == pytest.approx(-1.0)
    assert d_wasserstein(t(3.0, 1.0), t(0.5, -0.5)).item() == pytest.approx(0.0 - 2.0)
    assert g_wasserstein(t(0.5, -0.5, 3.0)).item() == pytest.approx(-1.0)


@pytest.mark.parametrize("name", list(ADVERSARIAL_LOSSES))
def test_gradient_signs(name):
    """D's loss falls as real logits rise and fake logits fall; G's falls as fake logits rise."""
    d_loss, g_loss = adversarial_losses(name)
    real, fake = t(0.3, -0.2), t(0.4, 0.1)  # inside every loss's active region
    d_loss(real, fake).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()
    fake = t(0.4, 0.1)
    g_loss(fake).backward()
    assert (fake.grad < 0).all()


def test_saturating_generator_gradient_vanishes_where_non_saturating_does_not():
    """Goodfellow et al. 2014, sec. 3: early on D rejects fakes (D(G(z)) near 0) and
    log(1 - D(G(z))) saturates; maximising log D(G(z)) gives strong gradients instead."""
    logit = -10.0  # D(G(z)) = sigmoid(-10) = 4.54e-5
    d = 1 / (1 + math.exp(-logit))
    saturating, non_saturating = t(logit), t(logit)
    g_minimax(saturating).backward()
    g_non_saturating(non_saturating).backward()
    assert saturating.grad.item() == pytest.approx(-d, rel=1e-9)  # d/dl log(1 - sigmoid(l)) = -sigmoid(l)
    assert non_saturating.grad.item() == pytest.approx(-(1 - d), rel=1e-9)
    assert abs(non_saturating.grad.item()) > 1e4 * abs(saturating.grad.item())


def test_unknown_loss_name_is_refused():
    with pytest.raises(ValueError, match="non_saturating"):
        adversarial_losses("nonsaturating")


def half_squared_norm(x):
    """Critic f(x) = 0.5 * ||x||^2 per sample; its gradient is x itself."""
    return 0.5 * (x**2).flatten(1).sum(1)


def closed_form_penalty(real, fake, seed):
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), generator=torch.Generator().manual_seed(seed))
    x_hat = eps * real + (1 - eps) * fake
    return ((x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()


def shared_epsilon_penalty(critic, real, fake, generator):
    """The common mistake: one epsilon for the whole batch."""
    eps = torch.rand((1,) * real.dim(), generator=generator)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grads,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grads.flatten(1).norm(dim=1) - 1) ** 2).mean()


def matches_closed_form(penalty_fn) -> bool:
    torch.manual_seed(1)
    real, fake = torch.randn(6, 2, 3, 3), torch.randn(6, 2, 3, 3) * 2
    value = penalty_fn(half_squared_norm, real, fake, torch.Generator().manual_seed(7))
    return torch.allclose(value, closed_form_penalty(real, fake, seed=7), atol=1e-5)


def test_gradient_penalty_equals_closed_form_with_per_sample_epsilon():
    assert matches_closed_form(gradient_penalty)


def test_closed_form_check_rejects_a_shared_epsilon():
    assert not matches_closed_form(shared_epsilon_penalty)


def test_gradient_penalty_with_loss_scale_gives_the_same_value():
    torch.manual_seed(2)
    real, fake = torch.randn(4, 5), torch.randn(4, 5)
    plain = gradient_penalty(half_squared_norm, real, fake, torch.Generator().manual_seed(3))
    scaled = gradient_penalty(half_squared_norm, real, fake, torch.Generator().manual_seed(3), grad_scale=1024.0)
    assert torch.allclose(plain, scaled, atol=1e-6)


def test_multiscale_l1_averages_layers_equally():
    """SegAN's loss, by hand: layer 1 |(0,0) - (2,4)| mean 3, layer 2 |(1,1,1,1) - (1,1,1,0)| mean 0.25."""
    from adversarial_seg.gan.losses import d_multiscale_l1, multiscale_l1

    real = [torch.zeros(1, 1, 2), torch.ones(1, 1, 2, 2)]
    fake = [torch.tensor([[[2.0, 4.0]]]), torch.tensor([[[[1.0, 1.0], [1.0, 0.0]]]])]
    assert float(multiscale_l1(real, fake)) == pytest.approx((3 + 0.25) / 2)
    assert float(d_multiscale_l1(real, fake)) == pytest.approx(-(3 + 0.25) / 2)  # D maximises it


def test_multiscale_l1_min_max_gradients():
    """D's loss falls as the features move apart; G's falls as the fake moves towards the real,
    and the real features get no gradient from G's loss."""
    from adversarial_seg.gan.losses import d_multiscale_l1, g_multiscale_l1

    real, fake = [t(1.0, 2.0)], [t(0.5, 3.0)]
    d_multiscale_l1(real, fake).backward()
    # d/df mean |r - f| = sign(f - r) / 2 = (-0.5, 0.5); D's loss is its negative
    assert fake[0].grad.tolist() == [0.5, -0.5]
    real, fake = [t(1.0, 2.0)], [t(0.5, 3.0)]
    g_multiscale_l1(real, fake).backward()
    assert fake[0].grad.tolist() == [-0.5, 0.5] and real[0].grad is None
    assert adversarial_losses("segan_l1") == (d_multiscale_l1, g_multiscale_l1)


def test_feature_matching_compares_batch_means():
    """Salimans et al.: (E_b real - E_b fake)^2 per feature. Samples that differ but share a mean cost 0."""
    from adversarial_seg.gan.losses import feature_matching

    real = [torch.tensor([[1.0, 0.0], [3.0, 2.0]])]  # batch mean (2, 1)
    fake = [torch.tensor([[0.0, 1.0], [0.0, 1.0]])]  # batch mean (0, 1)
    assert float(feature_matching(real, fake)) == pytest.approx((4.0 + 0.0) / 2)
    swapped = [torch.tensor([[3.0, 2.0], [1.0, 0.0]])]
    assert float(feature_matching(real, swapped)) == 0.0
    two_layers = feature_matching(real + real, fake + swapped)
    assert float(two_layers) == pytest.approx(1.0)  # mean of 2 and 0
    with pytest.raises(ValueError, match="same, non-zero number"):
        feature_matching(real, [])
