"""Atomic file writing, shared by every layer (the GAN core, data, seg and the CLIs).

A file is written under a temporary name in its own folder and renamed over the target with
``os.replace``, so a reader (or a later run) sees the old file or the new one, never a part.

A writer killed between the two leaves its temporary behind. Such leftovers are recognised by a
signature in their name that only this module writes (a keyed digest of the target name and a
random token), never by a name pattern alone: a user's ``.notes.20240101`` is not ours and is
never deleted.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> atomic_write_bytes(folder / "a.json", b"{}")
    >>> sorted(p.name for p in folder.iterdir())
    ['a.json']
    >>> name = temporary_name("case.nii.gz")
    >>> is_own_temporary(name), is_own_temporary(".notes.20240101")
    (True, False)
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from adversarial_seg.errors import InputError

# Endings that must stay last so that the writers (nibabel, SimpleITK, Pillow) pick the format.
_COMPOUND_ENDINGS = (".nii.gz",)
_SIGNATURE_KEY = b"adversarial_seg temporary v1"
_TEMPORARY = re.compile(r"^\.(?P<stem>.+)\.(?P<token>[0-9a-f]{8})-(?P<signature>[0-9a-f]{12})\.partial(?P<suffix>.*)$")

_UMASK = os.umask(0)
os.umask(_UMASK)


def _split_ending(name: str) -> tuple[str, str]:
    for ending in _COMPOUND_ENDINGS:
        if name.lower().endswith(ending):
            return name[: -len(ending)], name[-len(ending) :]
    stem, dot, ending = name.rpartition(".")
    return (stem, dot + ending) if stem else (name, "")


def _signature(stem: str, suffix: str, token: str) -> str:
    return hashlib.sha256(_SIGNATURE_KEY + f"/{stem}/{suffix}/{token}".encode()).hexdigest()[:12]


def temporary_name(target_name: str) -> str:
    """A fresh signed temporary name for ``target_name``, keeping its ending (``.nii.gz`` whole)."""
    stem, suffix = _split_ending(target_name)
    token = secrets.token_hex(4)
    return f".{stem}.{token}-{_signature(stem, suffix, token)}.partial{suffix}"


def is_own_temporary(name: str) -> bool:
    """True only for a name ``temporary_name`` made (its signature checks out)."""
    match = _TEMPORARY.match(name)
    return bool(match) and match["signature"] == _signature(match["stem"], match["suffix"], match["token"])


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder (same ending); replace ``path`` on success.

    On any exception the temporary is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        temporary = path.parent / temporary_name(path.name)
        try:
            os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666 & ~_UMASK))
            break
        except FileExistsError:  # a token collision: draw again
            continue
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a flushed temporary and a rename."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temporaries(folder: str | Path) -> int:
    """Delete the temporaries this module left in ``folder`` when a writer was killed; return how many.

    Only files whose name carries this module's signature are touched. Only for a folder no other
    process is writing into at the same time.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    stale = [p for p in folder.iterdir() if is_own_temporary(p.name)]
    for path in stale:
        if path.is_dir() and not path.is_symlink():  # an MHD pair's private folder
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return len(stale)


def check_output_folder(folder: str | Path, what: str = "--output") -> None:
    """InputError (nothing written) for an output folder that is a file, lies under a file, or whose
    nearest existing folder cannot be written; ``what`` names it in the sentence (e.g. ``--output``)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{what} {folder} is a file; pass a folder (it is created if missing)")
    existing = next(p for p in (folder.absolute(), *folder.absolute().parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise InputError(f"{what} {folder}: {existing} is a file, not a folder; choose another {what}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(
            f"{what} {folder}: {existing} is not writable (permission denied); choose a folder you can write to"
        )
