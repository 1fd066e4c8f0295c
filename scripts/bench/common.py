"""What every benchmark in scripts/bench records next to its numbers: the machine and the versions,
and its result as one JSON line printed last (the line docs/performance.md quotes)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(device: str = "cpu") -> dict:
    import monai
    import torch

    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "commit": git_commit(),
    }
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True)
    except OSError:
        return None
    return out.stdout.strip() or None


def require_data(name: str) -> Path:
    """The shared dataset ``name``, or exit with one sentence saying where it was looked for."""
    folder = SHARED_DATA / name
    if not folder.is_dir():
        raise SystemExit(f"{folder} is absent: this benchmark reads the shared {name} data in place")
    return folder


def print_result(result: dict) -> None:
    """The benchmark's result, the last line of its output."""
    print(json.dumps(result, sort_keys=False), flush=True)
