"""Data layer: geometry-keeping I/O, dataset layouts, labels/regions, validation, phantoms, transforms.

Light imports only here; the MONAI-based training/inference path lives in
``adversarial_seg.data.dataset`` and the phantom writers in ``adversarial_seg.data.phantoms``.
See docs/data.md.
"""

from .errors import DataError
from .io import read_image, read_label, write_image, write_label
from .labels import LabelSet
from .layouts import CaseRecord, discover_cases
from .validate import validate_dataset

__all__ = [
    "CaseRecord",
    "DataError",
    "LabelSet",
    "discover_cases",
    "read_image",
    "read_label",
    "validate_dataset",
    "write_image",
    "write_label",
]
