"""Every shipped config builds and trains a couple of steps (networks shrunk to stay fast)."""

from pathlib import Path

import pytest
import torch

from adversarial_seg.config import read_config_mapping
from adversarial_seg.gan.config import VARIANTS, gan_config_from_mapping
from adversarial_seg.gan.experiment import load_data
from adversarial_seg.gan.variants import build_gan_step
from adversarial_seg.runtime import Precision

REPO = Path(__file__).resolve().parents[3]
CONFIGS = sorted((REPO / "configs" / "gan").glob("*.yaml"))


def test_every_variant_has_a_config():
    variants = {gan_config_from_mapping(read_config_mapping(p)).variant for p in CONFIGS}
    assert variants == set(VARIANTS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_trains_two_steps(path):
    raw = read_config_mapping(path, ["model.hidden=32", "model.channels=8", "train.batch_size=8"])
    config = gan_config_from_mapping(raw, str(path))
    if config.data.dataset == "ph2" and not (REPO / config.data.ph2.root).is_dir():
        pytest.skip(f"{config.data.ph2.root} is absent: {path.name} trains on the shared PH2 data")
    if config.data.dataset == "sites" and not (REPO / config.data.sites.root).is_dir():
        pytest.skip(f"{config.data.sites.root} is absent: {path.name} trains on the shared prostate volumes")
    if config.variant == "stackgan" or config.data.dataset == "ph2_images":
        stage_one = config.variant == "stackgan" and config.model.stage == 2
        needed = [config.model.encoders] + ([config.model.stage1_run] if stage_one else [])
        absent = [p for p in needed if not (REPO / p).is_dir()]
        if absent:
            pytest.skip(
                f"{path.name} needs {', '.join(absent)}, trained by its commands (test_stackgan.py trains them)"
            )
    auxiliary = {}
    if config.loss.content_weight > 0:
        if not (REPO / config.loss.content_run / "config.yaml").is_file():
            pytest.skip(f"{path.name}'s content network is a seg-train run, {config.loss.content_run}, not trained "
                        "here (test_srgan.py trains one)")  # fmt: skip
        from adversarial_seg.seg.unet_parts import segmentor_encoder

        loss = config.loss
        auxiliary["content"] = segmentor_encoder(REPO / loss.content_run, loss.content_fold, loss.content_depth)
    data = load_data(config)
    torch.manual_seed(0)
    step = build_gan_step(
        config, data["shape"], data["classes"], torch.device("cpu"), Precision("cpu", None), **auxiliary
    )
    x, y = data["splits"]["train"]
    g_before = [p.detach().clone() for p in step.task.generator.parameters()]
    k = config.train.d_steps
    for i in range(2):
        batches = [{"real": x[8 * j : 8 * j + 8], "label": y[8 * j : 8 * j + 8]} for j in range(i * k, (i + 1) * k)]
        terms = step(batches)
    assert all(torch.isfinite(v) for v in terms.values())
    assert any(not torch.equal(a, b) for a, b in zip(g_before, step.task.generator.parameters()))
