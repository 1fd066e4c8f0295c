"""Thread choice (--threads): what was asked, OMP_NUM_THREADS, else the cores other work leaves free."""

import os

import pytest
import torch

from adversarial_seg import runtime
from adversarial_seg.errors import InputError


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_threads_asked_for_win(restore_threads):
    assert runtime.set_threads(1) == "1 thread (--threads)"
    assert torch.get_num_threads() == 1
    with pytest.raises(InputError, match="--threads 0: give a whole number of at least 1"):
        runtime.set_threads(0)


def test_busy_cores_leave_fewer_threads(restore_threads, monkeypatch):
    """1.6 of 2 cores busy leaves round(0.4) = 0, so 1 thread; 0.3 busy counts as idle."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    monkeypatch.setattr(runtime, "cpu_cores", lambda: 2)
    monkeypatch.setattr(runtime, "busy_cores", lambda: 1.6)
    note = runtime.set_threads(None)
    assert torch.get_num_threads() == 1
    assert note == "1 thread (1.6 of 2 cores busy with other work; --threads N to choose)"
    torch.set_num_threads(2)
    monkeypatch.setattr(runtime, "busy_cores", lambda: 0.3)
    assert runtime.set_threads(None) == "2 threads" and torch.get_num_threads() == 2
    monkeypatch.setattr(runtime, "busy_cores", lambda: None)  # no /proc/stat: torch's default stays
    assert runtime.set_threads(None) == "2 threads"


def test_omp_num_threads_is_followed(restore_threads, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(runtime, "busy_cores", lambda: pytest.fail("not sampled when OMP_NUM_THREADS is set"))
    torch.set_num_threads(1)
    assert runtime.set_threads(None) == "1 thread (OMP_NUM_THREADS)"


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="Linux /proc/stat only")
def test_busy_cores_is_a_share_of_the_cores():
    busy = runtime.busy_cores(0.05)
    assert busy is not None and 0 <= busy <= runtime.cpu_cores()
