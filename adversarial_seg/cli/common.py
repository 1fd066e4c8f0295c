"""What every command line shares: --device, exit codes, one-sentence errors."""

from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(ValueError):
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
