"""Diagnostics: G-starvation streaks, diversity collapse and missed ring modes."""

import torch

from adversarial_seg.gan.diagnostics import StarvationMonitor, discriminator_wins, diversity_warning


def terms(loss_d, d_real, d_fake):
    return {"loss_d": torch.tensor(loss_d), "d_real": torch.tensor(d_real), "d_fake": torch.tensor(d_fake)}


def test_discriminator_wins_by_loss_family():
    assert discriminator_wins(terms(0.02, 0.99, 0.01), "minimax")
    assert not discriminator_wins(terms(1.2, 0.6, 0.4), "non_saturating")
    assert discriminator_wins(terms(0.01, 0.95, 0.05), "least_squares")
    assert discriminator_wins(terms(0.0, 3.0, -3.0), "hinge")
    assert not discriminator_wins(terms(-50.0, 30.0, -20.0), "wasserstein")


def test_starvation_warns_once_per_streak_and_resets():
    monitor = StarvationMonitor("non_saturating", patience=3)
    won, lost = terms(0.01, 0.99, 0.01), terms(1.3, 0.55, 0.45)
    results = [monitor.observe(t) for t in [won, won, lost, won, won, won, won, won]]
    assert [r is not None for r in results] == [False, False, False, False, False, True, False, False]
    assert len(monitor.warnings) == 1 and "starved" in monitor.warnings[0]


def test_diversity_warning_threshold():
    assert diversity_warning(2.9, 10.0, 0.3) is not None
    assert diversity_warning(3.0, 10.0, 0.3) is None


def test_mode_coverage_warning_on_hand_made_points():
    from adversarial_seg.gan.data import ring_centers
    from adversarial_seg.gan.diagnostics import mode_coverage_warning
    from adversarial_seg.gan.metrics import ring_metrics

    centres = ring_centers(8, 2.0)
    on_every_mode = centres.repeat(10, 1)  # 80 points, 10 exactly on each centre
    at_the_origin = torch.zeros(80, 2)  # 2 from every centre: none high quality
    seven = centres[:7].repeat(10, 1)  # the last mode empty
    counts = [ring_metrics(p, centres, std=0.02)["modes_covered"] for p in (on_every_mode, at_the_origin, seven)]
    assert counts == [8, 0, 7]
    assert mode_coverage_warning(counts[0], 8) is None
    zero = mode_coverage_warning(counts[1], 8)
    assert (
        zero.startswith("final samples cover 0 of 8 modes") and "train.lr_schedule" in zero and "train.epochs" in zero
    )
    assert mode_coverage_warning(counts[2], 8).startswith("final samples cover 7 of 8 modes")
