"""Checkpoint files: written atomically, read without ever running code from them.

Every checkpoint this project writes holds tensors and plain values only (dicts, lists, tuples,
numbers, strings; the numpy RNG state is stored as a tensor, see ``runtime.rng_state``), so it
loads with ``torch.load(weights_only=True)``, PyTorch's restricted unpickler. A file that needs
anything else (a pickle payload, a foreign object) is refused with one sentence, as is a
truncated or corrupt file. Checkpoints from before the RNG change hold numpy's state as an
array; numpy's array reconstruction is the one extra type allowed.
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adversarial_seg.atomic_files import atomic_write_bytes
from adversarial_seg.errors import InputError


class CheckpointError(InputError):
    """A checkpoint file is missing, unreadable, or holds something other than weights and state."""


def _numpy_array_globals() -> list:
    """What an ndarray of numbers needs to unpickle (numpy 1 and 2 name the module differently)."""
    core = getattr(np, "_core", None) or np.core
    allowed = [core.multiarray._reconstruct, np.ndarray, np.dtype]
    allowed += [type(np.dtype(t)) for t in ("uint32", "int64", "float64")]
    return allowed


def save_checkpoint(state: dict, path: str | Path) -> None:
    """``torch.save`` through a temporary file and a rename: a kill never leaves half a checkpoint."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict:
    """Read a checkpoint without executing code; CheckpointError names the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train (or --resume) the run that writes it")
    try:
        with torch.serialization.safe_globals(_numpy_array_globals()):
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+) (?:was not an allowed global|whose module)", str(exc))
        raise CheckpointError(
            f"checkpoint {path} holds objects other than weights and training state"
            + (f" ({found[1]})" if found else "")
            + "; it was not written by adversarial_seg or was tampered with, so it is not loaded"
        ) from None
    except (RuntimeError, EOFError, KeyError, zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({exc.__class__.__name__}): it is truncated, empty or not a "
            "PyTorch checkpoint; restore it from a copy, or delete it and train again with --resume"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(
            f"checkpoint {path} does not hold a state dictionary; it was not written by adversarial_seg"
        )
    return state
