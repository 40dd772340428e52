"""Surface normals. The renderer's label pass gives them per pixel (camera frame, facing the
camera); :func:`normals_from_depth` estimates them from a depth image for cross-checks."""

from __future__ import annotations

import numpy as np


def backproject(depth_m: np.ndarray, k: np.ndarray, dist: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) camera-frame points of every pixel of a depth image (z = depth; 0 = none);
    ``dist``: lens distortion of the image (None: pinhole)."""
    h, w = depth_m.shape
    if dist is None:
        v, u = np.mgrid[0:h, 0:w].astype(np.float64)
        x = (u - k[0, 2]) / k[0, 0]
        y = (v - k[1, 2]) / k[1, 1]
    else:
        from simgen.sensors.lens import pixel_rays

        rays = pixel_rays(k, dist, w, h)
        x, y = rays[..., 0], rays[..., 1]
    z = depth_m.astype(np.float64)
    return np.stack([x * z, y * z, z], axis=-1)


def normals_from_depth(
    depth_m: np.ndarray, k: np.ndarray, dist: np.ndarray | None = None
) -> np.ndarray:
    """(H, W, 3) unit normals from central differences of the back-projected depth image, turned
    toward the camera; zero where a pixel or one of its four neighbors has no surface."""
    p = backproject(depth_m, k, dist)
    out = np.zeros_like(p)
    du = p[1:-1, 2:] - p[1:-1, :-2]
    dv = p[2:, 1:-1] - p[:-2, 1:-1]
    n = np.cross(dv, du)
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        n = n / norm
    flip = np.einsum("hwi,hwi->hw", n, p[1:-1, 1:-1]) > 0
    n[flip] *= -1
    valid = depth_m > 0
    ok = (
        valid[1:-1, 1:-1]
        & valid[1:-1, 2:]
        & valid[1:-1, :-2]
        & valid[2:, 1:-1]
        & valid[:-2, 1:-1]
        & (norm[..., 0] > 0)
    )
    out[1:-1, 1:-1][ok] = n[ok]
    return out.astype(np.float32)
