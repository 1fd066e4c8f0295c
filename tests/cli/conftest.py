"""A tiny trained run for the commands that read one (seg-predict, seg-eval)."""

import yaml

from adversarial_seg.cli.seg_train import main as train

TINY_MODEL = {
    "segmentor": {"name": "UNet", "channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 0},
    "discriminator": {"channels": 8},
}


def train_tiny(base, data: dict, **sections) -> "Path":  # noqa: F821
    """``seg-train`` on ``data`` with the tiny model, 2 folds and ``sections`` (e.g. scheme="ce",
    train={"epochs": 1}); returns the run directory ``base / "run"``."""
    config = {"model": TINY_MODEL, "cv": {"folds": 2}, "data": data, **sections}
    config["train"] = {"batch_size": 8, **sections.get("train", {})}
    (base / "tiny.yaml").write_text(yaml.safe_dump(config))
    assert train(["--config", str(base / "tiny.yaml"), "--output", str(base / "run"), "--no-progress"]) == 0
    return base / "run"
