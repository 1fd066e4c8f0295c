"""Inferers, mirror TTA and fold averaging."""

import torch
from torch import nn

from adversarial_seg.runtime import Precision
from adversarial_seg.seg.inference import make_inferer, mirror_axes, predict_probabilities

CPU = Precision("cpu", None)


class LeftRight(nn.Module):
    """Logits that favour class 1 on the left half of the last axis: not mirror-symmetric."""

    def forward(self, x):
        ramp = torch.linspace(1.0, -1.0, x.shape[-1]).expand_as(x[:, :1])
        return torch.cat([-ramp, ramp], dim=1) * 4


class Constant(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x):
        logits = torch.zeros(x.shape[0], 2, *x.shape[2:])
        logits[:, 1] = self.value
        return logits


def test_mirror_axes_cover_every_subset():
    assert mirror_axes(2) == [(), (2,), (3,), (2, 3)]
    assert len(mirror_axes(3)) == 8


def test_tta_undoes_its_flips():
    """A model that is not flip-invariant: TTA must flip back, so its probabilities equal
    the mean of the model's probabilities on the flipped inputs, flipped back; for this
    model f(flip x) = f(x) flipped is false, so a missing flip-back would change the result."""
    image = torch.randn(1, 1, 8, 10)
    inferer = make_inferer(2, 2, (8, 10), None)
    plain = predict_probabilities([LeftRight()], image, inferer, CPU)
    tta = predict_probabilities([LeftRight()], image, inferer, CPU, tta=True)
    mirrored = torch.softmax(LeftRight()(image.flip(3)), 1).flip(3)
    expected = (2 * plain + 2 * mirrored) / 4  # flips over axis 2 change nothing for this model
    assert torch.allclose(tta, expected, atol=1e-6)


def test_fold_models_are_averaged():
    image = torch.zeros(1, 1, 16, 16)
    inferer = make_inferer(2, 2, (16, 16), None)
    probs = predict_probabilities([Constant(2.0), Constant(-2.0)], image, inferer, CPU)
    assert torch.allclose(probs, torch.full_like(probs, 0.5))


def test_2d_model_runs_slice_by_slice_on_a_volume():
    seen = []

    class Spy(Constant):
        def forward(self, x):
            seen.append(tuple(x.shape))
            return super().forward(x)

    inferer = make_inferer(2, 3, (16, 12), slice_axis=2)
    probs = predict_probabilities([Spy(0.0)], torch.zeros(1, 1, 16, 12, 5), inferer, CPU)
    assert probs.shape == (1, 2, 16, 12, 5)
    assert all(len(s) == 4 and s[2:] == (16, 12) for s in seen)
