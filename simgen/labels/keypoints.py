"""Keypoints: named points declared in an object's frame, projected with a visibility flag."""

from __future__ import annotations

import numpy as np

from simgen.labels.boxes import project
from simgen.labels.occlusion import depth_visible, inside_image

#: Visibility flags, as in COCO's keypoint format (v = 0, 1, 2).
OUTSIDE, OCCLUDED, VISIBLE = 0, 1, 2


def project_keypoints(
    k: np.ndarray,
    t_c_w: np.ndarray,
    object_poses_w: np.ndarray,
    keypoint_object: np.ndarray,
    position_o: np.ndarray,
    dist: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (K, 2) (NaN behind the camera) and camera depth (K,) of keypoints
    ``position_o`` (K, 3) given in the frames of objects ``keypoint_object`` (K,) (0-based);
    ``dist``: lens distortion (None: pinhole)."""
    t = t_c_w @ object_poses_w[keypoint_object]  # (K, 4, 4): object frame -> camera
    p_c = np.einsum("kij,kj->ki", t[:, :3, :3], position_o) + t[:, :3, 3]
    return project(k, p_c, dist)


def keypoint_visibility(
    uv: np.ndarray, z: np.ndarray, depth_m: np.ndarray, near: float
) -> np.ndarray:
    """(K,) uint8 flags: 0 outside the image (or not in front of the near plane), 1 inside but
    hidden behind a surface (another object's or the object's own), 2 visible."""
    h, w = depth_m.shape
    flags = np.full(len(z), OUTSIDE, np.uint8)
    on = inside_image(uv[:, 0], uv[:, 1], w, h) & (z >= near)
    if np.any(on):
        seen = depth_visible(uv[on, 0], uv[on, 1], z[on], depth_m)
        flags[on] = np.where(seen, VISIBLE, OCCLUDED)
    return flags
