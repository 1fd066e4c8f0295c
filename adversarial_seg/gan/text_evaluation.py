"""Evaluation of generated PH2 lesions by the attribute classifiers of ``model.encoders``
(``gan/ph2_encoders.py``): text-conditional generation (stackgan, ``TextEvaluator``) and unconditional
PH2 images (progressive growing on ``data.dataset: ph2_images``, ``PH2ImageEvaluator``: the Fréchet
distance and spread ratio below, without agreement).

Text-conditional: images drawn for held-out sentences.
Per split (per epoch the validation cases, at the end the test cases), ``eval.samples`` images are drawn
from the split's sentences (each sentence equally often, fixed noise), upsampled bilinearly to
``data.ph2.size`` when the stage draws them smaller (stage I alone, the baseline of stage II):

- ``agreement``: the mean over labels (diagnosis, each dermoscopic criterion, each colour present or not)
  of the classifiers' balanced accuracy at reading from the image the value its sentence asked for;
- ``frechet_distance`` to the split's real images in the classifiers' penultimate features (with a few
  dozen real cases in 128 dimensions it ranks runs; it is not an absolute value);
- ``spread_ratio``: mean pairwise pixel distance of the samples over the real images'.

``reference`` holds what real held-out images score: the test cases' agreement, and the validation
images scored like a sample against the test images.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from adversarial_seg.gan.figures import save_translation_panel
from adversarial_seg.gan.metrics import feature_statistics, frechet_distance, pairwise_spread
from adversarial_seg.gan.ph2_encoders import agreement, load_encoders
from adversarial_seg.runtime import derived_seed

Tensor = torch.Tensor


class PH2FeatureScore:
    """The Fréchet distance in the attribute classifiers' features and the spread ratio, against real images."""

    def __init__(self, config):
        self.config = config
        self.judge = load_encoders(config.model.encoders)["attributes"]

    @torch.no_grad()
    def distribution(self, images: Tensor, real: Tensor) -> dict[str, float]:
        fd = float("nan")  # undefined with fewer than two real images (a covariance needs two)
        if len(real) >= 2:
            fake_features = self.judge.features(images.float()).numpy()
            real_features = self.judge.features(real.float()).numpy()
            fd = frechet_distance(*feature_statistics(fake_features), *feature_statistics(real_features))
        return {"frechet_distance": fd, "spread_ratio": pairwise_spread(images) / max(pairwise_spread(real), 1e-12)}


class PH2ImageEvaluator(PH2FeatureScore):
    """progressive on PH2 images: ``eval.samples`` images from fixed noise against a split's real images."""

    images = True

    def __init__(self, config, data: dict):
        super().__init__(config)
        self.splits = data["splits"]

    def draw(self, task, n: int, purpose: str) -> Tensor:
        generator = torch.Generator().manual_seed(derived_seed(self.config.seed, "eval", purpose))
        return torch.cat([task.sample(min(64, n - done), generator).cpu() for done in range(0, n, 64)])

    def epoch_metrics(self, task) -> dict[str, float]:
        return self.distribution(self.draw(task, self.config.eval.samples, "epoch"), self.splits["val"][0])

    def final(self, task) -> dict[str, float]:
        return self.distribution(self.draw(task, self.config.eval.samples, "final"), self.splits["test"][0])

    def reference(self) -> dict[str, float]:
        return self.distribution(self.splits["val"][0], self.splits["test"][0])

    def save_samples(self, task, path: Path, title: str) -> None:
        from adversarial_seg.gan.figures import save_image_grid

        columns = self.config.eval.grid
        save_image_grid(self.draw(task, columns * columns, "grid"), columns, path, title)


class TextEvaluator(PH2FeatureScore):
    images = True

    def __init__(self, config, data: dict):
        super().__init__(config)
        self.text = data["text"]

    def draw(self, task, split: str, purpose: str) -> tuple[Tensor, Tensor]:
        """(images (N, 3, H, W) at data.ph2.size, the attributes each was asked for (N, labels))."""
        part = self.text[split]
        n = len(part["tokens"])
        per = max(1, round(self.config.eval.samples / n))
        tokens = part["tokens"].repeat(per, 1)
        generator = torch.Generator().manual_seed(derived_seed(self.config.seed, "eval", purpose))
        images = torch.cat([task.sample_text(chunk, generator) for chunk in tokens.split(64)])
        size = tuple(self.config.data.ph2.size)
        if tuple(images.shape[-2:]) != size:
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False).clamp(-1, 1)
        return images, part["attributes"].repeat(per, 1)

    def score(self, images: Tensor, asked: Tensor, real: Tensor) -> dict[str, float]:
        return {"agreement": agreement(self.judge.predict(images), asked), **self.distribution(images, real)}

    def split_metrics(self, task, split: str, purpose: str) -> dict[str, float]:
        images, asked = self.draw(task, split, purpose)
        return self.score(images, asked, self.text[split]["images"])

    def epoch_metrics(self, task) -> dict[str, float]:
        return self.split_metrics(task, "val", "epoch")

    def final(self, task) -> dict[str, float]:
        return self.split_metrics(task, "test", "final")

    def reference(self) -> dict[str, float]:
        test, val = self.text["test"], self.text["val"]
        body = self.score(val["images"], val["attributes"], test["images"])
        body["agreement"] = agreement(self.judge.predict(test["images"]), test["attributes"])
        return body

    def save_samples(self, task, path: Path, title: str) -> None:
        rows = min(self.config.eval.grid, len(self.text["val"]["tokens"]))
        part = {k: v[:rows] for k, v in self.text["val"].items()}
        generator = torch.Generator().manual_seed(derived_seed(self.config.seed, "eval", "grid"))
        columns = {"real": part["images"]}
        for k in range(4):
            columns[f"sample {k + 1}"] = task.sample_text(part["tokens"], generator)
        labels = [f"{c}: {s.split(',')[0]}" for c, s in zip(part["cases"], part["sentences"])]
        save_translation_panel(columns, path, title, row_labels=labels)
