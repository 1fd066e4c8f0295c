"""Training curves: each kind of quantity on its own axis."""

from adversarial_seg.plots import TRAINING_PANELS, panel_columns, plot_training_curves

ROW = {"epoch": 1, "loss_d": 0.25, "d_real": 0.5, "d_fake": 0.49, "loss_g": 1.0, "grad_ratio_adv_sup": 4.2,
       "val_dsc_gland": 0.8, "seconds": 2.0}  # fmt: skip


def test_discriminator_outputs_do_not_share_an_axis_with_the_gradient_ratio():
    panels = dict(panel_columns([ROW], TRAINING_PANELS))
    assert panels["discriminator outputs"] == ["d_real", "d_fake"]
    assert panels["adversarial / supervised gradient"] == ["grad_ratio_adv_sup"]
    assert panels["loss"] == ["loss_d", "loss_g"] and panels["validation"] == ["val_dsc_gland"]


def test_a_ce_run_draws_no_discriminator_panels(tmp_path):
    row = {"epoch": 1, "loss_sup": 0.7, "loss_g": 0.7, "val_dsc_gland": 0.8}
    assert [name for name, _ in panel_columns([row], TRAINING_PANELS)] == ["loss", "validation"]
    plot_training_curves([row, {**row, "epoch": 2}], tmp_path / "progress.png")
    assert (tmp_path / "progress.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_discriminator_probe_has_its_own_panel(tmp_path):
    rows = [{**ROW, "d_auc": 0.62, "d_auc_pairs": 30.0}, {**ROW, "epoch": 2, "d_auc": 0.7, "d_auc_pairs": 30.0}]
    panels = dict(panel_columns(rows, TRAINING_PANELS))
    assert panels["discriminator AUC (held out)"] == ["d_auc"]
    assert not any("d_auc_pairs" in columns for columns in panels.values())  # a count, not a curve
    plot_training_curves(rows, tmp_path / "progress.png")
    assert (tmp_path / "progress.png").is_file()
