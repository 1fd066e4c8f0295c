"""Evaluation of image-to-image variants (pix2pix, srgan): G's images for held-out sources against their
targets, per epoch on the validation split and at the end on the test split.

Metrics on intensities mapped from [-1, 1] to [0, 1]: ``l1`` (mean absolute difference),
``psnr`` (dB, MONAI ``PSNRMetric`` with max 1) and ``ssim`` (MONAI ``SSIMMetric``, 11 x 11
Gaussian window, data range 1), each the mean over cases. The sample panel shows the first
``eval.grid`` validation cases as source | generated | target.
"""

from __future__ import annotations

from pathlib import Path

import torch
from monai.metrics import PSNRMetric, SSIMMetric

from adversarial_seg.gan.figures import save_translation_panel

Tensor = torch.Tensor


def unit(images: Tensor) -> Tensor:
    return ((images.float() + 1) / 2).clamp(0, 1)


def translation_metrics(generated: Tensor, target: Tensor) -> dict[str, float]:
    """Mean L1, PSNR and SSIM over cases of ``generated`` against ``target`` (both in [-1, 1]).

    >>> t = torch.zeros(2, 3, 16, 16)
    >>> m = translation_metrics(t + 0.2, t)  # 0.1 apart in [0, 1]: PSNR = 10 log10(1 / 0.01) = 20 dB
    >>> round(m["l1"], 4), round(m["psnr"], 2)
    (0.1, 20.0)
    """
    fake, real = unit(generated), unit(target)
    return {
        "l1": float((fake - real).abs().mean()),
        "psnr": float(PSNRMetric(max_val=1.0)(fake, real).mean()),
        "ssim": float(SSIMMetric(spatial_dims=2, data_range=1.0)(fake, real).mean()),
    }


class TranslationEvaluator:
    """The ``Evaluator`` interface of ``gan/experiment.py`` for paired data."""

    images = True

    def __init__(self, config, data: dict):
        self.config, self.data = config, data

    def translate(self, task, split: str) -> Tensor:
        sources = self.data["splits"][split][1]
        return torch.cat([task.translate(chunk).cpu() for chunk in sources.split(16)])

    def split_metrics(self, task, split: str) -> dict[str, float]:
        return translation_metrics(self.translate(task, split), self.data["splits"][split][0])

    def epoch_metrics(self, task) -> dict[str, float]:
        return self.split_metrics(task, "val")

    def final(self, task) -> dict[str, float]:
        return self.split_metrics(task, "test")

    def reference(self) -> dict[str, float]:
        """srgan: bicubic upsampling of the test sources, the baseline G must beat. Otherwise none:
        a target scored against itself is perfect by definition."""
        if self.config.variant != "srgan":
            return {}
        from adversarial_seg.gan.variants.srgan import bicubic

        targets, sources = self.data["splits"]["test"]
        return translation_metrics(bicubic(sources, self.config.data.ph2.scale).clamp(-1, 1), targets)

    def save_samples(self, task, path: Path, title: str) -> None:
        n = self.config.eval.grid
        targets, sources = (t[:n] for t in self.data["splits"]["val"])
        columns = {"source": sources, "generated": task.translate(sources).cpu(), "target": targets}
        if self.config.variant == "srgan":  # the baseline beside G's image
            from adversarial_seg.gan.variants.srgan import bicubic

            upsampled = bicubic(sources, self.config.data.ph2.scale).clamp(-1, 1)
            columns = {"source": sources, "bicubic": upsampled, **{k: columns[k] for k in ("generated", "target")}}
        save_translation_panel(columns, path, title, row_labels=self.data["cases"]["val"][:n])
