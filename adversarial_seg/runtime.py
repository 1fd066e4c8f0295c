"""Device, precision and random-state plumbing shared by every command.

This is the one place that moves tensors to a device (``to_device``) and decides on mixed
precision (``Precision``), so the CUDA path and the CPU path are the same code.
"""

from __future__ import annotations

import hashlib
import random
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from adversarial_seg.errors import InputError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; ``cuda`` without a GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise InputError(f"--device {name!r} is not one of auto, cpu, cuda")
    return torch.device(name)


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
