"""Device, precision and random-state plumbing shared by every command.

This is the one place that moves tensors to a device (``to_device``) and decides on mixed
precision (``Precision``), so the CUDA path and the CPU path are the same code.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adversarial_seg import distributed
from adversarial_seg.errors import InputError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; ``cuda`` without a GPU is a user error. Under torchrun
    each process takes the GPU of its ``LOCAL_RANK``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise InputError(f"--device {name!r} is not one of auto, cpu, cuda")
    if name == "cuda" and distributed.launched_by_torchrun():
        device = torch.device("cuda", distributed.local_rank())
        torch.cuda.set_device(device)
        return device
    return torch.device(name)


def busy_cores(seconds: float = 0.25) -> float | None:
    """How many cores other processes keep busy right now (Linux ``/proc/stat`` sampled over
    ``seconds``); None where that cannot be read. Unlike the load average it does not lag, so a
    job started right after another one ended sees the cores free."""

    def totals() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]), idle

    try:
        total_0, idle_0 = totals()
        time.sleep(seconds)
        total_1, idle_1 = totals()
    except (OSError, ValueError, IndexError):
        return None
    elapsed = total_1 - total_0
    return 0.0 if elapsed <= 0 else (1 - (idle_1 - idle_0) / elapsed) * cpu_cores()


def cpu_cores() -> int:
    """Cores this process may run on (its affinity mask, where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def set_threads(requested: int | None) -> str:
    """Set torch's intra-op threads (``--threads``) and say what was chosen and why.

    ``requested`` wins; with None, ``OMP_NUM_THREADS`` when set (torch already follows it), else
    the cores that other processes leave free, at least 1 and at most torch's default: torch's
    default of every core makes jobs that share the cores 10 to 30 times slower
    (docs/performance.md), not 2.
    """
    if requested is not None:
        if requested < 1:
            raise InputError(f"--threads {requested}: give a whole number of at least 1")
        torch.set_num_threads(requested)
        return f"{requested} thread{'s' * (requested > 1)} (--threads)"
    default = torch.get_num_threads()
    if os.environ.get("OMP_NUM_THREADS"):
        return f"{default} thread{'s' * (default > 1)} (OMP_NUM_THREADS)"
    busy = busy_cores()
    if busy is None or busy < 0.5:
        return f"{default} thread{'s' * (default > 1)}"
    threads = max(1, min(default, round(cpu_cores() - busy)))
    torch.set_num_threads(threads)
    return (
        f"{threads} thread{'s' * (threads > 1)} ({busy:.1f} of {cpu_cores()} cores busy with other work; "
        "--threads N to choose)"
    )


def to_device(batch: Any, device: torch.device) -> Any:
    """Move a module, or every tensor in a (nested) batch, to ``device``; other values pass through."""
    if isinstance(batch, torch.nn.Module):
        return batch.to(device)
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


@dataclass(frozen=True)
class Precision:
    """Autocast settings. fp16 on CUDA needs loss scaling; bf16 (CPU or CUDA) does not."""

    device_type: str
    dtype: torch.dtype | None  # None: full fp32

    @classmethod
    def for_device(cls, device: torch.device, amp: bool, cpu_bf16: bool = False) -> Precision:
        if not amp:
            return cls(device.type, None)
        if device.type == "cuda":
            return cls("cuda", torch.float16)
        return cls(device.type, torch.bfloat16 if cpu_bf16 else None)

    def autocast(self):
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """One per optimiser; a disabled scaler is a pass-through, so the step code is shared."""
        return torch.amp.GradScaler(self.device_type, enabled=self.dtype == torch.float16)


def derived_seed(*parts: int | str) -> int:
    """A 31-bit seed derived from (seed, fold, epoch, ...), stable across runs and platforms."""
    text = "/".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every global random state, for checkpoints (tensors and plain values only)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        # numpy's key array as a tensor: checkpoints hold tensors and plain values only (weights_only)
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.int64).astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
