"""BigGAN-style conditioning: each piece by hand (conditional batch norm, self-attention at
initialisation, the projection term, truncation, the weight average), the variant's step, and a
short gan-train run that resumes exactly with its moving average."""

import json

import pytest
import torch
from torch import nn

from adversarial_seg.cli.gan_train import main
from adversarial_seg.gan.biggan_layers import (
    ConditionalBatchNorm2d,
    SelfAttention2d,
    projection_logits,
    truncated_normal,
    update_ema,
)

from .conftest import tiny_step


def test_conditional_batch_norm_scales_and_shifts_per_class():
    cbn = ConditionalBatchNorm2d(2, num_classes=3)
    x = torch.tensor([[[[1.0, 3.0]], [[0.0, 2.0]]], [[[5.0, 7.0]], [[4.0, 6.0]]]])  # (2, 2, 1, 2)
    plain = cbn(x, torch.tensor([0, 1]))  # gamma = beta = 0 at first: batch norm alone
    assert torch.allclose(plain, nn.BatchNorm2d(2, affine=False)(x), atol=1e-6)
    with torch.no_grad():
        cbn.gamma.weight[2] = torch.tensor([1.0, -0.5])
        cbn.beta.weight[2] = torch.tensor([0.25, 3.0])
    out = cbn(x, torch.tensor([2, 2]))
    assert torch.allclose(out[:, 0], plain[:, 0] * 2.0 + 0.25, atol=1e-6)
    assert torch.allclose(out[:, 1], plain[:, 1] * 0.5 + 3.0, atol=1e-6)


def test_self_attention_starts_as_the_identity_and_learns_a_gain():
    block = SelfAttention2d(16)
    x = torch.randn(2, 16, 4, 4)
    assert torch.equal(block(x), x)
    block(x).sum().backward()
    assert block.gain.grad is not None and float(block.gain.grad) != 0


def test_projection_adds_the_class_embedding_inner_product():
    linear, embedding = nn.Linear(2, 1), nn.Embedding(3, 2)
    with torch.no_grad():
        linear.weight[:] = torch.tensor([[1.0, 2.0]])
        linear.bias[:] = 0.5
        embedding.weight[:] = torch.tensor([[0.0, 0.0], [1.0, -1.0], [2.0, 0.5]])
    h = torch.tensor([[1.0, 1.0], [3.0, 2.0]])
    logits = projection_logits(h, torch.tensor([1, 2]), linear, embedding)
    # psi(h) = h1 + 2 h2 + 0.5; embedding terms: (1 - 1) = 0 and (6 + 1) = 7
    assert logits.flatten().tolist() == pytest.approx([3.5, 7.5 + 7.0])


def test_truncation_redraws_beyond_the_threshold_and_none_is_plain():
    g = torch.Generator().manual_seed(0)
    z = truncated_normal(5000, 8, 0.5, g)
    assert z.abs().max() <= 0.5 and z.std() < 0.35  # a N(0,1) truncated at 0.5 has std 0.28
    assert torch.equal(truncated_normal(4, 3, None, torch.Generator().manual_seed(1)),
                       torch.randn(4, 3, generator=torch.Generator().manual_seed(1)))  # fmt: skip
    with pytest.raises(ValueError):
        truncated_normal(2, 2, 0.0)


def test_the_moving_average_moves_by_one_minus_decay_and_copies_buffers():
    model, ema = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    with torch.no_grad():
        model.weight[:] = torch.tensor([1.0, 3.0])
        ema.weight[:] = torch.tensor([0.0, 1.0])
        model.running_mean[:] = torch.tensor([5.0, 6.0])
    update_ema(ema, model, decay=0.9)
    assert ema.weight.tolist() == pytest.approx([0.1, 1.2])
    assert ema.running_mean.tolist() == [5.0, 6.0]


def test_a_biggan_step_updates_g_d_and_the_average(digit_batches):
    config, step = tiny_step("biggan")
    task = step.task
    assert set(task.modules()) == {"generator", "discriminator", "generator_ema"}
    ema_before = [p.clone() for p in task.generator_ema.parameters()]
    terms = step([digit_batches[0]])
    assert {"loss_d", "loss_g", "d_real", "d_fake"} <= set(terms)
    moved = [not torch.equal(a, b) for a, b in zip(ema_before, task.generator_ema.parameters())]
    assert any(moved) and not any(p.requires_grad for p in task.generator_ema.parameters())
    samples = task.sample(10, torch.Generator().manual_seed(0), torch.arange(10))
    assert samples.shape == (10, 1, 16, 16) and samples.abs().max() <= 1


def args(run, *extra, epochs=1):
    return ["--config", "configs/gan/biggan.yaml", "--output", str(run), "--no-progress", "--threads", "1",
            "--set", "model.channels=8", "--set", "train.batch_size=32", "--set", f"train.epochs={epochs}",
            "--set", "eval.samples=40", "--set", "eval.parzen_samples=40", *extra]  # fmt: skip


def test_gan_train_runs_biggan_and_resumes_exactly(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[3])
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(args(straight, epochs=2)) == 0
    assert main(args(resumed)) == 0 and main(args(resumed, "--resume", epochs=2)) == 0
    body = json.loads((straight / "metrics.json").read_text())
    assert 0 <= body["metrics"]["class_accuracy"] <= 1 and body["reference"]["class_accuracy"] > 0.9
    a = torch.load(straight / "checkpoint_last.pt", weights_only=True)["modules"]
    b = torch.load(resumed / "checkpoint_last.pt", weights_only=True)["modules"]
    for module in ("generator", "discriminator", "generator_ema"):
        for key, value in a[module].items():
            assert torch.equal(value, b[module][key]), (module, key)
    assert json.loads((resumed / "metrics.json").read_text())["metrics"] == body["metrics"]
