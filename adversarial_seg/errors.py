"""The one input-error type every layer raises and every command maps to exit code 2.

A user's input (a config key, a dataset, an argument, a run directory, a checkpoint) is wrong
and nothing was done: the message is one sentence per problem naming the file or key and the fix.
Work that started and then failed is not an ``InputError``; the commands report it with exit 1.
"""

from __future__ import annotations

import errno


class InputError(ValueError):
    """The input is wrong and nothing was done (exit code 2); the message names the file or key."""


_OS_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOENT: "it does not exist",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder",
}


def describe_os_error(exc: OSError) -> str:
    """One sentence for a failed file operation: which file, why, and what to do.

    >>> describe_os_error(OSError(errno.ENOSPC, "No space left on device", "/runs/a/log.csv"))
    'cannot write /runs/a/log.csv: the disk is full; free space or choose another output folder'
    """
    reason = _OS_REASONS.get(exc.errno, exc.strerror or exc.__class__.__name__)
    where = f" {exc.filename}" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"cannot write{where}: {reason}; free space or choose another output folder"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot access{where}: {reason}; choose a folder you can write to, or fix its permissions"
    return f"file operation failed on{where or ' a file'}: {reason}"
