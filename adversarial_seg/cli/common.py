"""What every command line shares: --device, exit codes, one-sentence errors.

``guarded`` is the one place a command's failures become exit codes: an ``InputError`` (from any
layer) is exit 2, an interrupt or a failed file operation is one sentence and exit 1; files
already written stay (every write is atomic).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from adversarial_seg.errors import InputError, describe_os_error

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(InputError):
    """The command's input (arguments, run directory) is wrong; exit code 2."""


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"),
        help="where to run: auto picks CUDA when a GPU is visible (AMP on CUDA)",
    )  # fmt: skip


def fail(message: str, code: int = EXIT_BAD_INPUT) -> int:
    """Print an error (possibly several lines, one problem each) to stderr and return the exit code."""
    for line in str(message).splitlines():
        print(f"error: {line}", file=sys.stderr)
    return code


def guarded(work: Callable[[], int], interrupted: str) -> int:
    """Run a command's work; map what a user or the machine can cause to one sentence and an exit code.

    ``interrupted`` says what Ctrl-C leaves and how to continue, e.g. "continue with --resume".
    Anything else propagates: a bug should show its traceback.
    """
    try:
        return work()
    except InputError as exc:
        return fail(str(exc), EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        return fail(f"interrupted; {interrupted}", EXIT_FAILED)
    except OSError as exc:
        return fail(describe_os_error(exc), EXIT_FAILED)
