"""Panoptic labels: one (class, instance) pair per pixel; 'stuff' pixels carry no instance."""

from __future__ import annotations

import numpy as np


def panoptic(
    instance: np.ndarray, class_of_instance: np.ndarray, class_is_stuff: np.ndarray
) -> np.ndarray:
    """(H, W, 2) uint16: channel 0 the class id, channel 1 the instance id, or 0 for pixels of
    'stuff' classes and the background. ``class_of_instance`` maps instance ids (index 0 =
    background) to class ids; ``class_is_stuff`` flags class ids."""
    cls = class_of_instance[instance]
    inst = np.where(class_is_stuff[cls], 0, instance)
    return np.stack([cls, inst], axis=-1).astype(np.uint16)
