"""Study-level progress for log lines: which run and fold, elapsed time and an estimate of what is left.

Lines, not bars, so that a log file or a scheduler's output reads the same as a terminal.

Example:
    >>> clock = StudyClock(epochs_left=4, now=lambda: 0.0)
    >>> clock.status()
    'elapsed 0:00:00'
    >>> clock.now = lambda: 30.0
    >>> clock.epoch_done()
    >>> clock.status()
    'elapsed 0:00:30, about 0:01:30 left'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def clock_text(seconds: float) -> str:
    """``h:mm:ss``."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class StudyClock:
    """Counts the epochs a study still has to train; the estimate is the mean wall time per epoch
    so far (data caching and fold predictions included) times the epochs left."""

    def __init__(self, epochs_left: int, now: Callable[[], float] = time.perf_counter):
        self.now = now
        self.started = now()
        self.epochs_left = epochs_left
        self.epochs_done = 0

    def epoch_done(self) -> None:
        self.epochs_done += 1
        self.epochs_left = max(self.epochs_left - 1, 0)

    def status(self) -> str:
        elapsed = self.now() - self.started
        text = f"elapsed {clock_text(elapsed)}"
        if self.epochs_done:
            text += f", about {clock_text(elapsed / self.epochs_done * self.epochs_left)} left"
        return text


def epochs_logged(fold_dir: Path) -> int:
    """Epochs a fold already trained (rows of its log.csv; 0 when it has not started)."""
    log = fold_dir / "log.csv"
    if not log.is_file():
        return 0
    return max(len(log.read_text().splitlines()) - 1, 0)
