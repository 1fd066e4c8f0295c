"""GAN result records over several seeds: mean ± sample std per metric, the per-seed values, the
rendered tables (one-seed records still render as before) and scripts/bench/gan_results.py --seeds."""

import importlib.util
import json
import math
from pathlib import Path

import pytest

from adversarial_seg.gan.report import aggregate_seeds, render_gan_results

REPO = Path(__file__).resolve().parents[2]
REFERENCE = {"modes_covered": 8, "high_quality": 0.993, "parzen_ll": 2.9, "parzen_se": 0.02}


def ring_run(seed, modes, quality, ll, seconds):
    return {
        "kind": "run", "name": "ring_x", "variant": "wgan_gp", "dataset": "ring", "adversarial": "wasserstein",
        "seed": seed, "config_hash": f"hash{seed}", "git_commit": "abcdef1234567890", "epochs": 500,
        "train_seconds": seconds, "eval_seconds": 5.0, "wall_seconds": seconds + 5, "warnings": [], "command": f"gan-train --set seed={seed}",
        "metrics": {"modes_covered": modes, "high_quality": quality, "parzen_ll": ll, "parzen_se": 0.1},
        "reference": REFERENCE, "last_epoch": {"epoch": 500},
    }  # fmt: skip


RUNS = [ring_run(0, 8, 0.90, 1.0, 80.0), ring_run(2, 8, 1.00, 2.0, 100.0), ring_run(1, 7, 0.95, 3.0, 90.0)]


def test_mean_and_sample_std_over_seeds():
    record = aggregate_seeds(RUNS)
    assert record["seeds"] == [0, 1, 2]  # sorted, whatever the order of the runs
    assert record["metrics_values"]["modes_covered"] == [8, 7, 8]
    assert record["metrics"]["modes_covered"] == pytest.approx(23 / 3)
    assert record["metrics_std"]["modes_covered"] == pytest.approx(math.sqrt(1 / 3))  # ddof 1: (1/9+4/9+1/9)/2
    assert record["metrics"]["high_quality"] == pytest.approx(0.95)
    assert record["metrics_std"]["high_quality"] == pytest.approx(0.05)
    assert record["metrics"]["parzen_ll"] == pytest.approx(2.0) and record["metrics_std"]["parzen_ll"] == pytest.approx(
        1.0
    )
    assert record["train_seconds"] == pytest.approx(90.0)
    assert [r["seed"] for r in record["per_seed"]] == [0, 1, 2]
    assert [r["config_hash"] for r in record["per_seed"]] == ["hash0", "hash1", "hash2"]
    assert record["reference"] == REFERENCE and "seed" not in record and "last_epoch" not in record
    assert "eval_seconds" not in record and [r["eval_seconds"] for r in record["per_seed"]] == [5.0] * 3


def test_one_seed_or_a_repeated_seed_is_refused():
    with pytest.raises(ValueError, match="two or more"):
        aggregate_seeds(RUNS[:1])
    with pytest.raises(ValueError, match="appears twice"):
        aggregate_seeds([RUNS[0], RUNS[0]])


def test_tables_show_mean_and_std_for_several_seeds_and_one_seed_rows_as_before(tmp_path):
    record = dict(aggregate_seeds(RUNS), command="python scripts/bench/gan_results.py ring_x --seeds 0 1 2")
    single = dict(ring_run(0, 6, 0.936, 1.5, 29.0), name="ring_y", command="gan-train y")
    (tmp_path / "ring_x.json").write_text(json.dumps(record))
    (tmp_path / "ring_y.json").write_text(json.dumps(single))
    lines = render_gan_results(sorted(tmp_path.glob("*.json"))).splitlines()
    assert (
        "| ring_x (seeds 0, 1, 2) | wgan_gp | wasserstein | 7.7 ± 0.6 / 8 (8, 7, 8) | 0.950 ± 0.050 | 2.0 ± 1.0 | 90 s per seed (500 epochs) |"
        in lines
    )
    assert "| ring_y | wgan_gp | wasserstein | 6 / 8 | 0.936 | 1.5 ± 0.1 | 29 s (500 epochs) |" in lines
    provenance = "| ring_x | `python scripts/bench/gan_results.py ring_x --seeds 0 1 2` | abcdef123456 | hash0 (seed 0), hash1 (seed 1), hash2 (seed 2) |"
    assert provenance in lines
    assert any(line.startswith("A row measured at several seeds shows the mean ± sample std") for line in lines)


def test_one_seed_records_render_without_the_seeds_note(tmp_path):
    (tmp_path / "ring_y.json").write_text(json.dumps(dict(ring_run(0, 6, 0.936, 1.5, 29.0), command="c")))
    assert "several seeds" not in render_gan_results([tmp_path / "ring_y.json"])


def load_bench():
    spec = importlib.util.spec_from_file_location("gan_results", REPO / "scripts" / "bench" / "gan_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_script_runs_each_seed_and_records_the_aggregate(tmp_path, monkeypatch):
    bench = load_bench()
    calls = []

    def fake_run(name, seed=None):
        calls.append((name, seed))
        return ring_run(seed, {0: 8, 1: 7, 2: 8}[seed], 0.95, 2.0, 90.0)

    monkeypatch.setattr(bench, "run_gan_train", fake_run)
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    bench.run_one("ring_x", [0, 1, 2])
    assert calls == [("ring_x", 0), ("ring_x", 1), ("ring_x", 2)]
    record = json.loads((tmp_path / "ring_x.json").read_text())
    assert record["metrics_values"]["modes_covered"] == [8, 7, 8]
    assert record["command"] == "python scripts/bench/gan_results.py ring_x --seeds 0 1 2"
    assert record["wall_seconds"] == pytest.approx(3 * 95.0)


def test_bench_script_arguments():
    args = load_bench().parse_args(["ring_x", "ring_y", "--seeds", "0", "1", "2"])
    assert (args.names, args.seeds, args.render_only) == (["ring_x", "ring_y"], [0, 1, 2], False)
    assert load_bench().parse_args([]).seeds is None


@pytest.mark.parametrize("argv", [["ring_x", "--seeds", "1"], ["--seeds", "1", "1"], ["--render-only", "ring_x"]])
def test_bench_script_refuses_bad_arguments(argv):
    with pytest.raises(SystemExit) as exc:
        load_bench().parse_args(argv)
    assert exc.value.code == 2


def test_bench_script_passes_the_seed_to_gan_train(tmp_path, monkeypatch):
    """The seed reaches gan-train as --set seed=S, in a run folder of its own."""
    bench = load_bench()
    seen = {}

    def fake_subprocess_run(command, **kwargs):
        seen["command"] = command
        output = bench.REPO / command[command.index("--output") + 1]
        output.mkdir(parents=True, exist_ok=True)
        (output / "metrics.json").write_text(json.dumps({"metrics": {}, "warnings": []}))
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(bench, "REPO", tmp_path)
    monkeypatch.setattr(bench.subprocess, "run", fake_subprocess_run)
    body = bench.run_gan_train("ring_x", seed=2)
    assert seen["command"][-2:] == ["--set", "seed=2"]
    assert "runs/gan_results/ring_x_seed2" in seen["command"]
    assert body["command"].startswith("OMP_NUM_THREADS=1 gan-train --config configs/gan/ring_x.yaml")


def paired_run(name, variant, metrics, reference):
    return {"kind": "run", "name": name, "variant": variant, "dataset": "ph2", "adversarial": "non_saturating",
            "seed": 0, "config_hash": "h", "git_commit": "abc", "epochs": 60, "train_seconds": 120.0,
            "command": f"gan-train --config configs/gan/{name}.yaml", "metrics": metrics, "reference": reference}  # fmt: skip


def test_image_to_image_and_fcn_records_render_their_tables(tmp_path):
    bench = load_bench()
    run = tmp_path / "run"
    run.mkdir()
    body = paired_run("srgan", "srgan", {"l1": 0.0123, "psnr": 31.456, "ssim": 0.9012},
                      {"l1": 0.02, "psnr": 30.0, "ssim": 0.88})  # fmt: skip
    (run / "metrics.json").write_text(json.dumps({**body, "eval_seconds": 3.0}))
    record = bench.record_run("srgan", run)
    assert record["wall_seconds"] == 123.0 and record["command"] == "gan-train --config configs/gan/srgan.yaml"
    fcn = tmp_path / "fcn"
    fcn.mkdir()
    rows = {"real": {"cases": 23, "dsc_mean": 0.91, "dsc_std": 0.05, "frechet_distance": 0.0},
            "bicubic": {"cases": 23, "dsc_mean": 0.874, "dsc_std": 0.1, "frechet_distance": 3.21}}  # fmt: skip
    (fcn / "fcn_score.json").write_text(json.dumps({"segmentor": "runs/ph2/ce", "splits": ["test"], "rows": rows}))
    fcn_record = bench.record_fcn("srgan_fcn", fcn, "python scripts/fcn_score.py ...")
    assert fcn_record["kind"] == "fcn_score" and fcn_record["rows"] == rows
    paths = []
    for name, content in (("srgan", record), ("srgan_fcn", fcn_record)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(content))
    text = render_gan_results(paths)
    assert "| bicubic upsampling (srgan's sources) | – | – | 0.0200 | 30.00 | 0.8800 | – |" in text
    assert "| srgan | srgan | non_saturating | 0.0123 | 31.46 | 0.9012 | 120 s (60 epochs) |" in text
    assert "| bicubic | 23 | 0.874 ± 0.100 | 3.21 |" in text and "### FCN score: srgan_fcn" in text
    with pytest.raises(SystemExit, match="metrics.json is missing"):
        bench.record_run("x", tmp_path / "absent")


def test_a_truncation_result_is_recorded_with_its_command_and_renders_its_curve(tmp_path):
    bench = load_bench()
    rows = [{"threshold": 0.5, "class_accuracy": 1.0, "classifier_score": 9.861, "frechet_distance": 90.71,
             "spread_ratio": 0.8464},
            {"threshold": None, "class_accuracy": 0.98, "classifier_score": 9.5, "frechet_distance": 41.29,
             "spread_ratio": 0.9363}]  # fmt: skip
    result = tmp_path / "t.json"
    result.write_text(json.dumps({"kind": "truncation", "run": "runs/b", "config_hash": "h1", "seed": 0,
                                  "samples": 100, "rows": rows, "machine": {"commit": "abc123"}}))  # fmt: skip
    record = bench.record_result("biggan_truncation", result, "python scripts/bench/truncation_curve.py runs/b")
    assert (record["kind"], record["git_commit"], record["name"]) == ("truncation", "abc123", "biggan_truncation")
    (tmp_path / "biggan_truncation.json").write_text(json.dumps(record))
    text = render_gan_results([tmp_path / "biggan_truncation.json"])
    assert "### Truncation curve: biggan_truncation" in text
    assert "| 0.5 | 1.000 | 9.86 | 90.7 | 0.846 |" in text and "| none | 0.980 | 9.50 | 41.3 | 0.936 |" in text
    assert "| biggan_truncation | `python scripts/bench/truncation_curve.py runs/b` | abc123 | h1 |" in text
    (tmp_path / "no_kind.json").write_text("{}")
    with pytest.raises(SystemExit, match="has no 'kind'"):
        bench.record_result("x", tmp_path / "no_kind.json", "c")
    with pytest.raises(SystemExit, match="is missing"):
        bench.record_result("x", tmp_path / "absent.json", "c")


def test_cyclegan_stackgan_and_transfer_records_render_their_tables(tmp_path):
    base = {"kind": "run", "adversarial": "least_squares", "seed": 0, "config_hash": "h", "git_commit": "abc",
            "epochs": 10, "train_seconds": 600.0, "command": "gan-train ..."}  # fmt: skip
    cycle = {**base, "name": "cyclegan_fold0", "variant": "cyclegan", "dataset": "sites",
             "held_out": {"a": ["c1", "c2"], "b": ["c3"]}, "reference": {},
             "metrics": {"cycle_l1_a": 0.01234, "cycle_psnr_a": 30.123, "cycle_l1_b": 0.02, "cycle_psnr_b": 28.0}}  # fmt: skip
    stack = {**base, "name": "stackgan_stage2", "variant": "stackgan", "dataset": "ph2_text", "stage": 2,
             "metrics": {"agreement": 0.55, "frechet_distance": 12.34, "spread_ratio": 0.8},
             "reference": {"agreement": 0.63, "frechet_distance": 5.0, "spread_ratio": 0.95}}  # fmt: skip
    rows = {key: {"per_case": {}, "dsc_mean": {"pz": pz, "gland": g}, "dsc_std": {"pz": 0.1, "gland": 0.05}}
            for key, pz, g in (("source_only/as_is", 0.2, 0.5), ("source_only/translated", 0.3, 0.6),
                               ("on_target/as_is", 0.6, 0.8))}  # fmt: skip
    comparison = {"pz": {"difference": 0.1, "wilcoxon_p": 0.04, "gap": 0.4, "gap_closed": 0.25},
                  "gland": {"difference": 0.1, "wilcoxon_p": 0.2, "gap": -0.3, "gap_closed": None}}  # fmt: skip
    transfer = {"kind": "cyclegan_transfer", "name": "cross_site", "command": "python scripts/cyclegan_transfer.py",
                "git_commit": "abc", "cases": ["c3"], "rows": rows, "translated_vs_as_is": comparison}  # fmt: skip
    paths = []
    for name, body in (("a", cycle), ("b", stack), ("c", transfer)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(body))
    text = render_gan_results(paths)
    assert "| cyclegan_fold0 | 2 / 1 | 0.0123 | 30.12 | 0.0200 | 28.00 | 600 s (10 epochs) |" in text
    assert "| real held-out images | – | 0.630 | 5.0 | 0.950 | – |" in text
    assert "| stackgan_stage2 | 2 | 0.550 | 12.3 | 0.800 | 600 s (10 epochs) |" in text
    assert "| source_only/translated | 0.300 ± 0.100 | 0.600 ± 0.050 |" in text
    assert "| translated - as is (Wilcoxon p) | +0.100 (p 0.04) | +0.100 (p 0.2) |" in text
    assert "| share of the cross-site gap closed | 0.25 of 0.400 | no gap (on target -0.300) |" in text


def test_srgan_on_prostate_slices_and_its_segmentation_render_their_own_tables(tmp_path):
    sr = {"kind": "run", "name": "srgan_prostate", "variant": "srgan", "dataset": "sites", "adversarial": "non_saturating",
          "seed": 0, "config_hash": "h", "git_commit": "abc", "epochs": 20, "train_seconds": 300.0, "command": "gan-train ...",
          "metrics": {"l1": 0.02, "psnr": 30.5, "ssim": 0.8}, "reference": {"l1": 0.03, "psnr": 29.25, "ssim": 0.75}}  # fmt: skip
    rows = {key: {"per_case": {}, "dsc_mean": {"pz": pz}, "dsc_std": {"pz": 0.1}}
            for key, pz in (("full_resolution", 0.6), ("bicubic", 0.5), ("srgan_prostate", 0.55))}  # fmt: skip
    result = {"kind": "sr_segmentation", "name": "sr_seg", "command": "python scripts/sr_segmentation.py", "scale": 4,
              "segmentor": "seg", "cases": ["c1", "c2"], "rows": rows,
              "vs_bicubic": {"srgan_prostate": {"pz": {"difference": 0.05, "wilcoxon_p": 0.031}}}}  # fmt: skip
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path, body in zip(paths, (sr, result), strict=True):
        path.write_text(json.dumps(body))
    text = render_gan_results(paths)
    assert "### Prostate T2 super-resolution x4 (held-out slices)" in text and "CycleGAN" not in text
    assert "| bicubic upsampling (srgan's sources) | – | – | 0.0300 | 29.25 | 0.7500 | – |" in text
    assert "| srgan_prostate | srgan | non_saturating | 0.0200 | 30.50 | 0.8000 | 300 s (20 epochs) |" in text
    assert "on the 2 held-out volumes of the srgan runs, rebuilt from their x4 downsampled" in text
    assert "| bicubic | 0.500 ± 0.100 | – |" in text
    assert "| srgan_prostate | 0.550 ± 0.100 | +0.050 (p 0.031) |" in text
