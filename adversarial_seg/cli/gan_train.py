"""``gan-train``: train a classic GAN variant on the bundled digits or the ring of Gaussians.

    gan-train --config configs/gan/dcgan.yaml [--output RUN] [--set key=value ...]
              [--device auto|cpu|cuda] [--threads N] [--resume] [--no-progress]

Exit codes (README): 0 done; 2 nothing was done because the input is wrong (config, arguments,
run directory, a checkpoint to --resume that is truncated or tampered with), stated in one sentence
naming the key or file; 1 training or evaluation failed, a file could not be written, or Ctrl-C
(the last finished epoch is kept: continue with --resume).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from adversarial_seg.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_device_argument,
    add_override_argument,
    add_progress_argument,
    command_parser,
    fail,
    guarded,
    show_progress,
)
from adversarial_seg.config import ConfigError
from adversarial_seg.errors import InputError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = command_parser("gan-train", __doc__)
    parser.add_argument("--config", required=True, type=Path, help="YAML config, e.g. configs/gan/dcgan.yaml")
    parser.add_argument("--output", type=Path, default=None, help="run directory (default runs/gan/<config name>)")
    add_override_argument(parser)
    add_device_argument(parser)
    parser.add_argument("--resume", action="store_true", help="continue the run in --output from its checkpoint")
    add_progress_argument(parser)
    parser.add_argument("--quiet", dest="no_progress", action="store_true", help=argparse.SUPPRESS)  # older name
    return parser.parse_args(argv)


def run_dir_of(args: argparse.Namespace) -> Path:
    return args.output or Path("runs") / "gan" / args.config.stem


def prepare(args: argparse.Namespace):
    """Validate everything up front; raises an InputError (ConfigError, CheckpointError) with one sentence."""
    from adversarial_seg.atomic_files import check_output_folder
    from adversarial_seg.gan.config import load_gan_config
    from adversarial_seg.gan.experiment import resume_digest, stored_resume_hash
    from adversarial_seg.gan.trainer import CHECKPOINT_LAST
    from adversarial_seg.runtime import resolve_device, set_threads

    config = load_gan_config(args.config, args.overrides)
    device = resolve_device(args.device)
    args.thread_note = set_threads(args.threads)
    run_dir = run_dir_of(args)
    check_output_folder(run_dir)
    has_checkpoint = (run_dir / CHECKPOINT_LAST).is_file()
    if has_checkpoint and not args.resume:
        raise ConfigError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --output")
    if args.resume and not has_checkpoint:
        raise ConfigError(f"--resume: {run_dir} has no {CHECKPOINT_LAST} to continue; drop --resume to start a new run")
    stored = None
    if args.resume:
        check_checkpoint(run_dir / CHECKPOINT_LAST)
        stored = stored_resume_hash(run_dir)
    if stored is not None and stored != resume_digest(config):
        raise ConfigError(
            f"--resume: the config differs from the one {run_dir}/config.yaml was trained with "
            "(only train.epochs may change); pass the same --config and --set values"
        )
    auxiliary = {}
    if config.model.generator_init:  # readable before anything is written; train_gan checks that it fits
        from adversarial_seg.gan.experiment import generator_init_state

        generator_init_state(config.model.generator_init)
    if config.loss.content_weight > 0:  # srgan's content network: a seg-train run, read before anything is written
        from adversarial_seg.seg.unet_parts import segmentor_encoder

        try:
            auxiliary["content"] = segmentor_encoder(
                config.loss.content_run, config.loss.content_fold, config.loss.content_depth
            )
        except InputError as exc:
            raise ConfigError(f"loss.content_run: {exc}") from None
    if config.variant == "stackgan" or config.data.dataset == "ph2_images":  # encoders (and stage I), read first
        from adversarial_seg.gan.ph2_encoders import load_encoders
        from adversarial_seg.gan.variants.stackgan import load_stage_one

        try:
            load_encoders(config.model.encoders)
        except InputError as exc:
            raise ConfigError(f"model.encoders: {exc}") from None
        if config.variant == "stackgan" and config.model.stage == 2:
            load_stage_one(config.model.stage1_run, config)
    if config.data.dataset == "digits":
        from adversarial_seg.gan.metrics import load_digits_classifier

        try:
            load_digits_classifier()
        except (FileNotFoundError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
    return config, device, run_dir, auxiliary


def check_checkpoint(path: Path) -> None:
    """--resume: the checkpoint loads without running code and holds the trainer's state (CheckpointError)."""
    from adversarial_seg.checkpoint import CheckpointError, load_checkpoint

    state = load_checkpoint(path)
    missing = [key for key in ("modules", "step", "epoch", "history", "rng") if key not in state]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} lacks {', '.join(missing)}; it was not written by gan-train, so restore it "
            "from a copy or start a new run without --resume"
        )


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad argument (2): return the code, do not raise
        return int(exc.code or 0)
    interrupted = f"{run_dir_of(args)} keeps the last finished epoch, continue with --resume"
    return guarded(lambda: train(args, argv), interrupted)


def train(args: argparse.Namespace, argv: list[str] | None) -> int:
    """Validate (InputError: exit 2, nothing written), then train; exit 1 names a failed training."""
    config, device, run_dir, auxiliary = prepare(args)
    from adversarial_seg.gan.experiment import train_gan

    print(f"gan-train: {config.variant} into {run_dir}, device {device}, {args.thread_note}")

    command = "gan-train " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    try:
        body = train_gan(
            config, run_dir, device, args.resume, command, progress=show_progress(args), auxiliary=auxiliary
        )
    except (InputError, OSError):
        raise  # one sentence from guarded: a file or an input named, not "training failed"
    except Exception as exc:  # noqa: BLE001 - the work failed; say what and where, keep what was written
        return fail(f"training {run_dir} failed: {exc.__class__.__name__}: {_first_line(exc)}", EXIT_FAILED)
    m = body["metrics"]
    summary = ", ".join(f"{k} {v:.4g}" for k, v in m.items() if isinstance(v, (int, float)))
    print(f"gan-train: wrote {run_dir}/metrics.json ({summary})")
    return EXIT_OK


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (a library's may span many), so the error stays one line."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else "no message"


if __name__ == "__main__":
    raise SystemExit(main())
