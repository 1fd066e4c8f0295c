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


class CommandParser(argparse.ArgumentParser):
    """argparse with the project's error form: one ``error:`` sentence pointing at --help, exit 2."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"error: {message}; see {self.prog} --help\n")


def command_parser(prog: str, doc: str) -> CommandParser:
    """The parser of one command; its description is the first paragraph of the module's docstring."""
    return CommandParser(prog=prog, description=doc.split("\n\n")[0])


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-progress`` (every command that shows bars); bars are also off when stderr is not a terminal."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (the log lines stay)")


def show_progress(args: argparse.Namespace) -> bool:
    return not args.no_progress and sys.stderr.isatty()


def add_override_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set train.epochs=5 (repeatable)")  # fmt: skip


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--threads`` (every command that runs a network); see ``runtime.set_threads``."""
    parser.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"),
        help="where to run: auto picks CUDA when a GPU is visible (AMP on CUDA)",
    )  # fmt: skip
    parser.add_argument(
        "--threads", type=int, metavar="N",
        help="CPU threads of torch (default: OMP_NUM_THREADS if set, else the cores other processes leave free)",
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
