"""Networks trained in the project on real PH2 images for text-conditional generation (nothing is
downloaded): the text encoder StackGAN conditions on, and the attribute classifiers that measure
whether a generated lesion shows what its sentence says.

* ``TextEncoder``: word embeddings and a bidirectional GRU, mean over words, to a ``TEXT_DIM`` vector.
  Trained with an image encoder of its own (``ImageEncoder``) so that a case's sentence and image embed
  close together and other cases' apart (a symmetric InfoNCE loss, as Reed et al. 2016 trained
  StackGAN's char-CNN-RNN as a joint text-image embedding).
* ``AttributeNet``: a small CNN with one head per attribute of ``ph2_text.LABELS`` (diagnosis, the
  dermoscopic criteria, and each colour present or not), trained separately by cross-entropy, so the
  generator's conditioning and its judge share no weights. Its penultimate features also give the
  Fréchet distance between generated and real lesions.

``train_encoders`` trains both on the training split (fixed epochs, random flips; nothing is chosen on
the held-out splits); ``save_encoders`` writes ``encoders.pt`` (state dicts, read with
``weights_only=True``) and ``encoders.json`` (its sha256, the held-out balanced accuracies, the command);
``load_encoders`` checks the hash.
"""

from __future__ import annotations

import hashlib
import json
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from adversarial_seg.atomic_files import atomic_write_bytes
from adversarial_seg.errors import InputError
from adversarial_seg.gan.metrics import file_sha256
from adversarial_seg.gan.ph2_text import ATTRIBUTES, COLOURS, LABELS, PAD, vocabulary

Tensor = torch.Tensor
TEXT_DIM = 64
FEATURE_DIM = 128
WEIGHTS, RECORD = "encoders.pt", "encoders.json"


class TextEncoder(nn.Module):
    def __init__(self, vocab_size: int, width: int = 32):
        super().__init__()
        self.embed = nn.Embedding(vocab_size + 1, width, padding_idx=PAD)
        self.gru = nn.GRU(width, width, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * width, TEXT_DIM)

    def forward(self, tokens: Tensor) -> Tensor:
        """(B, L) word ids -> (B, TEXT_DIM), the mean of the GRU states over the words (padding left out)."""
        states, _ = self.gru(self.embed(tokens))
        mask = (tokens != PAD).unsqueeze(-1).float()
        return self.out((states * mask).sum(1) / mask.sum(1).clamp_min(1))


def conv_body(width: int) -> nn.Sequential:
    """(B, 3, H, W) -> (B, FEATURE_DIM): four stride-2 conv blocks and a global mean."""
    layers, channels = [], 3
    for k in (1, 2, 4, 8):
        layers += [nn.Conv2d(channels, width * k, 3, stride=2, padding=1), nn.BatchNorm2d(width * k),
                   nn.LeakyReLU(0.2)]  # fmt: skip
        channels = width * k
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, FEATURE_DIM))


class ImageEncoder(nn.Module):
    """The text encoder's partner in the joint embedding."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.body = conv_body(width)
        self.out = nn.Linear(FEATURE_DIM, TEXT_DIM)

    def forward(self, images: Tensor) -> Tensor:
        return self.out(F.leaky_relu(self.body(images), 0.2))


def head_sizes() -> list[int]:
    return [len(v) for v in ATTRIBUTES.values()] + [2] * len(COLOURS)


class AttributeNet(nn.Module):
    def __init__(self, width: int = 16):
        super().__init__()
        self.body = conv_body(width)
        self.heads = nn.ModuleList(nn.Linear(FEATURE_DIM, n) for n in head_sizes())

    def features(self, images: Tensor) -> Tensor:
        return F.leaky_relu(self.body(images), 0.2)

    def forward(self, images: Tensor) -> list[Tensor]:
        """One logit tensor (B, classes) per label of ``LABELS``."""
        h = self.features(images)
        return [head(h) for head in self.heads]

    @torch.no_grad()
    def predict(self, images: Tensor, chunk: int = 64) -> Tensor:
        """(N, len(LABELS)) predicted class per label, in eval mode."""
        was_training = self.training
        self.eval()
        try:
            rows = [torch.stack([logits.argmax(1) for logits in self(part.float())], 1) for part in images.split(chunk)]
            return torch.cat(rows)
        finally:
            self.train(was_training)


def balanced_accuracy(predicted: Tensor, target: Tensor) -> dict[str, float]:
    """Per label of ``LABELS``: the mean over the classes present in ``target`` of the share of that class
    predicted right (so always answering the commonest class scores 1 / classes present, not its share).

    >>> t = torch.tensor([[0] * len(LABELS)] * 3 + [[1] * len(LABELS)])  # 3 of class 0, 1 of class 1
    >>> round(balanced_accuracy(torch.zeros_like(t), t)["streaks"], 3)
    0.5
    """
    scores = {}
    for j, name in enumerate(LABELS):
        recalls = [float((predicted[target[:, j] == k, j] == k).float().mean()) for k in target[:, j].unique()]
        scores[name] = float(np.mean(recalls))
    return scores


def agreement(predicted: Tensor, target: Tensor) -> float:
    """The mean over labels of ``balanced_accuracy``: how well images show what their sentences say."""
    return float(np.mean(list(balanced_accuracy(predicted, target).values())))


def _flip(images: Tensor, generator: torch.Generator) -> Tensor:
    flips = torch.rand(2, generator=generator) < 0.5
    dims = [d for d, f in zip((2, 3), flips.tolist()) if f]
    return images.flip(dims) if dims else images


def train_encoders(train: dict, epochs: int = 60, seed: int = 0, batch_size: int = 16) -> dict[str, nn.Module]:
    """The text encoder (with its image partner) and the attribute classifiers, on a split of
    ``ph2_text.ph2_text_splits``."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    text, image, attributes = TextEncoder(len(vocabulary())), ImageEncoder(), AttributeNet()
    joint = torch.optim.Adam([*text.parameters(), *image.parameters()], lr=1e-3)
    judge = torch.optim.Adam(attributes.parameters(), lr=1e-3)
    x, words, labels = train["images"], train["tokens"], train["attributes"]
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for batch in order.split(batch_size):
            if len(batch) < 2:
                continue
            images = _flip(x[batch], generator)
            t, v = F.normalize(text(words[batch]), dim=1), F.normalize(image(images), dim=1)
            logits = t @ v.T / 0.1
            # sentences repeat across cases: a case's positives are every image with the same sentence
            same = (words[batch][:, None, :] == words[batch][None, :, :]).all(-1).float()
            targets = same / same.sum(1, keepdim=True)
            loss = torch.sum(-targets * F.log_softmax(logits, 1)) + torch.sum(-targets * F.log_softmax(logits.T, 1))
            joint.zero_grad()
            (loss / (2 * len(batch))).backward()
            joint.step()
            outputs = attributes(images)
            judge.zero_grad()
            sum(F.cross_entropy(o, labels[batch, j]) for j, o in enumerate(outputs)).backward()
            judge.step()
    return {"text": text.eval(), "image": image.eval(), "attributes": attributes.eval()}


def save_encoders(models: dict[str, nn.Module], folder: Path, record: dict) -> None:
    """``folder/encoders.pt`` and ``folder/encoders.json`` (sha256 of the weights plus ``record``)."""
    import io

    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({name: m.state_dict() for name, m in models.items()}, buffer)
    data = buffer.getvalue()
    atomic_write_bytes(folder / WEIGHTS, data)
    body = {"file": WEIGHTS, "sha256": hashlib.sha256(data).hexdigest(), "vocabulary": len(vocabulary()),
            "text_dim": TEXT_DIM, "labels": list(LABELS), "written": time.strftime("%Y-%m-%d %H:%M:%S"), **record}  # fmt: skip
    atomic_write_bytes(folder / RECORD, (json.dumps(body, indent=2) + "\n").encode())


class EncoderError(InputError):
    """A folder that does not hold encoders written by scripts/train_ph2_encoders.py."""


@lru_cache(maxsize=2)
def load_encoders(folder: str | Path) -> dict[str, nn.Module]:
    """The encoders of ``folder`` in eval mode, their parameters frozen; the weights' hash is checked."""
    folder = Path(folder)
    fix = f"train them with python scripts/train_ph2_encoders.py --output {folder}"
    if not (folder / WEIGHTS).is_file() or not (folder / RECORD).is_file():
        raise EncoderError(f"{folder} holds no {WEIGHTS} and {RECORD}; {fix}")
    record = json.loads((folder / RECORD).read_text())
    if file_sha256(folder / WEIGHTS) != record.get("sha256"):
        raise EncoderError(f"{folder / WEIGHTS} does not match the sha256 in {folder / RECORD}; {fix}")
    if record.get("vocabulary") != len(vocabulary()):
        raise EncoderError(f"{folder} was trained with another vocabulary; {fix}")
    state = torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True)
    models = {"text": TextEncoder(len(vocabulary())), "image": ImageEncoder(), "attributes": AttributeNet()}
    for name, model in models.items():
        model.load_state_dict(state[name])
        model.eval().requires_grad_(False)
    return models
