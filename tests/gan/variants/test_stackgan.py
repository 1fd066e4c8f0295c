"""StackGAN: sentences and attribute labels from PH2's attributes, the conditioning augmentation and its
KL term, the matching-aware negatives, the agreement measure, the config rules, and gan-train end to end
(encoders, stage I, stage II resumed exactly) on a tiny PH2-like folder."""

import csv
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adversarial_seg.cli.gan_train import main
from adversarial_seg.config import ConfigError
from adversarial_seg.gan.config import gan_config_from_mapping
from adversarial_seg.gan.ph2_encoders import EncoderError, agreement, load_encoders, save_encoders, train_encoders
from adversarial_seg.gan.ph2_text import LABELS, PAD, attribute_labels, ph2_text_splits, tokens, vocabulary
from adversarial_seg.gan.variants.stackgan import ConditioningAugmentation, StackGANTask, StageTwoGenerator, mismatched

from ...data.conftest import ph2_like  # noqa: F401  (the fixture)
from .conftest import same_checkpoint_modules

ROW = {"diagnosis": "melanoma", "asymmetry": "fully asymmetric", "pigment_network": "atypical",
       "dots_globules": "typical", "streaks": "present", "regression_areas": "absent", "blue_whitish_veil": "present",
       "colours": "dark_brown blue_gray black"}  # fmt: skip


def test_tokens_spell_the_sentence_and_pad_with_zero():
    ids = tokens("melanoma, no streaks", 6)
    vocab = vocabulary()
    assert ids.tolist() == [vocab["melanoma"], vocab[","], vocab["no"], vocab["streaks"], PAD, PAD]
    assert sorted(vocab.values()) == list(range(1, len(vocab) + 1))  # ids 1..V, 0 is padding


def test_attribute_labels_are_class_indices_then_colours_present():
    labels = attribute_labels(ROW).tolist()
    assert labels[:7] == [
        2,
        2,
        1,
        1,
        1,
        0,
        1,
    ]  # melanoma, fully asymmetric, atypical, typical, present, absent, present
    assert labels[7:] == [0, 0, 0, 1, 1, 1]  # white, red, light brown absent; dark brown, blue-gray, black present
    assert len(labels) == len(LABELS)


def test_conditioning_augmentation_samples_around_the_mean_and_its_kl_is_zero_at_the_prior():
    ca = ConditioningAugmentation(3)
    nn.init.zeros_(ca.fc.weight)
    nn.init.zeros_(ca.fc.bias)  # mean 0, log-variance 0: c is the noise itself, KL 0
    c, kl = ca(torch.ones(2, 64), torch.Generator().manual_seed(0))
    assert torch.allclose(c, torch.randn(2, 3, generator=torch.Generator().manual_seed(0)))
    assert torch.allclose(kl, torch.zeros(2))
    with torch.no_grad():
        ca.fc.bias[:3] = 2.0  # mean 2 (after the leaky ReLU), variance 1: KL = 1/2 x 3 x 4 = 6
    assert torch.allclose(ca(torch.ones(1, 64))[1], torch.tensor([6.0]))


class ConstantD(nn.Module):
    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.tensor(0.5))

    def forward(self, images, text):
        return self.bias.expand(len(images))


def test_real_images_with_another_sentence_are_negatives_unless_the_sentences_match():
    batch_tokens = torch.tensor([[1, 2], [1, 2], [3, 4]])
    wrong, differs = mismatched(batch_tokens)
    assert wrong.tolist() == [[3, 4], [1, 2], [1, 2]] and differs.tolist() == [True, False, True]
    task = StackGANTask(nn.Linear(1, 1), ConstantD(), lambda t: torch.zeros(len(t), 64), 4, 1.0, 2.0)
    terms = task.extra_discriminator_losses({"label": batch_tokens}, torch.zeros(3, 3, 4, 4), None)
    # -log(1 - sigmoid(0.5)) = softplus(0.5), the mean over the two differing pairs, weight 2
    assert terms["loss_mismatch"].item() == pytest.approx(2.0 * torch.nn.functional.softplus(torch.tensor(0.5)).item())


def test_agreement_is_the_mean_balanced_accuracy_over_labels():
    target = torch.stack([attribute_labels(ROW), attribute_labels({**ROW, "diagnosis": "common_nevus"})])
    assert agreement(target, target) == 1.0
    wrong_diagnosis = target.clone()
    wrong_diagnosis[:, 0] = 1  # atypical nevus for both: diagnosis recall 0 for each class present
    assert agreement(wrong_diagnosis, target) == pytest.approx(1 - 1 / len(LABELS))


def test_stackgan_config_rules():
    with pytest.raises(ConfigError, match="give model.stage1_run"):
        gan_config_from_mapping({"variant": "stackgan", "model": {"stage": 2}})
    with pytest.raises(ConfigError, match="logistic"):
        gan_config_from_mapping({"variant": "stackgan", "loss": {"adversarial": "hinge"}})
    with pytest.raises(ConfigError, match="are stackgan's"):
        gan_config_from_mapping({"variant": "dcgan", "loss": {"kl_weight": 1.0}})
    with pytest.raises(ConfigError, match="model.refine is stackgan stage 2's"):
        gan_config_from_mapping({"variant": "stackgan", "model": {"refine": "residual"}})
    config = gan_config_from_mapping({"variant": "stackgan"})
    assert (config.data.ph2.size, config.loss.kl_weight, config.model.stage) == ((64, 64), 1.0, 1)


def test_residual_stage_two_starts_as_the_upsampled_stage_one_image():
    torch.manual_seed(0)
    low = torch.rand(2, 3, 8, 8) * 1.6 - 0.8
    c = torch.randn(2, 4)
    generator = StageTwoGenerator(4, 4, residual=True).eval()
    bilinear = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(generator(low, c), bilinear, atol=1e-5)
    # a 2 x 2 constant image stays that constant at 4 x 4, whatever the condition
    flat = torch.full((1, 3, 2, 2), 0.5)
    assert torch.allclose(generator(flat, c[:1]), torch.full((1, 3, 4, 4), 0.5), atol=1e-5)
    assert not torch.allclose(StageTwoGenerator(4, 4).eval()(low, c), bilinear, atol=1e-2)


def with_attributes(root):
    diagnoses = {row["case"]: row["diagnosis"] for row in csv.DictReader(open(root / "cases.csv"))}
    rows = [{"case": case, **ROW, "diagnosis": diagnosis, "streaks": "absent" if i % 2 else "present"}
            for i, (case, diagnosis) in enumerate(diagnoses.items())]  # fmt: skip
    with open(root / "attributes.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def stage_args(root, encoders, run, stage, *extra, epochs=2):
    stage_one = ["--set", f"model.stage1_run={run.parent / 'stage1'}"] if stage == 2 else []
    config = "configs/gan/stackgan.yaml" if stage == 2 else "configs/gan/stackgan_stage1.yaml"
    return ["--config", config, "--output", str(run), "--no-progress", "--threads", "1",
            "--set", f"data.ph2.root={root}", "--set", "data.ph2.size=[32, 32]", "--set", f"model.encoders={encoders}",
            "--set", "model.channels=4", "--set", "model.z_dim=8", "--set", "model.condition_dim=4",
            "--set", "train.batch_size=2", "--set", f"train.epochs={epochs}", "--set", "eval.every=1",
            "--set", "eval.samples=10", "--set", "eval.grid=2", *stage_one, *extra]  # fmt: skip


def test_encoders_then_stage_one_then_stage_two_resumed_exactly(ph2_like, tmp_path, monkeypatch):  # noqa: F811
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[3])
    root = with_attributes(ph2_like)
    splits = ph2_text_splits(root, (32, 32))
    encoders = tmp_path / "encoders"
    save_encoders(train_encoders(splits["train"], epochs=1), encoders, {"command": "test"})
    assert set(load_encoders(encoders)) == {"text", "image", "attributes"}
    assert main(stage_args(root, encoders, tmp_path / "stage1", 1)) == 0
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(stage_args(root, encoders, straight, 2)) == 0
    assert main(stage_args(root, encoders, resumed, 2, epochs=1)) == 0
    assert main(stage_args(root, encoders, resumed, 2, "--resume")) == 0
    body = json.loads((straight / "metrics.json").read_text())
    assert set(body["metrics"]) == {"agreement", "frechet_distance", "spread_ratio"}
    assert set(body["reference"]) == {"agreement", "frechet_distance", "spread_ratio"}
    with open(straight / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {"loss_d", "loss_mismatch", "loss_adv", "loss_kl", "val_agreement"} <= set(rows[0])
    with open(resumed / "log.csv") as handle:
        assert [r["val_agreement"] for r in csv.DictReader(handle)] == [r["val_agreement"] for r in rows]
    modules = same_checkpoint_modules(straight, resumed)
    assert set(modules) == {"generator", "discriminator"}  # the text encoder and stage I are read, not stored
    assert (straight / "samples" / "epoch_002.png").is_file()


def test_missing_or_altered_encoders_stop_the_run_before_anything_is_written(ph2_like, tmp_path, monkeypatch, capsys):  # noqa: F811
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[3])
    root = with_attributes(ph2_like)
    run = tmp_path / "run"
    assert main(stage_args(root, tmp_path / "absent", run, 1)) == 2
    assert "model.encoders" in capsys.readouterr().err and not run.exists()
    encoders = tmp_path / "encoders"
    save_encoders(train_encoders(ph2_text_splits(root, (32, 32))["train"], epochs=1), encoders, {})
    data = bytearray((encoders / "encoders.pt").read_bytes())
    data[len(data) // 2] ^= 1  # one bit of the weights changed
    (encoders / "encoders.pt").write_bytes(bytes(data))
    with pytest.raises(EncoderError, match="does not match the sha256"):
        load_encoders.__wrapped__(encoders)
