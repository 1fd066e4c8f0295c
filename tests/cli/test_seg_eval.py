"""seg-eval end to end: two schemes on the same phantom folds, a single run, an incomplete run."""

import base64
import csv
import json
import re
import shutil

import numpy as np
import pytest
import yaml
from scipy.stats import wilcoxon

from adversarial_seg.cli.seg_eval import main as evaluate
from adversarial_seg.data.phantoms import phantom_data_config, write_prostate_phantoms
from adversarial_seg.provenance import git_commit

from .conftest import train_tiny


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    base = tmp_path_factory.mktemp("eval")
    root = write_prostate_phantoms(base / "phantoms", cases=6, seed=2, size=(48, 40, 5))
    data = {**phantom_data_config("prostate", root), "size": [48, 48]}
    return train_tiny(base, data, schemes=["ce", "hybrid"], train={"epochs": 2},
                      metrics={"specificity_region": "gland"})  # fmt: skip


def root_of(study):
    return yaml.safe_load((study / "ce" / "config.yaml").read_text())["data"]["root"]


def test_two_schemes_compared_case_by_case(study, capsys):
    assert evaluate([str(study)]) == 0
    out = study / "comparison"
    body = json.loads((out / "evaluation.json").read_text())
    assert set(body["runs"]) == {"ce", "hybrid"} and all(r["complete"] for r in body["runs"].values())
    assert all(r["git_commit"] == git_commit() for r in body["runs"].values())  # from each fold_done.json
    # the p-values are Wilcoxon's on the per-case differences in the recomputed rows
    rows = list(csv.DictReader(open(out / "evaluation_cases.csv")))
    dsc = {
        run: {r["case"]: float(r["dsc"]) for r in rows if r["run"] == run and r["class"] == "gland"}
        for run in ("ce", "hybrid")
    }
    differences = [dsc["hybrid"][c] - dsc["ce"][c] for c in sorted(dsc["ce"])]
    row = next(r for r in body["comparison"] if r["class"] == "gland" and r["metric"] == "dsc")
    assert row["n_pairs"] == 6
    assert row["p_value"] == pytest.approx(wilcoxon(differences, zero_method="wilcox").pvalue)
    block = [r for r in body["comparison"] if r["class"] == "gland"]
    p = sorted(r["p_value"] for r in block)
    assert min(r["p_holm"] for r in block) == pytest.approx(min(1.0, len(p) * p[0]))
    # the Markdown comparison table in Kohl's layout, and the report's provenance
    markdown = (out / "report.md").read_text()
    assert "| run | gland dsc | gland sensitivity | gland specificity | lesion dsc |" in markdown
    ce_mean = np.mean(list(dsc["ce"].values()))
    assert re.search(rf"\| ce \| {ce_mean:.3f} ± ", markdown)
    assert "zero_method='wilcox'" in markdown and "Holm" in markdown
    # calibration side by side: per class and stratum one row per run, ce first (issue 19)
    assert "## Calibration" in markdown and set(body["calibration"]) == {"ce", "hybrid"}
    assert re.search(
        r"\| gland \| in region \(gland\) \| ce \|.*\n\| gland \| in region \(gland\) \| hybrid \|", markdown
    )
    assert (out / "figures" / "ce_reliability.png").is_file() and (out / "figures" / "hybrid_review.png").is_file()
    for figure in re.findall(r"\]\((figures/[^)]+)\)", markdown):
        assert (out / figure).is_file()
    # every image in the HTML is embedded: no file or network reference
    page = (out / "report.html").read_text()
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    for source in sources:
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(href|src)="(http|file|/|\.)', page)
    hashes = [
        yaml.safe_load((study / run / "config.yaml").read_text())["provenance"]["config_hash"]
        for run in ("ce", "hybrid")
    ]
    for text in (*(h[:12] for h in hashes), "2 folds, 6 cases", str(root_of(study))):
        assert text in page
    printed = capsys.readouterr().out.splitlines()
    assert "ce" in printed and "hybrid" in printed  # each run's name heads its printed table


def test_one_run_report_lands_in_its_report_folder(study):
    assert evaluate([str(study / "hybrid"), "--format", "md,json"]) == 0
    report = study / "hybrid" / "report"
    assert (report / "report.md").is_file() and not (report / "report.html").exists()
    classes = json.loads((report / "evaluation.json").read_text())["runs"]["hybrid"]["classes"]
    gland = classes["gland"]
    # recomputed from the predictions, equal to what seg-train scored at the end of each fold
    assert gland["overall"]["dsc"]["mean"] == pytest.approx(
        json.loads((report / "summary.json").read_text())["classes"]["gland"]["overall"]["dsc"]["mean"], abs=1e-5
    )
    assert {"median", "q25", "q75"} <= set(gland["overall"]["hd95_mm"])
    assert set(gland["fold_statistics"]) == {"0", "1"} and "specificity_in_region" in gland["overall"]
    assert gland["lesions"]["reference_lesions"] >= 6


def test_missing_fold_and_case_are_named_and_the_report_marked_incomplete(study, tmp_path, capsys):
    run = tmp_path / "ce"
    shutil.copytree(study / "ce", run)
    (run / "fold_1" / "fold_done.json").unlink()
    splits = json.loads((run / "splits.json").read_text())
    lost = splits[0]["val"][0]
    next((run / "fold_0" / "predictions").glob(f"{lost}.nii*")).unlink()
    assert evaluate([str(run)]) == 1
    err = capsys.readouterr().err
    assert "fold 1 has not finished" in err and f"case {lost} (fold 0): no prediction" in err
    body = json.loads((run / "report" / "evaluation.json").read_text())["runs"]["ce"]
    assert not body["complete"] and body["classes"]["gland"]["n_cases"] == len(splits[0]["val"]) - 1
    assert "INCOMPLETE" in (run / "report" / "report.md").read_text()


def test_runs_on_different_splits_are_refused(study, tmp_path, capsys):
    other = tmp_path / "hybrid"
    shutil.copytree(study / "hybrid", other)
    splits = json.loads((other / "splits.json").read_text())
    splits[0]["val"], splits[1]["val"] = splits[1]["val"], splits[0]["val"]
    (other / "splits.json").write_text(json.dumps(splits))
    assert evaluate([str(study / "ce"), str(other), "--output", str(tmp_path / "cmp")]) == 2
    assert "used different splits" in capsys.readouterr().err
    assert not (tmp_path / "cmp").exists()


def test_the_discriminator_probe_is_logged_and_reported_per_run(study):
    """hybrid logs D's held-out AUC each epoch (on the fold's validation cases, with select: last);
    ce has no discriminator and no column. seg-eval shows the last epoch's mean over folds."""
    for fold in (0, 1):
        hybrid = list(csv.DictReader(open(study / "hybrid" / f"fold_{fold}" / "log.csv")))
        assert len(hybrid) == 2 and all(0 <= float(r["d_auc"]) <= 1 for r in hybrid)
        assert all(float(r["d_auc_pairs"]) > 0 for r in hybrid)
        ce = list(csv.DictReader(open(study / "ce" / f"fold_{fold}" / "log.csv")))
        assert "d_auc" not in ce[0]
    assert evaluate([str(study), "--output", str(study / "probe_report")]) == 0
    body = json.loads((study / "probe_report" / "evaluation.json").read_text())["runs"]
    assert body["ce"]["discriminator_probe"] is None
    probe = body["hybrid"]["discriminator_probe"]
    last = [float(list(csv.DictReader(open(study / "hybrid" / f"fold_{k}" / "log.csv")))[-1]["d_auc"]) for k in (0, 1)]
    assert probe["folds"] == {"0": pytest.approx(last[0]), "1": pytest.approx(last[1])} and probe["epoch"] == 2
    assert probe["mean"] == pytest.approx(np.mean(last)) and probe["min"] == min(last)
    markdown = (study / "probe_report" / "report.md").read_text()
    assert "| train time | D AUC | complete |" in markdown
    assert f"| {np.mean(last):.3f} [{min(last):.3f}, {max(last):.3f}] | yes |" in markdown
    assert re.search(r"\| ce \|.*\| n/a \| yes \|", markdown)


def test_probe_script_trains_a_fresh_discriminator_on_frozen_predictions(study):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "probe_discriminator.py"
    done = subprocess.run(
        [sys.executable, str(script), str(study / "hybrid"), "--fold", "1", "--steps", "30", "--encoding", "onehot"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    splits = json.loads((study / "hybrid" / "splits.json").read_text())[1]
    assert result["fold"] == 1 and result["encoding"] == "onehot" and result["steps"] == 30
    assert result["val_pairs"] >= len(splits["val"]) and result["train_pairs"] >= len(splits["train"])
    assert 0 <= result["val_auc"] <= 1 and 0 <= result["train_auc"] <= 1
    assert result["run_d_val_auc"] is None  # the run's D used another encoding (scaled)
    own = subprocess.run([sys.executable, str(script), str(study / "hybrid"), "--steps", "5"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert own.returncode == 0, own.stderr
    own_result = json.loads(own.stdout.strip().splitlines()[-1])
    assert 0 <= own_result["run_d_val_auc"] <= 1 and 0 <= own_result["run_d_val_auc_hard"] <= 1
    assert own_result["harden"] is False
    hard = subprocess.run([sys.executable, str(script), str(study / "hybrid"), "--steps", "5", "--harden"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert hard.returncode == 0, hard.stderr
    hard_result = json.loads(hard.stdout.strip().splitlines()[-1])
    # The run's own D scores the same soft and hardened predictions whether or not the fresh D is hardened.
    assert hard_result["harden"] is True and hard_result["run_d_val_auc"] == own_result["run_d_val_auc"]
    assert hard_result["run_d_val_auc_hard"] == own_result["run_d_val_auc_hard"]
    bad = subprocess.run([sys.executable, str(script), str(study / "hybrid"), "--fold", "7"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 2 and "--fold 7" in bad.stderr


def test_hardened_logits_give_the_exact_one_hot_mask_of_their_argmax():
    import importlib.util
    from pathlib import Path

    import torch

    path = Path(__file__).resolve().parents[2] / "scripts" / "probe_discriminator.py"
    spec = importlib.util.spec_from_file_location("probe_discriminator", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    logits = torch.tensor([[[[2.0, -1.0]], [[1.5, 0.3]], [[0.0, 0.2]]]])  # (1, 3 classes, 1, 2 pixels)
    mask = torch.softmax(module.hardened(logits), dim=1)
    expected = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]], [[0.0, 0.0]]]])  # argmax: class 0, class 1
    assert torch.equal(mask, expected)
