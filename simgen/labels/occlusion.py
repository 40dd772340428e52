"""Is a 3D point seen by a camera? Pixel-grid and depth tests shared by flow and keypoints.

A point projecting to sub-pixel position (u, v) lies between the four pixel centers around it.
On a planar facet 1/z is affine in (u, v), so the facet's depth at (u, v) lies between the
depths at those four centers. The point is therefore *occluded* when its depth exceeds the
largest of the four rendered depths (by a relative tolerance), and *visible* otherwise; pixels
with no surface count as infinitely far. This needs no object ids, so it also catches an object
hiding its own back side.
"""

from __future__ import annotations

import numpy as np

#: Relative and absolute depth tolerance of the occlusion test (float32 depth, curved facets).
DEPTH_REL_TOL = 1e-3
DEPTH_ABS_TOL_M = 1e-4


def inside_image(uv: np.ndarray, width: int, height: int) -> np.ndarray:
    """Points whose pixel coordinates fall on the image: u in [-0.5, W - 0.5), same for v."""
    u, v = uv[..., 0], uv[..., 1]
    with np.errstate(invalid="ignore"):
        return (u >= -0.5) & (u < width - 0.5) & (v >= -0.5) & (v < height - 0.5)


def depth_visible(
    uv: np.ndarray,
    z: np.ndarray,
    depth_m: np.ndarray,
    rel_tol: float = DEPTH_REL_TOL,
    abs_tol_m: float = DEPTH_ABS_TOL_M,
) -> np.ndarray:
    """For points (M,) at pixel positions ``uv`` (M, 2) inside the image with camera depth ``z``:
    True where no rendered surface lies in front of them (see the module docstring)."""
    h, w = depth_m.shape
    far = np.where(depth_m > 0, depth_m, np.inf)
    u0 = np.floor(uv[:, 0]).astype(np.intp)
    v0 = np.floor(uv[:, 1]).astype(np.intp)
    us = (np.clip(u0, 0, w - 1), np.clip(u0 + 1, 0, w - 1))
    vs = (np.clip(v0, 0, h - 1), np.clip(v0 + 1, 0, h - 1))
    dmax = np.maximum.reduce([far[v, u] for v in vs for u in us])
    return z <= dmax * (1.0 + rel_tol) + abs_tol_m
