"""Inferers, mirror TTA and fold averaging."""

import torch
from monai.data import MetaTensor
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


def test_tta_mirrors_the_axes_training_flipped(monkeypatch):
    """train.flip_axes [0] (left-right only): a 2D model on an axial volume is mirrored along image
    axis 0 only; by default along both in-plane axes, never along the slice axis."""
    import adversarial_seg.seg.inference as inference
    from adversarial_seg.config import config_from_mapping
    from adversarial_seg.data.labels import LabelSet
    from adversarial_seg.data.transforms import DataPlan

    seen = []
    monkeypatch.setattr(
        inference, "predict_probabilities", lambda *a, tta_axes=None, **k: seen.append(tta_axes) or torch.zeros(1)
    )
    monkeypatch.setattr(inference, "probabilities_to_native", lambda probabilities, case: probabilities)
    labels = LabelSet.from_mapping(labels={"background": 0, "gland": 1})
    plan = DataPlan(labels, 3, 2, 2, (32, 32), None, None)

    class Case:
        image = MetaTensor(torch.zeros(1, 32, 32, 5))

    Case.plan = plan
    for flip_axes, expected in ((None, [0, 1]), ([0], [0]), ([1], [1])):
        config = config_from_mapping({"train": {"flip_axes": flip_axes}})
        inference.predict_native([], Case, config, torch.device("cpu"), Precision("cpu", None), tta=True)
        assert seen.pop() == expected
    sagittal = DataPlan(labels, 3, 2, 0, (32, 32), None, None)  # slices along axis 0: in-plane axes 1, 2
    Case.plan = sagittal
    inference.predict_native([], Case, config_from_mapping({}), torch.device("cpu"), Precision("cpu", None), tta=True)
    assert seen.pop() == [1, 2]
