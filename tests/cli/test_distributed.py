"""One fold on two processes (torchrun, gloo on the CPU) against one process: the same training."""

import csv
import json
import subprocess
import sys

import pytest
import torch

from adversarial_seg.distributed import ShardedBatchSampler

from .test_seg_train import phantom_root, write_config  # noqa: F401 - the module's phantom fixture


def test_shards_of_each_global_batch_are_the_single_process_batch():
    """Shards of rank 0 and 1 together are the batch a RandomSampler with the same generator gives."""
    single = list(
        torch.utils.data.BatchSampler(
            torch.utils.data.RandomSampler(range(21), generator=torch.Generator().manual_seed(5)), 8, drop_last=True
        )
    )
    shards = [list(ShardedBatchSampler(21, 8, torch.Generator().manual_seed(5), True, 2, r)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == len(single) == 2
    for k, batch in enumerate(single):
        assert shards[0][k] + shards[1][k] == batch and len(shards[0][k]) == 4
    short = [list(ShardedBatchSampler(21, 8, torch.Generator().manual_seed(5), False, 2, r)) for r in (0, 1)]
    assert [len(b) for b in short[0]] == [4, 4, 2]  # the last 5 samples: 2 per rank, 1 left out
    assert len(ShardedBatchSampler(21, 8, torch.Generator(), False, 2, 0)) == 3
    assert len(list(ShardedBatchSampler(17, 8, torch.Generator(), False, 2, 0))) == 2  # 1 left: no third
    assert len(ShardedBatchSampler(17, 8, torch.Generator(), False, 2, 0)) == 2
    with pytest.raises(ValueError, match="train.batch_size 8 must be divisible by the 3 processes"):
        ShardedBatchSampler(21, 8, torch.Generator(), True, 3, 0)


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path, phantom_root):  # noqa: F811
    """hybrid, no augmentation, fold 0: two gloo ranks with half of every batch each reach the
    losses, the DSC per case and the weights of one process within float tolerance; rank 0 alone
    writes (one log line per epoch, one fold_done.json)."""
    config = write_config(tmp_path / "ddp.yaml", phantom_root, train={"epochs": 2, "batch_size": 8, "augment": False})
    common = ["--config", str(config), "--fold", "0", "--threads", "1", "--no-progress"]
    one, two = tmp_path / "one", tmp_path / "two"
    run = [sys.executable, "-m"]
    subprocess.run([*run, "adversarial_seg.cli.seg_train", *common, "--output", str(one)], check=True)
    torchrun = [*run, "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    done = subprocess.run(
        [*torchrun, "-m", "adversarial_seg.cli.seg_train", *common, "--output", str(two)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 processes (torchrun)" in done.stdout
    assert done.stdout.count("[hybrid, fold 1/2] epoch 1/2") == 1  # only rank 0 prints
    log_one, log_two = read_rows(one / "fold_0" / "log.csv"), read_rows(two / "fold_0" / "log.csv")
    for row_one, row_two in zip(log_one, log_two, strict=True):
        for key in ("loss_d", "loss_sup", "loss_adv", "val_dsc_gland"):
            assert float(row_two[key]) == pytest.approx(float(row_one[key]), rel=1e-3, abs=1e-4), key
    cases_one, cases_two = read_rows(one / "fold_0" / "cases.csv"), read_rows(two / "fold_0" / "cases.csv")
    for a, b in zip(cases_one, cases_two, strict=True):
        assert (a["case"], a["class"]) == (b["case"], b["class"])
        assert float(b["dsc"]) == pytest.approx(float(a["dsc"]), abs=1e-3)
    weights = [torch.load(d / "fold_0" / "checkpoint_last.pt", weights_only=True) for d in (one, two)]
    for name, tensor in weights[0]["modules"]["segmentor"].items():
        torch.testing.assert_close(weights[1]["modules"]["segmentor"][name], tensor, rtol=1e-3, atol=1e-4)
    assert json.loads((two / "fold_0" / "fold_done.json").read_text())["fold"] == 0
