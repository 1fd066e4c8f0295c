"""pix2pix: its L1 term and D's (source, image) pairs by hand, the L1-only baseline leaving D alone,
the translation metrics, and gan-train end to end on a tiny PH2-like folder with an exact resume."""

import csv
import json

import pytest
import torch

from adversarial_seg.cli.gan_train import main
from adversarial_seg.config import ConfigError
from adversarial_seg.gan.config import gan_config_from_mapping
from adversarial_seg.gan.paired_data import split_cases
from adversarial_seg.gan.translation import translation_metrics
from adversarial_seg.gan.variants import build_gan_step
from adversarial_seg.gan.variants.pix2pix import Pix2PixTask
from adversarial_seg.runtime import Precision

from ...data.conftest import ph2_like  # noqa: F401  (the fixture)
from .conftest import same_checkpoint_modules


def tiny_step(**loss):
    config = gan_config_from_mapping({"variant": "pix2pix", "model": {"channels": 4}, "loss": loss})
    torch.manual_seed(0)
    return build_gan_step(config, (3, 32, 32), 0, torch.device("cpu"), Precision("cpu", None))


def batch(n=2):
    g = torch.Generator().manual_seed(1)
    mask = (torch.rand(n, 1, 32, 32, generator=g) > 0.5).float() * 2 - 1
    return {"real": torch.rand(n, 3, 32, 32, generator=g) * 2 - 1, "label": mask}


def test_the_supervised_term_is_the_mean_absolute_difference():
    task = Pix2PixTask(torch.nn.Identity(), torch.nn.Identity())
    target = torch.zeros(1, 3, 2, 2)
    generated = torch.tensor([0.5, -0.5, 1.0, 0.0]).reshape(1, 1, 2, 2).repeat(1, 3, 1, 1)
    assert float(task.supervised_loss({"real": target}, generated)) == pytest.approx(0.5)  # (0.5+0.5+1+0)/4


def test_the_discriminator_sees_the_source_stacked_before_the_image():
    seen = []

    class Record(torch.nn.Module):
        def forward(self, x):
            seen.append(x)
            return [x.mean((1, 2, 3))]

    task = Pix2PixTask(torch.nn.Identity(), Record())
    b = batch()
    fake = torch.full((2, 3, 32, 32), 0.25)
    task.discriminate(b, fake)
    assert seen[0].shape == (2, 4, 32, 32)
    assert torch.equal(seen[0][:, :1], b["label"]) and torch.equal(seen[0][:, 1:], fake)


def test_the_l1_baseline_never_updates_the_discriminator():
    for w_adv, d_changes in ((0.0, False), (1.0, True)):
        step = tiny_step(w_adv=w_adv)
        d_before = [p.detach().clone() for p in step.task.discriminator.parameters()]
        g_before = [p.detach().clone() for p in step.task.generator.parameters()]
        terms = step([batch()])
        d_changed = any(not torch.equal(a, p) for a, p in zip(d_before, step.task.discriminator.parameters()))
        assert d_changed == d_changes
        assert any(not torch.equal(a, p) for a, p in zip(g_before, step.task.generator.parameters()))
        assert ("loss_d" in terms) == d_changes and float(terms["loss_sup"]) > 0


def test_pix2pix_and_paired_data_go_together():
    with pytest.raises(ConfigError, match="pix2pix and srgan need paired data"):
        gan_config_from_mapping({"variant": "pix2pix", "data": {"dataset": "digits"}})
    with pytest.raises(ConfigError, match="loss.w_sup"):
        gan_config_from_mapping({"variant": "dcgan", "loss": {"w_sup": 1.0}})
    with pytest.raises(ConfigError, match="multiples of 16"):
        gan_config_from_mapping({"variant": "pix2pix", "data": {"ph2": {"size": [40, 64]}}})


def test_translation_metrics_of_a_perfect_and_a_constant_image():
    target = torch.rand(2, 3, 24, 24) * 2 - 1
    perfect = translation_metrics(target, target)
    assert perfect["l1"] == 0 and perfect["ssim"] == pytest.approx(1.0, abs=1e-4)
    grey = translation_metrics(torch.zeros(1, 3, 16, 16), torch.ones(1, 3, 16, 16))  # 0.5 vs 1.0 in [0, 1]
    assert grey["l1"] == pytest.approx(0.5) and grey["psnr"] == pytest.approx(10 * torch.log10(torch.tensor(4.0)))


def test_cases_are_split_without_overlap_and_stratified_when_possible():
    ids = [f"c{i}" for i in range(20)]
    strata = ["a", "b"] * 10
    splits = split_cases(ids, strata, seed=0)
    assert sorted(sum(splits.values(), [])) == sorted(ids)
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (14, 3, 3)
    assert split_cases(ids, strata, seed=0) == splits


def tiny_args(root, run, *extra, epochs=1):
    return ["--config", "configs/gan/pix2pix.yaml", "--output", str(run), "--no-progress", "--threads", "1",
            "--set", f"data.ph2.root={root}", "--set", "data.ph2.size=[32, 32]", "--set", "model.channels=4",
            "--set", "train.batch_size=2", "--set", f"train.epochs={epochs}", "--set", "eval.every=1",
            "--set", "eval.grid=2", *extra]  # fmt: skip


def test_gan_train_runs_pix2pix_and_resumes_exactly(ph2_like, tmp_path, monkeypatch):  # noqa: F811
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[3])
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(tiny_args(ph2_like, straight, epochs=2)) == 0
    assert main(tiny_args(ph2_like, resumed, epochs=1)) == 0
    assert main(tiny_args(ph2_like, resumed, "--resume", epochs=2)) == 0
    for name in ("metrics.json", "metrics.png", "samples/epoch_001.png", "samples/epoch_002.png"):
        assert (straight / name).is_file(), name
    body = json.loads((straight / "metrics.json").read_text())
    assert set(body["metrics"]) == {"l1", "psnr", "ssim"} and body["reference"] == {}
    with open(straight / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {"loss_d", "loss_sup", "loss_adv", "val_l1", "val_psnr", "val_ssim"} <= set(rows[0])
    with open(resumed / "log.csv") as handle:
        again = list(csv.DictReader(handle))
    assert [r["val_l1"] for r in again] == [r["val_l1"] for r in rows]
    same_checkpoint_modules(straight, resumed)


def test_a_ph2_folder_without_a_mask_exits_2_naming_the_file_and_writes_nothing(
    ph2_like,  # noqa: F811
    tmp_path,
    monkeypatch,
    capsys,
):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[3])
    (ph2_like / "masks" / "IMD003.png").unlink()
    run = tmp_path / "run"
    assert main(tiny_args(ph2_like, run)) == 2
    err = capsys.readouterr().err
    assert "IMD003.png is missing" in err and err.count("\n") == 1
    assert not run.exists()
