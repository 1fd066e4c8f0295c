"""The discriminator probe: D's held-out AUC at telling expert from predicted masks."""

import math

import pytest
import torch

from adversarial_seg.runtime import Precision
from adversarial_seg.seg.evaluate import last_epoch_probe
from adversarial_seg.seg.networks import MaskDiscriminator
from adversarial_seg.seg.probe import discriminator_probe, pair_auc, pair_scores


class ForegroundShare(MaskDiscriminator):
    """A D whose score we control: its patch logits are the class-1 mask itself, so the mean patch
    logit of a pair is the share of foreground in the mask as encoded."""

    def forward(self, image, mask):
        return mask[:, 1:2]


def logits_for(p_foreground: float) -> list[float]:
    """Two-class logits (0, l) with softmax foreground probability ``p_foreground``."""
    return [0.0, math.log(p_foreground / (1 - p_foreground))]


def sample(label: list[int], p_foreground: float) -> dict:
    # the "segmentor" is the identity: the image holds the logits, (2 channels, 1 x 2 pixels)
    image = torch.tensor([logits_for(p_foreground)] * 2).T.reshape(2, 1, 2)
    return {"image": image, "label": torch.tensor(label).reshape(1, 1, 2)}


CPU = torch.device("cpu")
PRECISION = Precision("cpu", None)


def test_auc_by_hand_for_a_discriminator_whose_scores_we_control():
    # expert scores (foreground share of the label): 1.0, 0.5, 0.0
    # predicted scores (mean softmax foreground):     0.7, 0.9, 0.1
    # pairs (expert > predicted): 1.0 beats all 3; 0.5 beats 0.1 only; 0.0 beats none -> 4 of 9
    dataset = [sample([1, 1], 0.7), sample([0, 1], 0.9), sample([0, 0], 0.1)]
    d = ForegroundShare(2, image_channels=2, num_classes=2, mask_encoding="onehot", input_scale=1.0, channels=4)
    segmentor = torch.nn.Identity()
    d.train()
    expert, predicted = pair_scores(segmentor, d, [torch.utils.data.default_collate(dataset)], CPU, PRECISION)
    assert expert.tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert predicted.tolist() == pytest.approx([0.7, 0.9, 0.1])
    probe = discriminator_probe(segmentor, d, dataset, CPU, PRECISION, batch_size=2)
    assert probe == {"d_auc": pytest.approx(4 / 9), "d_auc_pairs": 3.0}
    assert d.training  # put back into the mode it was in


def test_the_probe_uses_the_training_encoding():
    """With ``scaled`` the expert mask is softened towards the prediction before D sees it
    (max(0.9, s_true)), exactly as in training: the expert of sample 1 scores 0.9, not 1."""
    d = ForegroundShare(2, image_channels=2, num_classes=2, mask_encoding="scaled", input_scale=1.0, channels=4)
    batch = torch.utils.data.default_collate([sample([1, 1], 0.7)])
    expert, _ = pair_scores(torch.nn.Identity(), d, [batch], CPU, PRECISION)
    assert expert.tolist() == pytest.approx([0.9])


def test_auc_extremes_and_no_pairs():
    assert pair_auc([3.0, 2.0], [1.0, 0.0]) == 1.0
    assert pair_auc([0.0], [1.0]) == 0.0
    assert pair_auc([1.0, 1.0], [1.0, 1.0]) == 0.5  # ties: chance
    assert math.isnan(pair_auc([], []))


def test_the_probe_runs_in_eval_mode_without_gradients():
    seen = {}
    d = MaskDiscriminator(2, 1, 2, channels=4, norm="BATCH", input_scale=1.0)
    segmentor = torch.nn.Conv2d(1, 2, 1)
    d.net.register_forward_hook(lambda m, i, o: seen.update(training=m.training, grad=torch.is_grad_enabled()))
    batches = [{"image": torch.randn(3, 1, 32, 32), "label": torch.randint(0, 2, (3, 1, 32, 32))}]
    expert, predicted = pair_scores(segmentor, d, batches, CPU, PRECISION)
    assert seen == {"training": False, "grad": False} and expert.shape == predicted.shape == (3,)
    assert d.training and segmentor.training


def test_last_epoch_probe_reads_each_fold_log(tmp_path):
    for fold, last in ((0, 0.6), (1, 0.8)):
        (tmp_path / f"fold_{fold}").mkdir()
        (tmp_path / f"fold_{fold}" / "log.csv").write_text(f"epoch,d_auc\n1,0.5\n2,{last}\n")
    probe = last_epoch_probe(tmp_path, [0, 1])
    assert probe == {"folds": {"0": 0.6, "1": 0.8}, "mean": pytest.approx(0.7), "min": 0.6, "max": 0.8, "epoch": 2}
    (tmp_path / "fold_1" / "log.csv").write_text("epoch,loss_sup\n1,0.5\n")  # a ce run: no probe
    (tmp_path / "fold_0" / "log.csv").write_text("epoch,loss_sup\n1,0.5\n")
    assert last_epoch_probe(tmp_path, [0, 1]) is None
