"""``gan-train``: train a classic GAN variant on the bundled digits or the ring of Gaussians.

    gan-train --config configs/gan/dcgan.yaml [--output RUN] [--set key=value ...]
              [--device auto|cpu|cuda] [--resume]

Exit codes (DESIGN.md): 0 done; 2 nothing was done because the input is wrong (config, arguments,
run directory), stated in one sentence naming the key or file; 1 training or evaluation failed.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from adversarial_seg.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, add_device_argument, fail
from adversarial_seg.config import ConfigError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse exits 2 too; keep it one sentence
        self.exit(EXIT_BAD_INPUT, f"error: {message}; see gan-train --help\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(
        prog="gan-train", description="Train a classic GAN variant (vanilla, dcgan, cgan, infogan, wgan, wgan_gp)."
    )
    parser.add_argument("--config", required=True, type=Path, help="YAML config, e.g. configs/gan/dcgan.yaml")
    parser.add_argument("--output", type=Path, default=None, help="run directory (default runs/gan/<config name>)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. train.epochs=5",
    )
    add_device_argument(parser)
    parser.add_argument("--resume", action="store_true", help="continue the run in --output from its checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def prepare(args: argparse.Namespace):
    """Validate everything up front; raises ConfigError (or ValueError) with one sentence."""
    from adversarial_seg.gan.config import load_gan_config
    from adversarial_seg.gan.experiment import resume_digest, stored_resume_hash
    from adversarial_seg.runtime import resolve_device

    config = load_gan_config(args.config, args.overrides)
    device = resolve_device(args.device)
    run_dir = args.output or Path("runs") / "gan" / args.config.stem
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--output {run_dir} is a file; choose a directory")
    has_checkpoint = (run_dir / "checkpoint_last.pt").is_file()
    if has_checkpoint and not args.resume:
        raise ConfigError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --output")
    if args.resume and not has_checkpoint:
        raise ConfigError(
            f"--resume: {run_dir} has no checkpoint_last.pt to continue; drop --resume to start a new run"
        )
    stored = stored_resume_hash(run_dir)
    if args.resume and stored is not None and stored != resume_digest(config):
        raise ConfigError(
            f"--resume: the config differs from the one {run_dir}/config.yaml was trained with "
            "(only train.epochs may change); pass the same --config and --set values"
        )
    if config.data.dataset == "digits":
        from adversarial_seg.gan.metrics import load_digits_classifier

        try:
            load_digits_classifier()
        except (FileNotFoundError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
    return config, device, run_dir


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad argument (2): return the code, do not raise
        return int(exc.code or 0)
    try:
        config, device, run_dir = prepare(args)
    except (ConfigError, ValueError) as exc:  # ValueError: --device cuda without a GPU
        return fail(str(exc), EXIT_BAD_INPUT)
    from adversarial_seg.gan.experiment import train_gan

    command = "gan-train " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    try:
        body = train_gan(config, run_dir, device, args.resume, command, progress=not args.quiet)
    except KeyboardInterrupt:
        return fail(f"interrupted; {run_dir} keeps the last finished epoch, continue with --resume", EXIT_FAILED)
    except Exception as exc:  # noqa: BLE001 - the work failed; say what and where, keep what was written
        return fail(f"training {run_dir} failed: {exc.__class__.__name__}: {exc}", EXIT_FAILED)
    m = body["metrics"]
    summary = ", ".join(f"{k} {v:.4g}" for k, v in m.items() if isinstance(v, (int, float)))
    print(f"gan-train: wrote {run_dir}/metrics.json ({summary})")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
