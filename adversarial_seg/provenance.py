"""What a run records about itself: resolved config, seed, library versions, git commit."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import yaml

from adversarial_seg import __version__
from adversarial_seg.atomic_files import atomic_write_bytes
from adversarial_seg.errors import InputError

LIBRARIES = ("torch", "monai", "numpy", "nibabel", "SimpleITK", "scikit-learn", "pydantic")


def library_versions() -> dict[str, str]:
    versions = {"adversarial_seg": __version__, "python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@functools.cache
def git_commit() -> str:
    """Commit of the source tree the package runs from (``unknown`` outside a git checkout).

    Read once per process (the CLIs call it at start): commits made while a long run trains
    must not be recorded as the code that trained it.
    """
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def write_resolved_config(config, path: Path, **extra) -> None:
    """``config.yaml``: the validated config plus provenance, atomically."""
    body = config.model_dump(mode="json")
    body["provenance"] = {
        "config_hash": config.digest(),
        "git_commit": git_commit(),
        "versions": library_versions(),
        **extra,
    }
    atomic_write_bytes(path, yaml.safe_dump(body, sort_keys=False).encode())


def read_resolved_config(path: Path) -> tuple[dict, dict]:
    """(config mapping, provenance) from a run's ``config.yaml``; InputError naming the file when it
    is not readable YAML holding a mapping (a truncated or hand-broken file)."""
    fix = "restore it from a copy of the run (seg-train writes it when the run starts)"
    try:
        body = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path} cannot be read as YAML ({exc.__class__.__name__}); {fix}") from None
    if not isinstance(body, dict) or not isinstance(body.get("provenance", {}), dict):
        raise InputError(f"{path} does not hold a run's config (a mapping of sections); {fix}")
    provenance = body.pop("provenance", {})
    return body, provenance
