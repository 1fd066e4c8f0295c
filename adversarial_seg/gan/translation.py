"""Evaluation of image-to-image variants (pix2pix, srgan): G's images for held-out sources against their
targets, per epoch on the validation split and at the end on the test split. CycleGAN has no targets:
its held-out images are scored by how well a round trip returns them (``CycleEvaluator``).

Metrics on intensities mapped from [-1, 1] to [0, 1]: ``l1`` (mean absolute difference),
``psnr`` (dB, MONAI ``PSNRMetric`` with max 1) and ``ssim`` (MONAI ``SSIMMetric``, 11 x 11
Gaussian window, data range 1), each the mean over cases. The sample panel shows
``eval.grid`` validation items spread evenly over the split as source | generated | target.
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
        return translation_metrics(bicubic(sources, self.config.data.sr_scale).clamp(-1, 1), targets)

    def save_samples(self, task, path: Path, title: str) -> None:
        n = self.config.eval.grid
        targets, sources = self.data["splits"]["val"]
        # spread over the split, as cyclegan's panel: on prostate slices the first n would be one volume's lowest
        chosen = torch.linspace(0, len(targets) - 1, min(n, len(targets))).round().long()
        targets, sources = targets[chosen], sources[chosen]
        columns = {"source": sources, "generated": task.translate(sources).cpu(), "target": targets}
        if self.config.variant == "srgan":  # the baseline beside G's image
            from adversarial_seg.gan.variants.srgan import bicubic

            upsampled = bicubic(sources, self.config.data.sr_scale).clamp(-1, 1)
            columns = {"source": sources, "bicubic": upsampled, **{k: columns[k] for k in ("generated", "target")}}
        save_translation_panel(columns, path, title, row_labels=[self.data["cases"]["val"][i] for i in chosen])


class CycleEvaluator:
    """cyclegan: per domain, the held-out images against their round trip (A -> B -> A and B -> A -> B):
    ``cycle_l1_a`` / ``cycle_psnr_a`` and the same for b, in [0, 1] units. The panel shows held-out slices
    of each domain, spread over the split, as source | translated | back."""

    images = True

    def __init__(self, config, data: dict):
        self.config, self.data = config, data

    @staticmethod
    def round_trip(task, images: Tensor, there: str, back: str) -> tuple[Tensor, Tensor]:
        translated = torch.cat([task.translate(chunk, there).cpu() for chunk in images.split(16)])
        return translated, torch.cat([task.translate(chunk, back).cpu() for chunk in translated.split(16)])

    def split_metrics(self, task, split: str) -> dict[str, float]:
        b, a = self.data["splits"][split]
        metrics = {}
        for name, images, there, back in (("a", a, "ab", "ba"), ("b", b, "ba", "ab")):
            _, returned = self.round_trip(task, images, there, back)
            scores = translation_metrics(returned, images)
            metrics[f"cycle_l1_{name}"], metrics[f"cycle_psnr_{name}"] = scores["l1"], scores["psnr"]
        return metrics

    def epoch_metrics(self, task) -> dict[str, float]:
        return self.split_metrics(task, "val")

    def final(self, task) -> dict[str, float]:
        return self.split_metrics(task, "test")

    def reference(self) -> dict[str, float]:
        return {}

    def save_samples(self, task, path: Path, title: str) -> None:
        b, a = self.data["splits"]["val"]
        rows = max(1, self.config.eval.grid // 2)
        columns: dict[str, list[Tensor]] = {"source": [], "translated": [], "back": []}
        labels = []
        for name, images, there, back in (("A", a, "ab", "ba"), ("B", b, "ba", "ab")):
            picked = images[torch.linspace(0, len(images) - 1, rows).round().long()]
            translated, returned = self.round_trip(task, picked, there, back)
            for key, value in zip(columns, (picked, translated, returned)):
                columns[key].append(value)
            labels += [f"{name} -> {'B' if name == 'A' else 'A'}"] * rows
        save_translation_panel({k: torch.cat(v) for k, v in columns.items()}, path, title, row_labels=labels)
