"""Mask discriminator encodings and network building from the config."""

import pytest
import torch

from adversarial_seg.seg.networks import MaskDiscriminator, NetworkConfigError, build_segmentor, scaled_encoding


def test_scaled_encoding_hand_computed():
    # pixel 1: true class 0, prediction (0.3, 0.7, 0.0) -> (0.9, 0.1 * 0.7 / 0.7, 0) = (0.9, 0.1, 0)
    # pixel 2: true class 2, prediction (0.2, 0.3, 0.5) -> true keeps max(0.9, 0.5) = 0.9,
    #          others scaled by (1 - 0.9) / (1 - 0.5) = 0.2 -> (0.04, 0.06, 0.9)
    # pixel 3: true class 1, prediction (0.02, 0.95, 0.03) -> true 0.95, others unchanged
    probs = torch.tensor([[0.3, 0.7, 0.0], [0.2, 0.3, 0.5], [0.02, 0.95, 0.03]]).T.reshape(1, 3, 3, 1)
    onehot = torch.tensor([[1, 0, 0], [0, 0, 1], [0, 1, 0]], dtype=torch.float32).T.reshape(1, 3, 3, 1)
    expected = torch.tensor([[0.9, 0.1, 0.0], [0.04, 0.06, 0.9], [0.02, 0.95, 0.03]]).T.reshape(1, 3, 3, 1)
    encoded = scaled_encoding(onehot, probs)
    assert torch.allclose(encoded, expected, atol=1e-6)
    assert torch.allclose(encoded.sum(1), torch.ones(1, 3, 1))


@pytest.mark.parametrize("encoding,channels", [("onehot", 2 + 3), ("scaled", 2 + 3), ("product", 2 * 3)])
def test_discriminator_input_channels(encoding, channels):
    d = MaskDiscriminator(2, image_channels=2, num_classes=3, mask_encoding=encoding, input_scale=0.5, channels=4)
    assert d.net.initial_conv.conv.in_channels == channels
    out = d(torch.randn(2, 2, 64, 64), torch.rand(2, 3, 64, 64))
    assert out.shape[:2] == (2, 1)


def test_input_scale_shrinks_what_the_discriminator_sees():
    seen = {}
    full = MaskDiscriminator(2, 1, 2, input_scale=1.0, channels=4)
    half = MaskDiscriminator(2, 1, 2, input_scale=0.5, channels=4)
    for name, d in (("full", full), ("half", half)):
        d.net.register_forward_pre_hook(lambda m, args, name=name: seen.__setitem__(name, args[0].shape))
        d(torch.randn(1, 1, 64, 64), torch.rand(1, 2, 64, 64))
    assert seen["full"][-2:] == (64, 64) and seen["half"][-2:] == (32, 32)


def test_product_encoding_multiplies_image_by_each_class_mask():
    d = MaskDiscriminator(2, image_channels=1, num_classes=2, mask_encoding="product", input_scale=1.0, channels=4)
    seen = {}
    d.net.register_forward_pre_hook(lambda m, args: seen.__setitem__("x", args[0]))
    image = torch.full((1, 1, 32, 32), 3.0)
    mask = torch.zeros(1, 2, 32, 32)
    mask[:, 1, :16] = 1
    mask[:, 0, 16:] = 1
    d(image, mask)
    assert torch.equal(seen["x"][0, 0], 3.0 * mask[0, 0]) and torch.equal(seen["x"][0, 1], 3.0 * mask[0, 1])


def test_segmentor_errors_name_the_key():
    with pytest.raises(NetworkConfigError, match="model.segmentor.name"):
        build_segmentor("UNett", {}, 2, 1, 2)
    with pytest.raises(NetworkConfigError, match="no argument chanels"):
        build_segmentor("UNet", {"chanels": [4, 8], "strides": [2]}, 2, 1, 2)
    with pytest.raises(NetworkConfigError, match="set from the data"):
        build_segmentor("UNet", {"channels": [4, 8], "strides": [2], "out_channels": 5}, 2, 1, 2)


def test_segmentor_2d_and_3d():
    kwargs = {"channels": [4, 8], "strides": [2]}
    assert build_segmentor("UNet", kwargs, 2, 1, 3)(torch.randn(1, 1, 16, 16)).shape == (1, 3, 16, 16)
    assert build_segmentor("UNet", kwargs, 3, 2, 2)(torch.randn(1, 2, 8, 8, 8)).shape == (1, 2, 8, 8, 8)


@pytest.mark.parametrize(
    "norm,layer", [("INSTANCE", torch.nn.InstanceNorm2d), ("batch", torch.nn.BatchNorm2d), ("NONE", None), (None, None)]
)
def test_discriminator_normalisation_choice(norm, layer):
    d = MaskDiscriminator(2, 1, 2, channels=4, norm=norm)
    norms = [m for m in d.modules() if isinstance(m, torch.nn.modules.batchnorm._NormBase)]
    assert len(norms) == (3 if layer else 0) and all(type(m) is layer for m in norms)
    assert d(torch.randn(2, 1, 64, 64), torch.rand(2, 2, 64, 64)).shape[:2] == (2, 1)


def test_a_bad_normalisation_is_one_sentence_naming_the_key():
    from .conftest import make_step  # builds the run's step, as seg-train does up front

    for bad in ("INSTNACE", 3):
        with pytest.raises(NetworkConfigError) as info:
            make_step("hybrid", model={"discriminator": {"channels": 4, "norm": bad}})
        message = str(info.value)
        assert message.startswith("model.discriminator.norm:") and "\n" not in message and "NONE" in message


def test_spectral_norm_on_every_convolution():
    d = MaskDiscriminator(2, 1, 2, channels=4, spectral_norm=True)
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5 and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in convs)
    x, mask = torch.randn(2, 1, 64, 64), torch.rand(2, 2, 64, 64)
    for _ in range(20):  # power iteration converges in training mode
        d(x, mask)
    for m in convs:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        assert float(sigma) == pytest.approx(1.0, abs=0.05)
    plain = MaskDiscriminator(2, 1, 2, channels=4)
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in plain.modules())
    with pytest.raises(NetworkConfigError, match="spectral_norm"):
        MaskDiscriminator(2, 1, 2, spectral_norm="yes")


def test_full_resolution_discriminator_at_lower_width():
    """``input_scale: 1, channels: 8``: D sees every pixel and its first layer has 8 filters; its inner
    layers cost as many multiply-adds as the default's (0.5, 16): 4x the pixels at half the width."""
    from .conftest import make_step

    step = make_step("hybrid", model={"discriminator": {"input_scale": 1, "channels": 8}})
    d = step.task.discriminator
    assert d.input_scale == 1.0 and d.net.initial_conv.conv.out_channels == 8
    features = d.features(torch.randn(1, 1, 64, 64), torch.rand(1, 3, 64, 64))
    assert features[0].shape[-2:] == (32, 32)  # first stride-2 conv on the full 64 x 64 pair
    default = MaskDiscriminator(2, 1, 3, channels=16)
    assert default.features(torch.randn(1, 1, 64, 64), torch.rand(1, 3, 64, 64))[0].shape[-2:] == (16, 16)
    assert sum(p.numel() for p in d.parameters()) < sum(p.numel() for p in default.parameters()) / 3
