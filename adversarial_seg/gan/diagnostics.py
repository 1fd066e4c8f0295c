"""Warnings users ask for while a GAN trains: G starved by a winning D, sample diversity collapse,
and (where the data's modes are known, the ring) modes the final samples miss.

``StarvationMonitor`` looks at every step's terms: when D wins outright (D(real) ~ 1 and
D(fake) ~ 0, or its loss ~ 0) for ``patience`` consecutive steps, G's gradient is (nearly) gone
(with the saturating loss exactly so). ``diversity_warning`` compares the spread of generated
samples with the spread of real ones once per epoch. ``mode_coverage_warning`` looks at the
final samples' count of covered modes once, after training.

Example:
    >>> monitor = StarvationMonitor("non_saturating", patience=3)
    >>> starved = {"loss_d": torch.tensor(0.01), "d_real": torch.tensor(0.99), "d_fake": torch.tensor(0.01)}
    >>> [monitor.observe(starved) for _ in range(4)][-2:]
    ['D has won for 3 steps in a row (D(real) 0.99, D(fake) 0.01, loss_d 0.01): G is starved of gradient; lower train.lr_d, use loss.adversarial non_saturating, label smoothing or instance noise', None]
"""

from __future__ import annotations

import torch  # noqa: F401  (used by the doctest)

from adversarial_seg.gan.step import AdversarialStep

LOGISTIC = ("minimax", "non_saturating")


def discriminator_wins(terms: dict, adversarial: str, margin: float = 0.05) -> bool:
    """True when this step's D separates real and fake almost perfectly.

    Logistic losses: D(real) > 1 - margin and D(fake) < margin (probabilities), or loss_d < margin.
    Least squares: D(real) > 1 - 2 margin and D(fake) < 2 margin (raw outputs, targets 1 and 0).
    Hinge: loss_d < margin (both margins met). Wasserstein: never (the critic value has no ceiling).
    """
    value = {k: float(v) for k, v in terms.items() if k in ("loss_d", "d_real", "d_fake")}
    if not value:
        return False
    if adversarial in LOGISTIC:
        return (value["d_real"] > 1 - margin and value["d_fake"] < margin) or value["loss_d"] < margin
    if adversarial == "least_squares":
        return value["d_real"] > 1 - 2 * margin and value["d_fake"] < 2 * margin
    if adversarial == "hinge":
        return value["loss_d"] < margin
    return False


class StarvationMonitor:
    """Counts consecutive steps in which D wins; returns a warning once per streak of ``patience``."""

    def __init__(self, adversarial: str, patience: int = 100):
        self.adversarial = adversarial
        self.patience = patience
        self.streak = 0
        self.warnings: list[str] = []

    def observe(self, terms: dict) -> str | None:
        if not discriminator_wins(terms, self.adversarial):
            self.streak = 0
            return None
        self.streak += 1
        if self.streak != self.patience:
            return None
        message = (
            f"D has won for {self.patience} steps in a row (D(real) {float(terms['d_real']):.2f}, "
            f"D(fake) {float(terms['d_fake']):.2f}, loss_d {float(terms['loss_d']):.2g}): G is starved of gradient; "
            "lower train.lr_d, use loss.adversarial non_saturating, label smoothing or instance noise"
        )
        self.warnings.append(message)
        return message


class MonitoredStep(AdversarialStep):
    """The core step with a ``StarvationMonitor`` fed after every call (one host sync per step)."""

    def __init__(self, *args, patience: int = 100, warn=print, **kwargs):
        super().__init__(*args, **kwargs)
        self.monitor = StarvationMonitor(self.config.adversarial, patience)
        self.warn = warn

    @classmethod
    def wrap(cls, step: AdversarialStep, patience: int = 100, warn=print) -> MonitoredStep:
        return cls(
            step.task, step.optimizer_g, step.optimizer_d, step.config, step.precision, patience=patience, warn=warn
        )

    def __call__(self, batches):
        terms = super().__call__(batches)
        message = self.monitor.observe(terms)
        if message and self.warn is not None:
            self.warn(f"warning: {message}")
        return terms


def diversity_warning(spread_fake: float, spread_real: float, min_ratio: float = 0.3) -> str | None:
    """A warning when generated samples are far less spread out than real ones (mode collapse).

    >>> diversity_warning(1.0, 10.0)
    'sample diversity collapsed: mean pairwise distance of samples is 0.10 of the real data (below 0.3); G may have collapsed onto few modes'
    >>> diversity_warning(8.0, 10.0) is None
    True
    """
    if spread_real <= 0:
        return None
    ratio = spread_fake / spread_real
    if ratio >= min_ratio:
        return None
    return (
        f"sample diversity collapsed: mean pairwise distance of samples is {ratio:.2f} of the real data "
        f"(below {min_ratio:g}); G may have collapsed onto few modes"
    )


def mode_coverage_warning(covered: int, modes: int) -> str | None:
    """A warning when the final samples cover fewer than all of the data's ``modes``.

    >>> mode_coverage_warning(8, 8) is None
    True
    >>> mode_coverage_warning(0, 8)
    'final samples cover 0 of 8 modes: G is under-trained or has collapsed; train longer (train.epochs) or at a higher learning rate with a train.lr_schedule that lowers it for the last epochs'
    """
    if covered >= modes:
        return None
    return (
        f"final samples cover {covered} of {modes} modes: G is under-trained or has collapsed; "
        "train longer (train.epochs) or at a higher learning rate with a train.lr_schedule that lowers it "
        "for the last epochs"
    )
