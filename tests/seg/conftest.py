import pytest
import torch

from adversarial_seg.config import config_from_mapping
from adversarial_seg.runtime import Precision
from adversarial_seg.seg.task import build_segmentation_step

TINY_UNET = {"name": "UNet", "channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 0}


def make_step(scheme="hybrid", precision=None, **sections):
    """A tiny 2D segmentation step (1 image channel, 3 classes) on the CPU."""
    raw = {"scheme": scheme, "model": {"segmentor": TINY_UNET, "discriminator": {"channels": 4}}}
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    config = config_from_mapping(raw)
    device = torch.device("cpu")
    precision = precision or Precision.for_device(device, amp=False)
    return build_segmentation_step(config, 2, 1, 3, device, precision)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    image = torch.randn(4, 1, 64, 64, generator=g)
    label = torch.randint(0, 3, (4, 1, 64, 64), generator=g)
    return {"image": image, "label": label}
