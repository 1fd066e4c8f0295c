"""CycleGAN: the image pool, the cycle and identity terms and D's halves by hand, the two-site data
(split by patient, unpaired items, the common grid), the config rules, and gan-train end to end on
phantoms of two sites with an exact resume (the pool included)."""

import csv
import json

import pytest
import torch
from torch import nn

from adversarial_seg.cli.gan_train import main
from adversarial_seg.config import ConfigError
from adversarial_seg.gan.config import gan_config_from_mapping
from adversarial_seg.gan.site_data import SiteCase, UnpairedImages, fold_split, site_geometry
from adversarial_seg.gan.variants.cyclegan import CycleGANTask, ImagePool, resnet_generator

from ...data.conftest import two_sites  # noqa: F401  (the fixture)
from .conftest import same_checkpoint_modules


class Shift(nn.Module):
    def __init__(self, by: float):
        super().__init__()
        self.by = nn.Parameter(torch.tensor(by))

    def forward(self, x):
        return x + self.by


class Constant(nn.Module):
    """A 'discriminator' whose layers are x + 0 and a logit map of constant ``value``."""

    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def forward(self, x):
        return [x, torch.full((len(x), 1, 2, 2), self.value)]


def shift_task(cycle_weight=5.0, identity_weight=2.5, pool=0):
    pools = nn.ModuleDict({d: ImagePool(pool, (1, 4, 4)) for d in ("a", "b")})
    return CycleGANTask(Shift(0.1), Shift(-0.3), Constant(1.0), Constant(2.0), cycle_weight, identity_weight, pools)


def test_cycle_and_identity_terms_by_hand():
    task = shift_task()
    a, b = torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4) * 0.5
    batch = {"label": a, "real": b}
    generated = task.generate(batch)
    assert torch.allclose(generated[:2], a + 0.1) and torch.allclose(generated[2:], b - 0.3)
    # a -> +0.1 -> -0.3: 0.2 off; b -> -0.3 -> +0.1: 0.2 off. Identity: |G_ab(b) - b| 0.1, |G_ba(a) - a| 0.3.
    loss = task.supervised_loss(batch, generated)
    assert loss.item() == pytest.approx(5.0 * 0.2 + 2.5 * (0.1 + 0.3) / 2)
    logged = task.extra_generator_losses(batch, generated)
    assert logged["cycle_l1"].item() == pytest.approx(0.2) and logged["identity_l1"].item() == pytest.approx(0.2)
    assert task.extra_generator_losses(batch, generated) == {}  # handed over once per step
    no_identity = shift_task(identity_weight=0.0)
    assert no_identity.supervised_loss(batch, generated).item() == pytest.approx(1.0)


def test_the_b_half_goes_to_d_b_and_the_a_half_to_d_a():
    task = shift_task()
    sample = torch.zeros(4, 1, 4, 4)  # [B images; A images]
    logits = task.discriminate({}, sample)
    assert logits[:2].unique().tolist() == [2.0] and logits[2:].unique().tolist() == [1.0]
    assert torch.equal(task.real_sample({"real": sample[:2] + 1, "label": sample[2:]}, sample)[:2], sample[:2] + 1)


def test_the_pool_keeps_images_until_full_then_swaps_half_of_them():
    pool = ImagePool(2, (1,))
    first = pool(torch.tensor([[1.0], [2.0]]))
    assert first.tolist() == [[1.0], [2.0]] and pool.images.tolist() == [[1.0], [2.0]] and int(pool.stored) == 2
    torch.manual_seed(0)
    coins = [float(torch.rand(())) for _ in range(1)]
    torch.manual_seed(0)
    out = pool(torch.tensor([[3.0]]))
    if coins[0] < 0.5:  # a stored image comes back and 3 takes its slot
        assert out.item() in (1.0, 2.0) and 3.0 in pool.images.flatten().tolist()
    else:
        assert out.item() == 3.0 and pool.images.flatten().tolist() == [1.0, 2.0]
    torch.manual_seed(1)
    outs = [pool(torch.tensor([[float(v)]])).item() for v in range(10, 40)]
    assert set(outs) - set(range(10, 40)), "over 30 draws, some stored images come back"
    assert int(pool.stored) == 2 and set(pool.state_dict()) == {"images", "stored"}
    assert torch.equal(ImagePool(0, (1,))(torch.ones(3, 1)), torch.ones(3, 1))


def test_the_resnet_generator_keeps_the_grid_and_the_range():
    g = resnet_generator(1, 4, 2)
    out = g(torch.randn(2, 1, 32, 24) * 5)
    assert out.shape == (2, 1, 32, 24) and out.abs().max() <= 1


def test_cases_split_by_patient_and_unpaired_items_cycle_the_shorter_set():
    cases = [SiteCase(f"c{i}", f"p{i // 2}", None) for i in range(8)]  # 4 patients, 2 cases each
    for fold in (0, 1):
        train, held = fold_split(cases, 2, fold, 0)
        assert len(held) == 4 and not set(train) & set(held)
        assert {c.patient for c in cases if c.case in held}.isdisjoint({c.patient for c in cases if c.case in train})
    assert fold_split(cases, 2, 0, 0)[1] == fold_split(cases, 2, 1, 0)[0]
    data = UnpairedImages(torch.arange(3.0), torch.arange(5.0) + 10)
    assert len(data) == 5
    assert [(d["real"].item(), d["label"].item()) for d in data] == [
        (0, 10),
        (1, 11),
        (2, 12),
        (0, 13),
        (1, 14),
    ]


def test_cyclegan_and_the_sites_go_together():
    with pytest.raises(ConfigError, match="cyclegan needs two sites"):
        gan_config_from_mapping({"variant": "cyclegan", "data": {"dataset": "digits"}})
    with pytest.raises(ConfigError, match="train.pool_size are cyclegan's"):
        gan_config_from_mapping({"variant": "dcgan", "train": {"pool_size": 10}})
    with pytest.raises(ConfigError, match="must be different sites"):
        gan_config_from_mapping({"variant": "cyclegan", "data": {"sites": {"a": ["x"], "b": ["x"]}}})
    config = gan_config_from_mapping({"variant": "cyclegan"})
    assert (config.loss.cycle_weight, config.loss.identity_weight, config.train.pool_size) == (5.0, 2.5, 50)


def test_the_common_grid_resamples_in_plane_and_keeps_image_and_label_aligned(two_sites):  # noqa: F811
    root, _ = two_sites
    image = site_geometry(root / "imagesTr" / "prostate_000_0000.nii.gz", 1.2, (36, 28))
    label = site_geometry(root / "labelsTr" / "prostate_000.nii.gz", 1.2, (36, 28), mode="nearest")
    assert image.shape == (1, 36, 28, 6) and label.shape == image.shape  # 64 x 0.6 mm = 32 at 1.2, padded / cropped
    spacing = torch.linalg.norm(torch.as_tensor(image.affine)[:3, :3], dim=0)
    assert torch.allclose(spacing, torch.tensor([1.2, 1.2, 3.6], dtype=spacing.dtype), atol=1e-4)
    assert torch.allclose(torch.as_tensor(image.affine), torch.as_tensor(label.affine))
    assert set(label.unique().tolist()) <= {0.0, 1.0, 2.0, 3.0}


def tiny_args(root, run, *extra, epochs=2):
    return ["--config", "configs/gan/cyclegan.yaml", "--output", str(run), "--no-progress", "--threads", "1",
            "--set", f"data.sites.root={root}", "--set", "data.sites.column=site", "--set", "data.sites.a=[A]",
            "--set", "data.sites.b=[B]", "--set", "data.sites.spacing=1.2", "--set", "data.sites.size=[32, 32]",
            "--set", "model.channels=4", "--set", "model.residual_blocks=1", "--set", "train.batch_size=2",
            "--set", "train.pool_size=3", "--set", "eval.every=1", "--set", "eval.grid=2",
            "--set", f"train.epochs={epochs}", *extra]  # fmt: skip


def test_gan_train_runs_cyclegan_and_resumes_exactly(two_sites, tmp_path, monkeypatch):  # noqa: F811
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[3])
    root, _ = two_sites
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(tiny_args(root, straight)) == 0
    assert main(tiny_args(root, resumed, epochs=1)) == 0
    assert main(tiny_args(root, resumed, "--resume")) == 0
    for name in ("metrics.json", "metrics.png", "samples/epoch_001.png", "samples/epoch_002.png"):
        assert (straight / name).is_file(), name
    body = json.loads((straight / "metrics.json").read_text())
    assert set(body["metrics"]) == {"cycle_l1_a", "cycle_psnr_a", "cycle_l1_b", "cycle_psnr_b"}
    with open(straight / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {"loss_d", "loss_sup", "loss_adv", "cycle_l1", "identity_l1", "val_cycle_l1_a"} <= set(rows[0])
    with open(resumed / "log.csv") as handle:
        again = list(csv.DictReader(handle))
    assert [r["val_cycle_l1_b"] for r in again] == [r["val_cycle_l1_b"] for r in rows]
    a = same_checkpoint_modules(straight, resumed)
    assert set(a) == {"generator", "discriminator", "image_pool"}
    assert int(a["image_pool"]["a.stored"]) == 3  # full after the first epoch's batches
