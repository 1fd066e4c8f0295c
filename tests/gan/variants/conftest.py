from pathlib import Path

import pytest
import torch

from adversarial_seg.gan.config import gan_config_from_mapping
from adversarial_seg.gan.data import digits_splits
from adversarial_seg.gan.variants import build_gan_step
from adversarial_seg.runtime import Precision

TINY_MODEL = {"z_dim": 8, "hidden": 32, "channels": 8}


def tiny_step(variant: str, **sections):
    raw = {"variant": variant, "model": dict(TINY_MODEL, **sections.pop("model", {})), **sections}
    config = gan_config_from_mapping(raw)
    torch.manual_seed(0)
    return config, build_gan_step(config, (1, 16, 16), 10, torch.device("cpu"), Precision("cpu", None))


@pytest.fixture(scope="session")
def digit_batches():
    x, y = digits_splits(16)["train"]
    return [{"real": x[i * 16 : (i + 1) * 16], "label": y[i * 16 : (i + 1) * 16]} for i in range(5)]


def same_checkpoint_modules(straight: Path, resumed: Path) -> dict:
    """Assert that two runs' ``checkpoint_last.pt`` hold equal tensors in every module; returns the first's."""
    a = torch.load(straight / "checkpoint_last.pt", weights_only=True)["modules"]
    b = torch.load(resumed / "checkpoint_last.pt", weights_only=True)["modules"]
    assert set(a) == set(b)
    for module in a:
        for key, value in a[module].items():
            assert torch.equal(value, b[module][key]), (module, key)
    return a
