"""Is a 3D point seen by a camera? Pixel-grid and depth tests shared by flow and keypoints.

A point projecting to sub-pixel position (u, v) lies between the pixel centers around it (the
four of the bilinear cell; one or two when it falls exactly on a center or a grid line). On a
planar facet 1/z is affine in (u, v), so the facet's depth at (u, v) lies between the depths at
those centers. The point is therefore *occluded* when its depth exceeds the largest of those
rendered depths (by a relative tolerance), and *visible* otherwise; pixels with no surface
count as infinitely far. This needs no object ids, so it also catches an object hiding its own
back side. Near silhouettes (within a pixel) a hidden point may pass as visible.
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
    fu, fv = np.floor(uv[:, 0]), np.floor(uv[:, 1])
    u0, v0 = fu.astype(np.intp), fv.astype(np.intp)
    # the second column / row only where the point is not on the first one's centers
    u1 = u0 + (uv[:, 0] - fu > 1e-6)
    v1 = v0 + (uv[:, 1] - fv > 1e-6)
    us = (np.clip(u0, 0, w - 1), np.clip(u1, 0, w - 1))
    vs = (np.clip(v0, 0, h - 1), np.clip(v1, 0, h - 1))
    dmax = np.maximum.reduce([far[v, u] for v in vs for u in us])
    return z <= dmax * (1.0 + rel_tol) + abs_tol_m
