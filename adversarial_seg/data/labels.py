"""Label values on disk <-> training class indices, and scoring regions.

Training is a softmax over the declared label values, which are mutually exclusive: label value
``values[k]`` is class index ``k``, background first (``data.labels``). Scoring uses regions
(``data.regions``): each region is a union of label values, e.g. prostate ``gland: [1, 2]``
and ``tumour: [2]``. By default every non-background label is its own region.

Example:
    >>> label_set = LabelSet.from_mapping({"background": 0, "gland": 1, "tumour": 2},
    ...                                   {"gland": [1, 2], "tumour": [2]})
    >>> label_set.to_class_indices(np.array([0, 2, 1])).tolist()
    [0, 2, 1]
    >>> {k: v.tolist() for k, v in label_set.region_masks(np.array([0, 1, 2])).items()}
    {'gland': [False, True, True], 'tumour': [False, False, True]}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_LABELS = {"background": 0, "foreground": 1}


@dataclass(frozen=True)
class LabelSet:
    """Class names and label values (index = training class), regions, lossy-mask threshold."""

    names: tuple[str, ...]
    values: tuple[int, ...]
    regions: dict[str, tuple[int, ...]]
    mask_threshold: int | None = None

    @classmethod
    def from_mapping(
        cls,
        labels: dict[str, int] | None,
        regions: dict[str, list[int]] | None = None,
        mask_threshold: int | None = None,
    ) -> LabelSet:
        labels = dict(labels or DEFAULT_LABELS)
        if len(set(labels.values())) != len(labels):
            raise ValueError(f"data.labels gives one value to several names: {labels}; use one name per value")
        if "background" in labels:
            background = "background"
        else:  # no name says it: the value 0 (or the smallest) is background
            background = min(labels, key=lambda name: (labels[name] != 0, labels[name]))
        others = sorted((n for n in labels if n != background), key=lambda n: labels[n])
        names = (background, *others)
        values = tuple(int(labels[n]) for n in names)
        if regions is None:
            regions = {name: [labels[name]] for name in others}
        unknown = {name: sorted(set(v) - set(values)) for name, v in regions.items()}
        unknown = {name: v for name, v in unknown.items() if v}
        if unknown:
            raise ValueError(f"data.regions use label values {unknown} that data.labels does not declare")
        return cls(names, values, {n: tuple(sorted(v)) for n, v in regions.items()}, mask_threshold)

    @classmethod
    def from_config(cls, data_cfg) -> LabelSet:
        """From a ``DataConfig`` (``labels``, ``regions``, ``mask_threshold``)."""
        return cls.from_mapping(data_cfg.labels, data_cfg.regions, data_cfg.mask_threshold)

    @property
    def num_classes(self) -> int:
        return len(self.values)

    @property
    def foreground_value(self) -> int:
        """Value given to thresholded lossy-mask voxels: the highest declared label."""
        return max(self.values[1:], default=1)

    def undeclared_values(self, label_values: np.ndarray) -> list[int]:
        """Sorted values present in ``label_values`` that ``data.labels`` does not declare."""
        present = np.unique(label_values)
        return [int(v) for v in present if int(v) not in self.values]

    def to_class_indices(self, label_values: np.ndarray) -> np.ndarray:
        """Label values (any shape) -> int64 class indices of the same shape."""
        label_values = np.asarray(label_values)
        undeclared = self.undeclared_values(label_values)
        if undeclared:
            raise ValueError(
                f"label values {undeclared} are not declared in data.labels {dict(zip(self.names, self.values))}"
            )
        order = np.argsort(self.values)
        sorted_values = np.asarray(self.values)[order]
        return order[np.searchsorted(sorted_values, label_values)].astype(np.int64)

    def to_label_values(self, class_indices: np.ndarray) -> np.ndarray:
        """Class indices (any shape) -> label values as written to disk (int64)."""
        return np.asarray(self.values, dtype=np.int64)[np.asarray(class_indices)]

    def region_masks(self, label_values: np.ndarray) -> dict[str, np.ndarray]:
        """Label-value map -> one boolean mask per region (same shape), for scoring."""
        label_values = np.asarray(label_values)
        return {name: np.isin(label_values, values) for name, values in self.regions.items()}

    def region_class_indices(self) -> dict[str, list[int]]:
        """Region -> class indices it unites (sum these class probabilities for a region)."""
        return {name: [self.values.index(v) for v in values] for name, values in self.regions.items()}
