"""train.lr_schedule: MultiStepLR on G's and D's optimisers, its rates per epoch, exact resume in the
middle of it, and config hashes unchanged for every run recorded without it."""

import csv
import json
import re
from pathlib import Path

import pytest
import torch

from adversarial_seg.config import ConfigError, read_config_mapping
from adversarial_seg.gan.config import gan_config_from_mapping, load_gan_config
from adversarial_seg.gan.experiment import resume_digest, train_gan
from adversarial_seg.gan.variants import build_gan_step, build_lr_schedulers
from adversarial_seg.runtime import Precision

from .test_trainer import assert_nested_equal

REPO = Path(__file__).resolve().parents[2]
RECORDS = sorted((REPO / "docs" / "results" / "gan").glob("*.json"))

# 200 ring points in batches of 50: 4 G steps per epoch; lr_g 1e-3, lr_d 2e-3, x0.1 after epochs 2 and 4.
TINY_RING = {
    "variant": "vanilla",
    "data": {"dataset": "ring", "ring": {"samples": 200}},
    "model": {"z_dim": 4, "hidden": 16},
    "train": {
        "epochs": 5,
        "batch_size": 50,
        "optimizer": "adam",
        "lr_g": 1e-3,
        "lr_d": 2e-3,
        "lr_schedule": {"milestones": [2, 4], "gamma": 0.1},
    },
    "eval": {"samples": 40, "parzen_samples": 40, "every": 100},
}


def tiny_config(epochs=5, **train):
    raw = json.loads(json.dumps(TINY_RING))
    raw["train"].update(epochs=epochs, **train)
    return gan_config_from_mapping(raw)


def test_default_is_constant_and_bad_milestones_are_config_errors():
    assert gan_config_from_mapping({}).train.lr_schedule is None
    schedule = gan_config_from_mapping({"train": {"lr_schedule": {"milestones": [3]}}}).train.lr_schedule
    assert (schedule.milestones, schedule.gamma) == ([3], 0.1)
    for bad in ([4, 2], [0, 3], [2, 2]):
        with pytest.raises(ConfigError, match="increasing epochs >= 1"):
            gan_config_from_mapping({"train": {"lr_schedule": {"milestones": bad}}})
    with pytest.raises(ConfigError, match="train.lr_schedule.gama"):
        gan_config_from_mapping({"train": {"lr_schedule": {"milestones": [3], "gama": 0.5}}})


def test_schedule_rates_at_chosen_epochs():
    """Epochs 1-2 at the base rates, 3-4 at a tenth, 5 at a hundredth; both optimisers."""
    config = tiny_config()
    step = build_gan_step(config, (2,), 8, torch.device("cpu"), Precision("cpu", None))
    schedulers = build_lr_schedulers(config.train.lr_schedule, step)
    assert set(schedulers) == {"lr_g", "lr_d"}
    seen_g, seen_d = [], []
    for _epoch in range(5):
        seen_g.append(step.optimizer_g.param_groups[0]["lr"])
        seen_d.append(step.optimizer_d.param_groups[0]["lr"])
        for optimizer in (step.optimizer_g, step.optimizer_d):
            optimizer.step()  # no gradients: nothing moves, but the scheduler sees the usual order
        for scheduler in schedulers.values():
            scheduler.step()
    assert seen_g == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4, 1e-5], rel=1e-9)
    assert seen_d == pytest.approx([2e-3, 2e-3, 2e-4, 2e-4, 2e-5], rel=1e-9)
    assert build_lr_schedulers(None, step) == {}


def read_log(run_dir):
    with open(run_dir / "log.csv") as handle:
        return list(csv.DictReader(handle))


def test_resume_in_the_middle_of_the_schedule_equals_an_uninterrupted_run(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    quiet = dict(device=torch.device("cpu"), print_fn=None, progress=False)
    body = train_gan(tiny_config(), straight, **quiet)
    train_gan(tiny_config(epochs=3), resumed, **quiet)  # stops between the two milestones
    assert [float(r["lr_g"]) for r in read_log(resumed)] == pytest.approx([1e-3, 1e-3, 1e-4])
    assert resume_digest(tiny_config(epochs=3)) == resume_digest(tiny_config())
    body_resumed = train_gan(tiny_config(), resumed, resume=True, **quiet)

    rows = read_log(straight)
    assert [float(r["lr_g"]) for r in rows] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4, 1e-5])
    assert [float(r["lr_d"]) for r in rows] == pytest.approx([2e-3, 2e-3, 2e-4, 2e-4, 2e-5])
    a = torch.load(straight / "checkpoint_last.pt", weights_only=True)
    b = torch.load(resumed / "checkpoint_last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 5
    assert set(a["schedulers"]) == {"lr_g", "lr_d"} and a["schedulers"]["lr_g"]["last_epoch"] == 5
    for key in ("modules", "step", "schedulers"):  # weights, optimisers (with their rates), schedules
        assert_nested_equal(a[key], b[key], key)
    # the 3-epoch call also scored its last epoch (val_*); training itself is the same
    trained = lambda rows: [{k: v for k, v in r.items() if k != "seconds" and not k.startswith("val_")} for r in rows]  # noqa: E731
    assert trained(a["history"]) == trained(b["history"])
    assert body["metrics"] == body_resumed["metrics"]


def test_the_final_mode_coverage_warning_is_recorded(tmp_path):
    """A 1-epoch ring run: the warning is in metrics.json and printed exactly when a mode is missed."""
    printed = []
    body = train_gan(
        tiny_config(epochs=1), tmp_path / "run", torch.device("cpu"), print_fn=printed.append, progress=False
    )
    covered = body["metrics"]["modes_covered"]
    expected = f"warning: final samples cover {covered} of 8 modes"
    assert [w for w in body["warnings"] if w.startswith(expected)] == ([body["warnings"][-1]] if covered < 8 else [])
    assert any(line.startswith(expected) for line in printed) == (covered < 8)
    assert covered < 8  # one epoch of 4 G steps does not learn the ring


def record_runs():
    for path in RECORDS:
        record = json.loads(path.read_text())
        if record.get("kind", "run") != "run":
            continue
        for run in record.get("per_seed", [record]):
            # the --set values its command gave (e.g. srgan's content run), then the seed
            overrides = [*re.findall(r"--set (\S+)", run.get("command", "")), f"seed={run['seed']}"]
            given = re.search(r"--config (\S+)", run.get("command", ""))  # else the config named like the record
            path = REPO / given.group(1) if given else REPO / "configs" / "gan" / f"{record['name']}.yaml"
            yield pytest.param(path, overrides, run["config_hash"], id=f"{record['name']}-seed{run['seed']}")


@pytest.mark.parametrize("path, overrides, recorded", list(record_runs()))
def test_recorded_config_hashes_still_match_their_configs(path, overrides, recorded):
    """Adding train.lr_schedule (default none) left every recorded run's hash as it was; a config
    changed since its record fails here until it is measured again."""
    config = load_gan_config(path, overrides)
    assert config.digest() == recorded


def test_hashes_without_a_schedule_are_the_ones_from_before_the_key():
    config = load_gan_config(REPO / "configs" / "gan" / "vanilla.yaml")
    assert (config.digest(), resume_digest(config)) == ("2f329f83af93", "7217cf3aa296")  # computed before it
    raw = read_config_mapping(REPO / "configs" / "gan" / "vanilla.yaml", ["train.lr_schedule={milestones: [100]}"])
    assert gan_config_from_mapping(raw).digest() != config.digest()
