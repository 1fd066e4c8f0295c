"""Progressive growing: each piece by hand (schedule, fade-in, minibatch stddev, pixel norm, the
equalised learning rate), the networks' fade-in at alpha 0 and 1, the task's real images and image
count, and a gan-train run that resumes exactly in the middle of a fade-in."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from adversarial_seg.cli.gan_train import main
from adversarial_seg.config import ConfigError
from adversarial_seg.gan.config import gan_config_from_mapping
from adversarial_seg.gan.progressive_layers import (
    EqualizedConv2d,
    EqualizedLinear,
    fade_in,
    growth_state,
    minibatch_stddev,
    pixel_norm,
)
from adversarial_seg.gan.variants.progressive import ProgressiveDiscriminator, ProgressiveGenerator

from ...data.conftest import ph2_like  # noqa: F401  (the fixture)
from .conftest import same_checkpoint_modules, tiny_step


@pytest.mark.parametrize(
    ("images", "expected"),
    [
        (0, (0, 1.0)),  # the start size, stable
        (99, (0, 1.0)),
        (100, (1, 0.0)),  # the first doubling starts fading in
        (125, (1, 0.25)),
        (150, (1, 0.5)),
        (200, (1, 1.0)),  # faded in, stable
        (299, (1, 1.0)),
        (350, (2, 0.5)),  # the second doubling half faded in
        (10_000, (2, 1.0)),  # the last level stays
    ],
)
def test_growth_schedule_by_hand(images, expected):
    assert growth_state(images, levels=2, fade=100, stable=100) == expected


def test_growth_schedule_without_doublings_or_fade():
    assert growth_state(5000, levels=0, fade=100, stable=100) == (0, 1.0)
    assert growth_state(100, levels=1, fade=0, stable=100) == (1, 1.0)  # no fade: the new level at once


def test_fade_in_at_alpha_0_half_and_1():
    low, high = torch.tensor([0.0, 2.0]), torch.tensor([4.0, -2.0])
    assert torch.equal(fade_in(low, high, 0.0), low)
    assert torch.equal(fade_in(low, high, 0.5), torch.tensor([2.0, 0.0]))
    assert torch.equal(fade_in(low, high, 1.0), high)


def test_minibatch_stddev_by_hand():
    # One group of 4 samples of one feature: values 1, 2, 3, 4; biased variance 1.25.
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(4, 1, 1, 1)
    out = minibatch_stddev(x, group=4)
    assert out.shape == (4, 2, 1, 1) and torch.equal(out[:, :1], x)
    assert torch.allclose(out[:, 1], torch.full((4, 1, 1), math.sqrt(1.25)))
    # Groups of 2 among 4 samples: sample i is in group i % 2, so {1, 3} and {2, 6}: stds 1 and 2.
    y = torch.tensor([1.0, 2.0, 3.0, 6.0]).view(4, 1, 1, 1)
    assert torch.allclose(minibatch_stddev(y, group=2)[:, 1].flatten(), torch.tensor([1.0, 2.0, 1.0, 2.0]))
    # A batch of 3 cannot be split into groups of 2: one group of 3 (values 0, 0, 3: std sqrt 2).
    z = torch.tensor([0.0, 0.0, 3.0]).view(3, 1, 1, 1)
    assert torch.allclose(minibatch_stddev(z, group=2)[:, 1].flatten(), torch.full((3,), math.sqrt(2.0)))


def test_pixel_norm_by_hand():
    x = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)  # mean square 12.5
    assert torch.allclose(pixel_norm(x).flatten(), torch.tensor([3.0, 4.0]) / math.sqrt(12.5))


def test_equalised_learning_rate_scales_unit_weights_by_he_constant():
    torch.manual_seed(0)
    conv = EqualizedConv2d(8, 4, 3, padding=1)
    assert conv.scale == pytest.approx(math.sqrt(2 / (8 * 9)))
    assert 0.8 < float(conv.weight.detach().std()) < 1.2  # stored at unit scale: Adam sees every layer alike
    x = torch.randn(2, 8, 5, 5)
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight * math.sqrt(2 / 72), conv.bias, padding=1))
    linear = EqualizedLinear(16, 3, gain=1.0)
    v = torch.randn(2, 16)
    assert torch.allclose(linear(v), v @ (linear.weight / 4).T + linear.bias)


def test_generator_fade_in_blends_the_upsampled_previous_image():
    torch.manual_seed(0)
    g = ProgressiveGenerator(z_dim=8, size=16, channels=4, out_channels=1)
    z = torch.randn(3, 8)
    previous = g(z, 0)  # 4 x 4
    assert previous.shape == (3, 1, 4, 4) and g(z, 2).shape == (3, 1, 16, 16)
    assert torch.allclose(g(z, 1, alpha=0.0), F.interpolate(previous, scale_factor=2, mode="nearest"))
    half = g(z, 1, alpha=0.5)
    assert torch.allclose(half, 0.5 * g(z, 1, alpha=0.0) + 0.5 * g(z, 1, alpha=1.0), atol=1e-6)


def test_discriminator_at_alpha_0_sees_the_half_resolution_image():
    torch.manual_seed(0)
    d = ProgressiveDiscriminator(size=16, channels=4, in_channels=1)
    x = torch.randn(4, 1, 8, 8)
    assert d(x, 1).shape == (4, 1)
    assert torch.allclose(d(x, 1, alpha=0.0), d(F.avg_pool2d(x, 2), 0), atol=1e-6)


def test_task_shows_real_images_at_the_current_resolution_and_counts_images(digit_batches):
    config, step = tiny_step("progressive", train={"growth": {"start_size": 4, "fade_images": 32, "stable_images": 16}})
    task, batch = step.task, digit_batches[0]  # 16 images a batch
    assert task.growth() == (0, 1.0)
    assert torch.allclose(task.real_sample(batch, None), F.avg_pool2d(batch["real"], 4))
    step([batch])
    assert int(task.generator.images_seen) == 16 and task.growth() == (1, 0.0)
    step([batch])
    assert task.growth() == (1, 0.5)
    real = task.real_sample(batch, None)  # 8 x 8, half way between its 4 x 4 copy and itself
    at_8 = F.avg_pool2d(batch["real"], 2)
    low = F.interpolate(F.avg_pool2d(at_8, 2), scale_factor=2, mode="nearest")
    assert torch.allclose(real, 0.5 * low + 0.5 * at_8)
    samples = task.sample(5, torch.Generator().manual_seed(0))
    assert samples.shape == (5, 1, 16, 16) and samples.abs().max() <= 1  # upsampled to data.size
    assert set(step([batch])) >= {"loss_d", "loss_drift", "gradient_penalty", "loss_g"}


def test_growth_belongs_to_the_progressive_variant_only():
    with pytest.raises(ConfigError, match="train.growth"):
        gan_config_from_mapping({"variant": "dcgan", "train": {"growth": {"start_size": 4}}})
    with pytest.raises(ConfigError, match="start_size 32 is above the image size 16"):
        gan_config_from_mapping({"variant": "progressive", "train": {"growth": {"start_size": 32}}})
    with pytest.raises(ConfigError, match="loss.drift"):
        gan_config_from_mapping({"variant": "dcgan", "loss": {"drift": 0.001}})
    assert gan_config_from_mapping({"variant": "progressive"}).train.growth.start_size == 4


def args(run, *extra, epochs=1):
    # 19 full batches of 64 digits an epoch (the last partial one is dropped): epoch 1 ends 216
    # images into the 8 x 8 fade-in (alpha 0.108)
    return ["--config", "configs/gan/progressive.yaml", "--output", str(run), "--no-progress", "--threads", "1",
            "--set", "model.channels=4", "--set", "train.batch_size=64", "--set", f"train.epochs={epochs}",
            "--set", "train.growth.stable_images=1000", "--set", "train.growth.fade_images=2000",
            "--set", "eval.samples=40", "--set", "eval.parzen_samples=40", *extra]  # fmt: skip


def test_gan_train_resumes_exactly_in_the_middle_of_a_fade_in(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[3])
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(args(resumed)) == 0
    first = torch.load(resumed / "checkpoint_last.pt", weights_only=True)["modules"]["generator"]
    assert int(first["images_seen"]) == 19 * 64  # stopped in the 8 x 8 fade-in
    assert main(args(resumed, "--resume", epochs=2)) == 0 and main(args(straight, epochs=2)) == 0
    a = same_checkpoint_modules(straight, resumed)
    assert int(a["generator"]["images_seen"]) == 2 * 19 * 64
    assert (
        json.loads((resumed / "metrics.json").read_text())["metrics"]
        == json.loads((straight / "metrics.json").read_text())["metrics"]
    )


def test_ph2_images_are_for_progressive_and_square():
    with pytest.raises(ConfigError, match="ph2_images"):
        gan_config_from_mapping({"variant": "dcgan", "data": {"dataset": "ph2_images"}})
    with pytest.raises(ConfigError, match="square"):
        gan_config_from_mapping(
            {"variant": "progressive", "data": {"dataset": "ph2_images", "ph2": {"size": [64, 96]}}}
        )
    with pytest.raises(ConfigError, match="above the image size 32"):
        gan_config_from_mapping({"variant": "progressive", "data": {"dataset": "ph2_images", "ph2": {"size": [32, 32]}},
                                 "train": {"growth": {"start_size": 64}}})  # fmt: skip


def test_gan_train_grows_on_ph2_images_scored_in_the_attribute_classifiers_features(ph2_like, tmp_path, monkeypatch):  # noqa: F811
    from pathlib import Path

    from adversarial_seg.gan.ph2_encoders import save_encoders, train_encoders
    from adversarial_seg.gan.ph2_text import ph2_text_splits

    from .test_stackgan import with_attributes

    monkeypatch.chdir(Path(__file__).resolve().parents[3])
    root = with_attributes(ph2_like)
    encoders = tmp_path / "encoders"
    save_encoders(train_encoders(ph2_text_splits(root, (32, 32))["train"], epochs=1), encoders, {})
    run = tmp_path / "run"
    assert main(["--config", "configs/gan/progressive_ph2.yaml", "--output", str(run), "--no-progress", "--threads", "1",
                 "--set", f"data.ph2.root={root}", "--set", "data.ph2.size=[32, 32]", "--set", f"model.encoders={encoders}",
                 "--set", "model.channels=4", "--set", "model.z_dim=8", "--set", "train.batch_size=2",
                 "--set", "train.epochs=2", "--set", "eval.every=1", "--set", "eval.samples=10", "--set", "eval.grid=2",
                 "--set", "train.growth={start_size: 16, fade_images: 2, stable_images: 2}"]) == 0  # fmt: skip
    body = json.loads((run / "metrics.json").read_text())
    assert set(body["metrics"]) == set(body["reference"]) == {"frechet_distance", "spread_ratio"}
    assert (run / "samples" / "epoch_002.png").is_file()
    modules = torch.load(run / "checkpoint_last.pt", weights_only=True)["modules"]
    assert int(modules["generator"]["images_seen"]) == 2 * 2 * 2  # 2 epochs of 2 batches of 2 (4 training cases)
