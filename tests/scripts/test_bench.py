"""scripts/bench: the pieces that measure, checked by hand, and the train-step benchmark end to end
on tiny batches (its numbers are not asserted: speed is not a test's business)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "scripts" / "bench"


@pytest.fixture(scope="module")
def data_wait():
    sys.path.insert(0, str(BENCH))
    try:
        import data_wait as module
    finally:
        sys.path.remove(str(BENCH))
    return module


def test_timed_loader_adds_the_fetch_time_and_passes_batches_through(data_wait):
    def slow():
        for item in range(3):
            time.sleep(0.02)
            yield item

    class Loader:
        def __len__(self):
            return 3

        def __iter__(self):
            return slow()

    waits = [5.0, 0.0]  # an earlier epoch's wait stays where it is
    loader = data_wait.TimedLoader(Loader(), waits)
    started = time.perf_counter()
    items = []
    for item in loader:
        items.append(item)
        time.sleep(0.05)  # the step's own time is not waiting
    total = time.perf_counter() - started
    assert items == [0, 1, 2] and len(loader) == 3
    assert waits[0] == 5.0
    assert 0.06 <= waits[1] < total - 0.14


def test_train_step_benchmark_prints_its_result_last():
    out = subprocess.run(
        [sys.executable, str(BENCH / "train_step.py"), "--size", "64", "64", "--batch", "2", "--batches", "2",
         "--rounds", "1", "--threads", "1"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["bench"] == "train_step" and result["epoch_shape"] == [2, 2, 3, 64, 64]
    assert result["bare_over_ce"] == pytest.approx(result["bare_s"] / result["ce_s"], rel=0.05)
    assert result["met"] == (result["bare_over_ce"] >= 0.95)
    assert result["machine"]["torch"]
