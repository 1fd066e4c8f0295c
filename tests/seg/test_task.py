"""The adversarial segmentation step on the GAN core (issue: core and step)."""

import copy

import pytest
import torch

from adversarial_seg.runtime import Precision

from .conftest import make_step


def clone_state(module):
    return copy.deepcopy(module.state_dict())


def states_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_discriminator_unchanged_by_generator_update(batch):
    step = make_step("hybrid")
    d_before = clone_state(step.task.discriminator)
    s_before = clone_state(step.task.generator)
    step.generator_step(batch, step.task.generate(batch))
    assert states_equal(d_before, clone_state(step.task.discriminator))
    assert all(p.grad is None for p in step.task.discriminator.parameters())
    assert all(p.requires_grad for p in step.task.discriminator.parameters())  # unfrozen again
    assert not states_equal(s_before, clone_state(step.task.generator))


def test_discriminator_update_leaves_segmentor_untouched(batch):
    """Fakes are detached for D: no gradient reaches the segmentor in the D update."""
    step = make_step("hybrid")
    s_before = clone_state(step.task.generator)
    d_before = clone_state(step.task.discriminator)
    step.discriminator_step(batch, step.task.generate(batch))
    assert all(p.grad is None for p in step.task.generator.parameters())
    assert states_equal(s_before, clone_state(step.task.generator))
    assert not states_equal(d_before, clone_state(step.task.discriminator))


def test_adversarial_gradient_reaches_the_segmentor(batch):
    """With w_sup = 0 the only gradient G gets comes through D; it must be non-zero.
    (Detaching the adversarial term would leave every segmentor gradient at zero.)"""
    step = make_step("adversarial")
    s_before = clone_state(step.task.generator)
    terms = step.generator_step(batch, step.task.generate(batch))
    grads = [p.grad for p in step.task.generator.parameters()]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert not states_equal(s_before, clone_state(step.task.generator))  # weights move
    assert float(terms["loss_g"]) == pytest.approx(float(terms["loss_adv"]))
    assert "grad_ratio_adv_sup" not in terms  # undefined without a supervised term
    assert -1 <= float(terms["grad_cos_adv_sup"]) <= 1  # the supervised direction is still measured


def test_hybrid_loss_is_weighted_sum_and_gradient_ratio_is_logged(batch):
    step = make_step("hybrid")  # Kohl: w_sup 0.5, w_adv 1
    terms = step(batches=[batch])
    assert float(terms["loss_g"]) == pytest.approx(0.5 * float(terms["loss_sup"]) + float(terms["loss_adv"]), rel=1e-5)
    assert float(terms["grad_ratio_adv_sup"]) > 0
    for key in ("loss_d", "d_real", "d_fake"):
        assert torch.isfinite(terms[key])


def test_gradient_ratio_matches_separate_autograd_grads(batch):
    step = make_step("hybrid")
    task = step.task
    out = task.generate(batch)
    sup = 0.5 * task.supervised_loss(batch, out)
    adv = step.g_loss(task.discriminate(batch, task.fake_sample(batch, out)))
    (g_sup,) = torch.autograd.grad(sup, out, retain_graph=True)
    (g_adv,) = torch.autograd.grad(adv, out)
    terms = step.generator_step(batch, task.generate(batch))
    assert float(terms["grad_ratio_adv_sup"]) == pytest.approx(float(g_adv.norm() / g_sup.norm()), rel=1e-4)
    cosine = float((g_adv * g_sup).sum() / (g_adv.norm() * g_sup.norm()))
    assert float(terms["grad_cos_adv_sup"]) == pytest.approx(cosine, rel=1e-4, abs=1e-6)


def test_gradient_cosine_of_the_adversarial_scheme_uses_the_unweighted_supervised_direction(batch):
    """With w_sup 0 no supervised gradient reaches G, yet the cosine is that of the adversarial
    gradient with the gradient the supervised loss would give."""
    step = make_step("adversarial")
    task = step.task
    out = task.generate(batch)
    (g_sup,) = torch.autograd.grad(task.supervised_loss(batch, out), out, retain_graph=True)
    (g_adv,) = torch.autograd.grad(step.g_loss(task.discriminate(batch, task.fake_sample(batch, out))), out)
    terms = step.generator_step(batch, task.generate(batch))
    cosine = float((g_adv * g_sup).sum() / (g_adv.norm() * g_sup.norm()))
    assert float(terms["grad_cos_adv_sup"]) == pytest.approx(cosine, rel=1e-4, abs=1e-6)


def test_max_adv_grad_ratio_scales_the_adversarial_gradient_down_to_the_cap(batch):
    """With loss.max_adv_grad_ratio the segmentor gets the gradient of w_sup * sup + s * w_adv * adv,
    s = min(1, cap / ratio): the same parameter gradients as an uncapped step whose w_adv is s."""
    import dataclasses

    capped = make_step("hybrid", loss={"max_adv_grad_ratio": 0.01})
    plain = copy.deepcopy(capped)
    terms = capped.generator_step(batch, capped.task.generate(batch))
    ratio, scale = float(terms["grad_ratio_adv_sup"]), float(terms["adv_grad_scale"])
    assert ratio > 0.01 and scale == pytest.approx(0.01 / ratio, rel=1e-5)
    plain.config = dataclasses.replace(plain.config, w_adv=scale * plain.config.w_adv, max_adv_grad_ratio=None)
    plain.generator_step(batch, plain.task.generate(batch))
    for p_capped, p_plain in zip(capped.task.generator.parameters(), plain.task.generator.parameters(), strict=True):
        torch.testing.assert_close(p_capped.grad, p_plain.grad, rtol=1e-4, atol=1e-7)
    loose = make_step("hybrid", loss={"max_adv_grad_ratio": 1e6})  # below the cap: untouched
    assert float(loose.generator_step(batch, loose.task.generate(batch))["adv_grad_scale"]) == 1.0


def test_ce_scheme_builds_no_discriminator(batch):
    step = make_step("ce")
    assert step.task.discriminator is None and step.optimizer_d is None
    terms = step([batch])
    assert set(terms) == {"loss_sup", "loss_g"}
    assert float(terms["loss_g"]) == pytest.approx(float(terms["loss_sup"]))


def test_k_discriminator_steps_per_generator_step(batch):
    step = make_step("hybrid", train={"d_steps": 3})
    step([batch, batch, batch])
    d_steps = {int(s["step"]) for s in step.optimizer_d.state.values()}
    g_steps = {int(s["step"]) for s in step.optimizer_g.state.values()}
    assert d_steps == {3} and g_steps == {1}


@pytest.mark.parametrize("encoding", ["onehot", "product", "scaled"])
def test_discriminator_output_depends_on_the_image(batch, encoding):
    step = make_step("hybrid", model={"discriminator": {"channels": 4, "mask_encoding": encoding}})
    task = step.task
    mask = task.real_sample(batch, task.generate(batch).detach())
    other = {"image": torch.randn_like(batch["image"]), "label": batch["label"]}
    with torch.no_grad():
        same = task.discriminate(batch, mask)
        changed = task.discriminate(other, mask)
    assert not torch.allclose(same, changed)


@pytest.mark.parametrize("loss", ["minimax", "least_squares", "hinge", "wasserstein"])
def test_every_adversarial_loss_trains(batch, loss):
    step = make_step("hybrid", loss={"adversarial": loss})
    terms = step([batch])
    assert all(torch.isfinite(v) for k, v in terms.items())


def test_gradient_penalty_and_stabilisers_run_in_the_step(batch):
    step = make_step(
        "hybrid",
        loss={"adversarial": "wasserstein", "gradient_penalty": 10.0, "instance_noise": 0.1, "label_smoothing": 0.1},
    )
    terms = step([batch])
    assert float(terms["gradient_penalty"]) >= 0 and torch.isfinite(terms["loss_d"])


def test_hybrid_step_runs_under_bf16_autocast_on_cpu(batch):
    precision = Precision.for_device(torch.device("cpu"), amp=True, cpu_bf16=True)
    assert precision.dtype == torch.bfloat16
    step = make_step("hybrid", precision=precision, loss={"gradient_penalty": 1.0})
    s_before = clone_state(step.task.generator)
    seen = {}
    hook = step.task.generator.register_forward_hook(lambda m, i, o: seen.__setitem__("dtype", o.dtype))
    terms = step([batch])
    hook.remove()
    assert seen["dtype"] == torch.bfloat16  # autocast really ran
    assert all(torch.isfinite(v) for v in terms.values())
    assert not states_equal(s_before, clone_state(step.task.generator))


def test_batch_dice_does_not_punish_foreground_on_a_slice_that_holds_none():
    """Two slices, class 1 present only in the first (2 of 4 pixels, predicted exactly), the second
    with a faint class-1 probability everywhere. Per-sample Dice (MONAI's default) scores the second
    slice's class 1 as Dice 0 however small the probability; batch Dice pools the two slices."""
    from adversarial_seg.seg.task import supervised_loss_fn

    label = torch.tensor([[[[1, 1], [0, 0]]], [[[0, 0], [0, 0]]]])
    probs = torch.tensor([[[1.0, 1.0], [0.0, 0.0]], [[0.1] * 2] * 2])  # class-1 probability per pixel
    logits = torch.stack([torch.log(1 - probs.clamp(max=1 - 1e-6)), torch.log(probs.clamp(min=1e-6))], dim=1)
    dice_part = {}
    for batch_dice in (False, True):
        total = supervised_loss_fn("dice_ce", batch_dice)(logits, label)
        ce = torch.nn.functional.cross_entropy(logits, label[:, 0])
        dice_part[batch_dice] = float(total - ce)
    # Per sample: class 0 Dice 1 and 2*3.6/(3.6+4), class 1 Dice 1 and ~0 (no reference) -> loss 0.263.
    # Batch: class 0 2*5.6/(5.6+6), class 1 2*2/(2.4+2) -> loss 0.063.
    per_sample = 1 - (1 + 2 * 3.6 / 7.6 + 1 + 0) / 4
    pooled = 1 - (2 * 5.6 / (5.6 + 6) + 2 * 2 / 4.4) / 2
    assert dice_part[False] == pytest.approx(per_sample, abs=2e-3)
    assert dice_part[True] == pytest.approx(pooled, abs=2e-3)


def test_segan_l1_step_is_min_max_on_every_layer(batch):
    """D's loss is minus G's adversarial term on the same batch: D maximises the multi-scale L1
    of its features of the expert and the predicted pair, S minimises it."""
    from adversarial_seg.gan.losses import multiscale_l1

    step = make_step("hybrid", loss={"adversarial": "segan_l1"},
                     model={"discriminator": {"channels": 4, "mask_encoding": "product"}})  # fmt: skip
    task = step.task
    with torch.no_grad():
        out = task.generate(batch)
        expected = multiscale_l1(
            task.discriminate_features(batch, task.real_sample(batch, out)),
            task.discriminate_features(batch, task.fake_sample(batch, out)),
        )
    d_terms = step.discriminator_step(batch, out)
    assert float(d_terms["loss_d"]) == pytest.approx(-float(expected), rel=1e-5)
    d_after = clone_state(task.discriminator)
    g_terms = step.generator_step(batch, task.generate(batch))
    assert states_equal(d_after, clone_state(task.discriminator))  # D frozen in the G step
    assert float(g_terms["loss_adv"]) > 0
    assert float(g_terms["loss_g"]) == pytest.approx(0.5 * float(g_terms["loss_sup"]) + float(g_terms["loss_adv"]))
    assert all(p.grad is not None for p in task.generator.parameters())


def test_feature_matching_adds_a_weighted_generator_term(batch):
    from adversarial_seg.gan.losses import feature_matching

    step = make_step("hybrid", loss={"feature_matching": 2.0})
    task = step.task
    out = task.generate(batch)
    with torch.no_grad():
        real = task.discriminate_features(batch, task.real_sample(batch, out))
        fake = task.discriminate_features(batch, task.fake_sample(batch, out))
    terms = step.generator_step(batch, out)
    assert float(terms["loss_feature_matching"]) == pytest.approx(float(feature_matching(real[:-1], fake[:-1])))
    assert float(terms["loss_g"]) == pytest.approx(
        0.5 * float(terms["loss_sup"]) + float(terms["loss_adv"]) + 2.0 * float(terms["loss_feature_matching"]),
        rel=1e-5,
    )
    assert "loss_feature_matching" not in make_step("hybrid").generator_step(batch, task.generate(batch))


def test_discriminator_uses_lr_d_and_segmentor_lr_g():
    step = make_step("hybrid", train={"lr_g": 3e-3, "lr_d": 2e-5})
    assert [g["lr"] for g in step.optimizer_g.param_groups] == [3e-3]
    assert [g["lr"] for g in step.optimizer_d.param_groups] == [2e-5]
    d_params = {id(p) for p in step.task.discriminator.parameters()}
    assert {id(p) for g in step.optimizer_d.param_groups for p in g["params"]} == d_params


def test_spectral_norm_step_state_round_trips_through_a_weights_only_checkpoint(batch, tmp_path):
    """Spectral norm's power-iteration vectors are buffers: saved, loaded with weights_only, and a
    copy loaded from the checkpoint takes the identical next step."""
    from adversarial_seg.checkpoint import load_checkpoint, save_checkpoint

    sections = {"model": {"discriminator": {"channels": 4, "spectral_norm": True}}}
    step = make_step("hybrid", **sections)
    step([batch])
    state = {"modules": {k: m.state_dict() for k, m in step.task.modules().items()}, "step": step.state_dict()}
    save_checkpoint(state, tmp_path / "c.pt")
    other = make_step("hybrid", **sections)
    loaded = load_checkpoint(tmp_path / "c.pt")
    for name, module in other.task.modules().items():
        module.load_state_dict(loaded["modules"][name])
    other.load_state_dict(loaded["step"])
    a, b = step([batch]), other([batch])
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert states_equal(clone_state(step.task.discriminator), clone_state(other.task.discriminator))
