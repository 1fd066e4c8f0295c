"""SRGAN: the generator's long skip and x4 shape, the pixel and content terms by hand, the
segmentor encoder it takes its features from, the bicubic reference, and gan-train end to end on a
tiny PH2-like folder with a content network from a tiny seg-train run, resuming exactly."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
import yaml
from monai.networks.nets import UNet

from adversarial_seg.cli.gan_train import main
from adversarial_seg.cli.seg_train import main as seg_train
from adversarial_seg.config import ConfigError
from adversarial_seg.errors import InputError
from adversarial_seg.gan.config import gan_config_from_mapping
from adversarial_seg.gan.paired_data import low_resolution
from adversarial_seg.gan.variants.srgan import SRGANTask, SRResNet, bicubic, z_scored
from adversarial_seg.seg.unet_parts import unet_bottleneck, unet_encoder

from ...data.conftest import ph2_like, two_sites  # noqa: F401  (the fixtures)
from .conftest import same_checkpoint_modules


def test_generator_upsamples_four_times_and_starts_from_bicubic():
    torch.manual_seed(0)
    g = SRResNet(channels=3, width=8, blocks=2, scale=4)
    low = torch.rand(2, 3, 6, 8) * 2 - 1
    assert g(low).shape == (2, 3, 24, 32)
    torch.nn.init.zeros_(g.tail.weight)
    torch.nn.init.zeros_(g.tail.bias)
    assert torch.allclose(g(low), F.interpolate(low, scale_factor=4, mode="bicubic", align_corners=False))


def test_low_resolution_source_averages_a_constant_to_itself():
    images = torch.full((1, 3, 16, 16), 0.25)
    assert torch.allclose(low_resolution(images, 4), torch.full((1, 3, 4, 4), 0.25))


def test_z_score_by_hand():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2)  # mean 2.5, population std sqrt(1.25)
    expected = (torch.tensor([1.0, 2.0, 3.0, 4.0]) - 2.5) / math.sqrt(1.25)
    assert torch.allclose(z_scored(x).flatten(), expected)


def test_supervised_term_is_pixel_mse_plus_weighted_content_mse():
    target = torch.zeros(1, 3, 2, 2)
    target[0, :, 0, 0] = 1.0  # z-scored: one pixel sqrt(3), the others -1/sqrt(3)
    generated = torch.zeros(1, 3, 2, 2)
    generated[0, :, 1, 1] = 1.0
    plain = SRGANTask(torch.nn.Identity(), torch.nn.Identity())
    assert float(plain.supervised_loss({"real": target}, generated)) == pytest.approx(0.5)  # (1 + 1) / 4
    content = SRGANTask(torch.nn.Identity(), torch.nn.Identity(), content=torch.nn.Identity(), content_weight=0.1)
    # identity features: z-scored images differ by sqrt(3) + 1/sqrt(3) at two of four pixels
    content_mse = 2 * (math.sqrt(3) + 1 / math.sqrt(3)) ** 2 / 4
    loss = float(content.supervised_loss({"real": target}, generated))
    assert loss == pytest.approx(0.5 + 0.1 * content_mse, rel=1e-5)
    # an image and its brighter, higher-contrast copy have the same z-scores: no content loss
    assert float(content.content_loss(2 * target + 1, target)) == pytest.approx(0.0, abs=1e-10)


def test_unet_encoder_takes_the_first_down_blocks():
    torch.manual_seed(0)
    unet = UNet(spatial_dims=2, in_channels=3, out_channels=2, channels=(4, 8, 16), strides=(2, 2))
    encoder = unet_encoder(unet, 2)
    x = torch.randn(1, 3, 16, 16)
    expected = unet.model[1].submodule[0](unet.model[0](x))
    assert torch.equal(encoder(x), expected) and expected.shape == (1, 8, 4, 4)
    with pytest.raises(InputError, match="content_depth 5"):
        unet_encoder(unet, 5)
    assert unet_bottleneck(unet) is unet.model[1].submodule[1].submodule  # the innermost block


def test_content_loss_belongs_to_srgan_with_a_run():
    with pytest.raises(ConfigError, match="loss.content_run"):
        gan_config_from_mapping({"variant": "srgan", "loss": {"content_weight": 0.1}})
    with pytest.raises(ConfigError, match="srresnet is srgan's generator"):
        gan_config_from_mapping({"variant": "srgan", "model": {"architecture": "dcgan"}})


def content_run(root, base):
    """A tiny seg-train run on the PH2-like folder (2 folds, 1 epoch): the content network."""
    config = {
        "data": {"root": str(root), "layout": "folder", "labels": {"background": 0, "lesion": 255},
                 "size": [32, 32]},
        "model": {"segmentor": {"name": "UNet", "channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 0}},
        "scheme": "ce", "train": {"epochs": 1, "batch_size": 2}, "cv": {"folds": 2},
    }  # fmt: skip
    path = base / "seg.yaml"
    path.write_text(yaml.safe_dump(config))
    assert seg_train(["--config", str(path), "--output", str(base / "seg"), "--no-progress"]) == 0
    return base / "seg"


def tiny_args(root, run, *extra, epochs=1):
    return ["--config", "configs/gan/srgan.yaml", "--output", str(run), "--no-progress", "--threads", "1",
            "--set", f"data.ph2.root={root}", "--set", "data.ph2.size=[32, 32]", "--set", "model.channels=4",
            "--set", "model.residual_blocks=1", "--set", "train.batch_size=2", "--set", f"train.epochs={epochs}",
            "--set", "eval.grid=2", *extra]  # fmt: skip


def test_gan_train_runs_srgan_with_a_content_network_and_resumes_exactly(ph2_like, tmp_path, monkeypatch):  # noqa: F811
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[3])
    seg = content_run(ph2_like, tmp_path)
    content = ["--set", f"loss.content_run={seg}"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(tiny_args(ph2_like, straight, *content, epochs=2)) == 0
    assert main(tiny_args(ph2_like, resumed, *content, epochs=1)) == 0
    assert main(tiny_args(ph2_like, resumed, *content, "--resume", epochs=2)) == 0
    body = json.loads((straight / "metrics.json").read_text())
    assert set(body["metrics"]) == {"l1", "psnr", "ssim"} and set(body["reference"]) == {"l1", "psnr", "ssim"}
    assert "bicubic" in body["reference_note"]
    a = same_checkpoint_modules(straight, resumed)
    assert set(a) == {"generator", "discriminator"}  # the content network is read from its run, not stored
    assert json.loads((resumed / "metrics.json").read_text())["metrics"] == body["metrics"]


def test_bicubic_reference_is_the_test_split_upsampled(ph2_like, tmp_path, monkeypatch):  # noqa: F811
    from pathlib import Path

    from adversarial_seg.gan.experiment import load_data
    from adversarial_seg.gan.translation import TranslationEvaluator, translation_metrics

    monkeypatch.chdir(Path(__file__).resolve().parents[3])
    config = gan_config_from_mapping({"variant": "srgan", "data": {"ph2": {"root": str(ph2_like), "size": [32, 32]}}})
    data = load_data(config)
    targets, sources = data["splits"]["test"]
    assert sources.shape[-2:] == (8, 8) and targets.shape[-2:] == (32, 32)
    expected = translation_metrics(bicubic(sources, 4).clamp(-1, 1), targets)
    assert TranslationEvaluator(config, data).reference() == expected


def test_a_missing_content_run_exits_2_and_writes_nothing(ph2_like, tmp_path, monkeypatch, capsys):  # noqa: F811
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[3])
    run = tmp_path / "run"
    assert main(tiny_args(ph2_like, run, "--set", f"loss.content_run={tmp_path / 'absent'}")) == 2
    assert "loss.content_run" in capsys.readouterr().err and not run.exists()


def test_generator_init_starts_g_from_another_run_and_a_misfit_writes_nothing(
    ph2_like,  # noqa: F811
    tmp_path,
    monkeypatch,
    capsys,
):
    from pathlib import Path

    from adversarial_seg.checkpoint import load_checkpoint
    from adversarial_seg.gan.experiment import generator_init_state, start_generator_from
    from adversarial_seg.gan.variants import build_gan_step
    from adversarial_seg.runtime import Precision

    monkeypatch.chdir(Path(__file__).resolve().parents[3])
    mse = ["--config", "configs/gan/srgan_mse.yaml"]
    first = tmp_path / "mse"
    assert main([*tiny_args(ph2_like, first)[2:], *mse]) == 0
    trained = load_checkpoint(first / "checkpoint_last.pt")["modules"]["generator"]
    config = gan_config_from_mapping(
        {
            "variant": "srgan",
            "data": {"ph2": {"root": str(ph2_like), "size": [32, 32]}},
            "model": {"channels": 4, "residual_blocks": 1, "generator_init": str(first)},
        }
    )
    from adversarial_seg.gan.experiment import load_data

    cpu = torch.device("cpu")
    step = build_gan_step(config, load_data(config)["shape"], 0, cpu, Precision.for_device(cpu, False))
    start_generator_from(step.task, generator_init_state(first), first)
    started = step.task.generator.state_dict()
    assert all(torch.equal(started[k], trained[k]) for k in trained)
    # a generator of another width does not fit: exit 2, the sentence names the key, nothing is written
    wider = tmp_path / "wider"
    args = [
        *tiny_args(ph2_like, wider)[2:],
        *mse,
        "--set",
        "model.channels=8",
        "--set",
        f"model.generator_init={first}",
    ]
    assert main(args) == 2
    assert "model.generator_init" in capsys.readouterr().err and not wider.exists()
    assert main([*args[:-1], f"model.generator_init={tmp_path / 'absent'}"]) == 2
    assert "holds no checkpoint_last.pt" in capsys.readouterr().err and not wider.exists()


def test_srgan_on_two_sites_pairs_each_slice_with_its_downsampled_copy_and_resumes_exactly(
    two_sites,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    from pathlib import Path

    from adversarial_seg.gan.experiment import load_data

    monkeypatch.chdir(Path(__file__).resolve().parents[3])
    root, _ = two_sites
    sites = {"root": str(root), "column": "site", "a": ["A"], "b": ["B"], "spacing": 1.2, "size": [32, 32]}
    config = gan_config_from_mapping({"variant": "srgan", "data": {"dataset": "sites", "sites": sites}})
    data = load_data(config)
    slices, sources = data["splits"]["test"]
    assert slices.shape[1:] == (1, 32, 32) and sources.shape[1:] == (1, 8, 8) and config.data.sr_scale == 4
    assert torch.equal(sources, low_resolution(slices, 4))
    assert len(data["cases"]["test"]) == len(slices)  # each slice's case: 6 slices per phantom volume
    assert len(set(data["cases"]["test"])) * 6 == len(slices)
    assert not set(data["cases"]["test"]) & set(data["cases"]["train"])
    args = ["--config", "configs/gan/srgan_prostate_mse.yaml", "--no-progress", "--threads", "1",
            *(a for k, v in sites.items() for a in ("--set", f"data.sites.{k}={v}")),
            "--set", "model.channels=4", "--set", "model.residual_blocks=1", "--set", "train.batch_size=2",
            "--set", "loss.w_adv=0.001", "--set", "eval.every=1", "--set", "eval.grid=2"]  # fmt: skip
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main([*args, "--output", str(straight), "--set", "train.epochs=2"]) == 0
    assert main([*args, "--output", str(resumed), "--set", "train.epochs=1"]) == 0
    assert main([*args, "--output", str(resumed), "--set", "train.epochs=2", "--resume"]) == 0
    body = json.loads((straight / "metrics.json").read_text())
    assert set(body["metrics"]) == {"l1", "psnr", "ssim"} and "bicubic" in body["reference_note"]
    assert (straight / "samples" / "epoch_002.png").is_file()
    assert set(same_checkpoint_modules(straight, resumed)) == {"generator", "discriminator"}
    with pytest.raises(ConfigError, match="for it and srgan only"):
        gan_config_from_mapping({"variant": "pix2pix", "data": {"dataset": "sites"}})
