"""DANN and cross-site training: the gradient reversal layer and the domain terms by hand, the
folds' source and target cases, the segmentor's encoder receiving the reversed domain gradient,
and seg-train end to end on phantoms of two sites."""

import csv
import json
import math

import pytest
import torch
import yaml

from adversarial_seg.checkpoint import load_checkpoint
from adversarial_seg.cli.seg_eval import main as evaluate
from adversarial_seg.cli.seg_train import main
from adversarial_seg.config import ConfigError, config_from_mapping
from adversarial_seg.data.layouts import CaseRecord
from adversarial_seg.data.phantoms import phantom_data_config
from adversarial_seg.runtime import Precision
from adversarial_seg.seg.domain import DomainClassifier, domain_terms, reverse_gradient
from adversarial_seg.seg.fold import fold_cases, unlabelled_target_cases
from adversarial_seg.seg.task import build_segmentation_step

from ..data.conftest import two_sites  # noqa: F401  (the fixture)


def test_gradient_reversal_is_the_identity_forward_and_minus_lambda_backward():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = reverse_gradient(x, 0.3)
    assert torch.equal(y, x)
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([-0.3, -0.6, -0.9]))


def test_domain_terms_by_hand():
    terms = domain_terms(torch.tensor([0.0, 2.0]), torch.tensor([0.0]))  # sources labelled 0, the target 1
    source = (math.log(2) + math.log(1 + math.e**2)) / 2
    assert float(terms["loss_domain"]) == pytest.approx(0.5 * (source + math.log(2)), rel=1e-6)
    assert float(terms["domain_accuracy"]) == 0.0  # no source logit below 0, no target logit above 0
    right = domain_terms(torch.tensor([-1.0]), torch.tensor([1.0, -1.0]))
    assert float(right["domain_accuracy"]) == pytest.approx(0.5 * (1.0 + 0.5))


def records_of(sites: dict[str, str]) -> dict[str, CaseRecord]:
    return {case: CaseRecord(case, [], None, case, None, site) for case, site in sites.items()}


def test_folds_train_on_source_cases_and_score_target_cases():
    records = records_of({"a1": "A", "a2": "A", "b1": "B", "b2": "B", "a3": "A", "b3": "B"})
    folds = [{"train": ["a1", "a2", "b1", "b2"], "val": ["a3", "b3"]}]
    config = config_from_mapping({"domain": {"column": "site", "source": ["A"], "target": ["B"], "adapt": 0.1}})
    train, val, inner = fold_cases(config, folds, 0, records)
    assert (train, val, inner) == (["a1", "a2"], ["b3"], None)
    assert unlabelled_target_cases(config, folds, 0, records) == ["b1", "b2"]
    source_only = config_from_mapping({"domain": {"column": "site", "source": ["A"], "target": ["B"]}})
    assert fold_cases(source_only, folds, 0, records)[:2] == (["a1", "a2"], ["b3"])
    assert unlabelled_target_cases(source_only, folds, 0, records) == []
    on_target = config_from_mapping({"domain": {"column": "site", "source": ["B"], "target": ["B"]}})
    assert fold_cases(on_target, folds, 0, records)[:2] == (["b1", "b2"], ["b3"])


def test_dann_needs_two_sites_and_a_unet():
    with pytest.raises(ConfigError, match="disjoint"):
        config_from_mapping({"domain": {"column": "site", "source": ["A"], "target": ["A"], "adapt": 0.1}})
    with pytest.raises(ConfigError, match="bottleneck"):
        config_from_mapping({"model": {"segmentor": {"name": "SegResNet"}},
                             "domain": {"column": "site", "source": ["A"], "target": ["B"], "adapt": 0.1}})  # fmt: skip


def tiny_step(adapt: float):
    config = config_from_mapping({
        "scheme": "ce",
        "model": {"segmentor": {"name": "UNet", "channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 0}},
        "domain": {"column": "site", "source": ["A"], "target": ["B"], "adapt": adapt, "classifier_width": 4},
    })  # fmt: skip
    torch.manual_seed(0)
    return build_segmentation_step(config, 2, 1, 2, torch.device("cpu"), Precision("cpu", None))


def test_the_classifier_does_not_see_the_features_scale():
    """Inflating or shifting the features cannot fool it: the encoder has to change their pattern."""
    torch.manual_seed(0)
    classifier = DomainClassifier(2, 4, width=8)
    features = torch.randn(3, 4, 5, 5)
    torch.testing.assert_close(classifier(10 * features + 3), classifier(features), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(classifier(features.flip(-1) * features), classifier(features))


def test_the_encoder_gets_the_reversed_domain_gradient():
    """The segmentor's parameter gradients are those of the supervised loss minus adapt times those
    of the domain loss, while the classifier descends the domain loss itself."""
    g = torch.Generator().manual_seed(1)
    batch = {"image": torch.randn(2, 1, 16, 16, generator=g), "label": torch.randint(0, 2, (2, 1, 16, 16), generator=g),
             "target_image": torch.randn(2, 1, 16, 16, generator=g) + 1.0}  # fmt: skip
    step = tiny_step(adapt=0.5)
    task = step.task
    segmentor, classifier = task.generator, task.domain_classifier
    params = list(segmentor.parameters())
    # The two terms' gradients, each on its own (the reversal at weight 1 flips the domain one).
    sup_grads = torch.autograd.grad(task.supervised_loss(batch, task.generate(batch)), params)
    task.generate(batch)
    task.adapt = -1.0  # reverse_gradient(x, -1) passes the gradient through unchanged
    domain = task.extra_generator_losses(batch, None)["loss_domain"]
    domain_grads = torch.autograd.grad(domain, params + list(classifier.parameters()), allow_unused=True)
    task.adapt = 0.5
    terms = step([batch])
    assert {"loss_domain", "domain_accuracy"} <= set(terms)
    for p, sup, dom in zip(params, sup_grads, domain_grads, strict=False):
        expected = sup + (-0.5 * dom if dom is not None else 0)
        torch.testing.assert_close(p.grad, expected, rtol=1e-4, atol=1e-6)
    for p, dom in zip(classifier.parameters(), domain_grads[len(params) :], strict=True):
        torch.testing.assert_close(p.grad, dom, rtol=1e-4, atol=1e-6)


def write_config(path, root, domain, epochs=1):
    config = {
        "data": {**phantom_data_config("prostate", root), "size": [64, 64], "stratify": "site"},
        "model": {"segmentor": {"name": "UNet", "channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 0}},
        "scheme": "ce", "train": {"epochs": epochs, "batch_size": 8}, "cv": {"folds": 2},
        "metrics": {"specificity_region": "gland"}, "domain": domain,
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


def test_seg_train_with_dann_trains_on_site_a_and_scores_site_b(two_sites, tmp_path):  # noqa: F811
    root, site = two_sites
    domain = {"column": "site", "source": ["A"], "target": ["B"], "adapt": 0.1, "classifier_width": 8}
    run = tmp_path / "dann"
    assert main(["--config", str(write_config(tmp_path / "dann.yaml", root, domain)), "--output", str(run),
                 "--no-progress"]) == 0  # fmt: skip
    for fold in (0, 1):
        done = json.loads((run / f"fold_{fold}" / "fold_done.json").read_text())
        assert done["train_cases"] and {site[c] for c in done["train_cases"]} == {"A"}
        scored = {row["case"] for row in csv.DictReader(open(run / f"fold_{fold}" / "cases.csv"))}
        assert scored and {site[c] for c in scored} == {"B"}
        (row,) = list(csv.DictReader(open(run / f"fold_{fold}" / "log.csv")))
        assert math.isfinite(float(row["loss_domain"])) and 0 <= float(row["domain_accuracy"]) <= 1
        assert float(row["domain_weight"]) == pytest.approx(0.1)  # constant without domain.adapt_ramp
        assert "domain_classifier" in load_checkpoint(run / f"fold_{fold}" / "checkpoint_last.pt")["modules"]
    source_only = tmp_path / "source_only"
    assert main(["--config", str(write_config(tmp_path / "so.yaml", root, {**domain, "adapt": 0.0})),
                 "--output", str(source_only), "--no-progress"]) == 0  # fmt: skip
    (row,) = list(csv.DictReader(open(source_only / "fold_0" / "log.csv")))
    assert "loss_domain" not in row
    # seg-eval compares the two case by case on the target site's cases
    assert evaluate([str(run), str(source_only), "--output", str(tmp_path / "compare")]) == 0
    runs = json.loads((tmp_path / "compare" / "evaluation.json").read_text())["runs"]
    for name in ("dann", "source_only"):  # site A's validation cases were never predicted: not missing
        assert runs[name]["complete"] and runs[name]["missing"] == []


def test_an_unknown_site_exits_2_naming_the_key(two_sites, tmp_path, capsys):  # noqa: F811
    root, _ = two_sites
    domain = {"column": "site", "source": ["A"], "target": ["C"], "adapt": 0.1}
    run = tmp_path / "bad"
    assert main(["--config", str(write_config(tmp_path / "bad.yaml", root, domain)), "--output", str(run)]) == 2
    err = capsys.readouterr().err
    assert "domain.target names sites ['C']" in err and "['A', 'B']" in err
    assert not run.exists() or not any(run.iterdir())  # nothing written


def test_the_ramp_raises_the_reversal_weight_epoch_by_epoch_as_ganin_et_al(two_sites, tmp_path):  # noqa: F811
    root, _ = two_sites
    domain = {"column": "site", "source": ["A"], "target": ["B"], "adapt": 0.2, "adapt_ramp": True,
              "classifier_width": 8}  # fmt: skip
    run = tmp_path / "ramp"
    config = write_config(tmp_path / "ramp.yaml", root, domain, epochs=3)
    assert main(["--config", str(config), "--output", str(run), "--no-progress", "--fold", "0"]) == 0
    rows = list(csv.DictReader(open(run / "fold_0" / "log.csv")))
    # epoch e of 3 trains at 0.2 x (2 / (1 + exp(-10 e / 3)) - 1)
    expected = [0.2 * (2 / (1 + math.exp(-10 * e / 3)) - 1) for e in range(3)]
    assert [float(r["domain_weight"]) for r in rows] == pytest.approx(expected, abs=1e-6)
    assert expected[0] == 0.0 and expected[1] == pytest.approx(0.2 * 0.9311, abs=1e-4)
