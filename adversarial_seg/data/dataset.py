"""Training and inference data path (MONAI), built on the transform definitions in ``transforms``.

Training::

    records = validate_dataset(cfg.data)
    dataset = build_training_dataset(records[train_ids], cfg.data, augment=cfg.train.augmentations)
    for epoch in range(start, epochs):
        loader = seeded_loader(dataset, cfg.train.batch_size, seed, (fold,), epoch)  # gan/trainer.py
        for batch in loader: ...   # batch["image"] (B, C, H, W) float32, batch["label"] (B, 1, H, W) int64

A sample is ``{"image": float32 (C, H, W) or (C, X, Y, Z), "label": int64 (1, H, W) or
(1, X, Y, Z) class indices, "case": case_id}``. Volumes in 2D mode give one sample per slice (all
slices, tumour-free ones included), with ``data.context_slices`` neighbours on either side as extra
channels (2.5D); 2D images and 3D patches one sample per case.

Inference::

    case = prepare_case(record, plan)              # case.image: (C, *preprocessed spatial)
    probabilities = model(...)                     # (K, *preprocessed spatial), softmax
    native = probabilities_to_native(probabilities, case)   # (K, *native spatial), same grid as input
    write_prediction(out_dir / f"{record.case_id}{case.suffix}", native, case)

The preprocessed volume's axes are RAS; a 2D model runs on it slice by slice along
``plan.slice_axis`` (e.g. MONAI ``SliceInferer(spatial_dim=plan.slice_axis)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from monai.data import CacheDataset, Dataset, MetaTensor
from monai.transforms import Compose, Invertd

from ..config import AUGMENTATIONS
from .io import label_suffix, write_label
from .layouts import CaseRecord
from .transforms import (
    DataPlan,
    LoadCase,
    augmentation_transforms,
    case_item,
    make_plan,
    patch_transform,
    preprocessing_transforms,
    slice_with_context,
)


def _plain(tensor) -> torch.Tensor:
    """A plain tensor: samples drop MONAI metadata, which training does not use and collation slows."""
    return tensor.as_tensor() if isinstance(tensor, MetaTensor) else torch.as_tensor(tensor)


class SegmentationDataset(torch.utils.data.Dataset):
    """Cached preprocessed cases, expanded into training samples, with seeded augmentation.

    ``preprocessed[i]`` holds case i after ``LoadCase`` + ``preprocessing_transforms`` (cached
    once by MONAI ``CacheDataset`` when ``data.cache``); ``samples`` lists (case index, slice index
    or -1). Each sample is cut from the cache and then augmented.
    """

    def __init__(
        self,
        records: list[CaseRecord],
        plan: DataPlan,
        augment: Sequence[str] = AUGMENTATIONS,
        cache: bool = True,
        cache_workers: int = 2,
        flip_axes: Sequence[int] | None = None,
        random_patches: bool = True,
    ):
        if not records:
            raise ValueError("no cases to build a dataset from; check the fold's case list")
        self.plan = plan
        self.records = list(records)
        self.preprocess = preprocessing_transforms(plan)
        # Flat list: CacheDataset stops caching at a nested Compose (it counts as randomizable).
        pipeline = Compose([LoadCase(plan), *self.preprocess.transforms])
        items = [case_item(r) for r in self.records]
        if cache:
            # copy_cache=False: samples are cut (and cloned) from the cache, never modified in it.
            self.preprocessed = CacheDataset(
                items, pipeline, cache_rate=1.0, num_workers=cache_workers, copy_cache=False, progress=False
            )
        else:
            self.preprocessed = Dataset(items, pipeline)
        steps = [patch_transform(plan, random_patches)] if plan.model_dims == 3 else []
        if augment:
            steps += augmentation_transforms(plan, augment, flip_axes).transforms
        self.augment = Compose(steps) if steps else None  # seeded as one by set_random_state
        self.samples = self._index_samples(cache)
        self._empty: np.ndarray | None = None  # per sample: holds no foreground (for epoch_samples)

    def _index_samples(self, cache: bool) -> list[tuple[int, int]]:
        if self.plan.model_dims == 3 or self.plan.file_dims == 2:
            return [(i, -1) for i in range(len(self.records))]
        samples = []
        for i in range(len(self.records)):
            # Without a cache this reads each case once more: the slice count is not in the header
            # once resampling is involved.
            slices = self.preprocessed[i]["image"].shape[1 + self.plan.slice_axis]
            samples += [(i, k) for k in range(slices)]
        return samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        case_index, slice_index = self.samples[index]
        volume = self.preprocessed[case_index]
        image, label = _plain(volume["image"]), _plain(volume["label"])
        if slice_index >= 0:
            axis = self.plan.slice_axis
            image = slice_with_context(image, axis, slice_index, self.plan.context_slices)
            label = label.select(1 + axis, slice_index)
        sample = {"image": image.clone(), "label": label.clone()}
        if self.augment is not None:
            sample = self.augment(sample)
        return {
            "image": _plain(sample["image"]).float().contiguous(),
            "label": _plain(sample["label"]).round().long().contiguous(),
            "case": self.records[case_index].case_id,
        }

    def set_random_state(self, seed: int) -> None:
        """Seed every random transform; MONAI's DataLoader workers call this with their own seed."""
        if self.augment is not None:
            self.augment.set_random_state(seed=seed)

    def epoch_samples(self, empty_share: float, seed: int, repeat: float = 1.0) -> torch.utils.data.Dataset:
        """The samples one epoch trains on: every sample that holds foreground, and a seeded random
        ``empty_share`` of those that do not (``train.empty_slices``); the whole dataset at 1.

        ``repeat`` > 1 (``1 / train.fraction``) lengthens the epoch to ``round(repeat * n)`` of
        those n samples: each whole times, and a seeded draw without replacement for the rest.
        """
        if empty_share >= 1 and repeat == 1:
            return self
        rng = np.random.default_rng(seed)
        chosen = np.arange(len(self))
        if empty_share < 1:
            if self._empty is None:
                self._empty = np.array([classes == (0,) for _, _, classes in self.sample_classes()])
            empty = np.flatnonzero(self._empty)
            kept = rng.choice(empty, size=round(empty_share * len(empty)), replace=False)
            chosen = np.sort(np.concatenate([np.flatnonzero(~self._empty), kept]))
        if not len(chosen):
            return EpochSamples(self, [])
        whole, rest = divmod(round(repeat * len(chosen)), len(chosen))
        extra = rng.choice(chosen, size=rest, replace=False) if rest else chosen[:0]
        return EpochSamples(self, [*np.tile(chosen, whole).tolist(), *sorted(extra.tolist())])

    def sample_classes(self) -> list[tuple[str, int, tuple[int, ...]]]:
        """(case, slice or -1, class indices present) per sample, e.g. to count tumour-bearing slices."""
        rows = []
        for case_index, slice_index in self.samples:
            label = _plain(self.preprocessed[case_index]["label"])
            if slice_index >= 0:
                label = label.select(1 + self.plan.slice_axis, slice_index)
            present = tuple(int(v) for v in torch.unique(label.round().long()))
            rows.append((self.records[case_index].case_id, slice_index, present))
        return rows


class EpochSamples(torch.utils.data.Subset):
    """A subset of a ``SegmentationDataset`` whose random transforms are seeded like the whole."""

    def set_random_state(self, seed: int) -> None:
        self.dataset.set_random_state(seed)


def build_training_dataset(
    records: list[CaseRecord],
    data_cfg,
    augment: Sequence[str] = AUGMENTATIONS,
    plan: DataPlan | None = None,
    flip_axes: Sequence[int] | None = None,
    random_patches: bool = True,
) -> SegmentationDataset:
    """Dataset of training samples for ``records`` (validate them first with ``validate_dataset``).

    ``augment``: the kinds of ``train.augment`` (empty: none); ``flip_axes``: ``train.flip_axes``;
    ``random_patches``: 3D samples are random patches (training) or the central patch (monitoring).
    """
    plan = plan or make_plan(data_cfg, records)
    return SegmentationDataset(
        records, plan, augment=augment, cache=data_cfg.cache, flip_axes=flip_axes, random_patches=random_patches
    )


# --------------------------------------------------------------------------- inference


@dataclass
class PreparedCase:
    """One case ready for inference, plus what maps the output back to its native grid.

    ``image``: MetaTensor (C, *preprocessed spatial) with the applied operations recorded;
    ``props``: native geometry of the reference channel (and of the label map to write);
    ``suffix``: file ending for the prediction (the input's format).
    """

    case_id: str
    image: MetaTensor
    props: dict
    plan: DataPlan
    preprocess: Compose
    suffix: str


def prepare_case(record: CaseRecord, plan: DataPlan) -> PreparedCase:
    """Load and preprocess one case with the training transform definitions (no augmentation)."""
    preprocess = preprocessing_transforms(plan)
    item = case_item(record)
    item["label_path"] = None  # inference never needs the reference; scoring reads it natively
    loaded = preprocess(LoadCase(plan)(item))
    return PreparedCase(
        record.case_id, loaded["image"], loaded["props"], plan, preprocess, label_suffix(loaded["props"])
    )


def probabilities_to_native(probabilities: torch.Tensor, case: PreparedCase) -> torch.Tensor:
    """Class probabilities (K, *preprocessed spatial) -> (K, *native spatial), float32.

    Inverts the preprocessing (resize / resampling with linear interpolation, reorientation), so
    the argmax is taken afterwards, in native geometry.
    """
    probabilities = torch.as_tensor(probabilities).detach().float().cpu()
    if tuple(probabilities.shape[1:]) != tuple(case.image.shape[1:]):
        raise ValueError(
            f"probabilities for case {case.case_id} have spatial shape {tuple(probabilities.shape[1:])}, "
            f"expected the preprocessed shape {tuple(case.image.shape[1:])}"
        )
    invert = Invertd(keys="pred", transform=case.preprocess, orig_keys="image", nearest_interp=False)
    # A plain tensor would make Invertd look for a separate trace key, warn and return it uninverted.
    native = invert({"image": case.image, "pred": MetaTensor(probabilities)})["pred"]
    return torch.as_tensor(native).float()


def native_label_values(native_probabilities: torch.Tensor, case: PreparedCase) -> np.ndarray:
    """Argmax over classes on the native grid, as label values (e.g. 0/255 or 0/1/2/3)."""
    # argmax along a contiguous last axis: torch's CPU argmax over the leading axis of a large
    # volume is ~15x slower (3 s vs 0.2 s on 3 x 512 x 512 x 64).
    classes = torch.as_tensor(native_probabilities).movedim(0, -1).contiguous().argmax(dim=-1).numpy()
    return case.plan.labels.to_label_values(classes)


def write_prediction(path: str | Path, native_probabilities: torch.Tensor, case: PreparedCase) -> np.ndarray:
    """Write the label map (native label values, input format and geometry) atomically; return it."""
    labels = native_label_values(native_probabilities, case)
    write_label(path, labels, case.props)
    return labels
