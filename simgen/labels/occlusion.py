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


def inside_image(u: np.ndarray, v: np.ndarray, width: int, height: int) -> np.ndarray:
    """Points whose pixel coordinates fall on the image: u in [-0.5, W - 0.5), same for v."""
    with np.errstate(invalid="ignore"):
        return (u >= -0.5) & (u < width - 0.5) & (v >= -0.5) & (v < height - 0.5)


def depth_visible(
    u: np.ndarray,
    v: np.ndarray,
    z: np.ndarray,
    depth_m: np.ndarray,
    rel_tol: float = DEPTH_REL_TOL,
    abs_tol_m: float = DEPTH_ABS_TOL_M,
) -> np.ndarray:
    """For points at pixel positions (u, v) inside the image with camera depth z (1-D arrays):
    True where no rendered surface lies in front of them (see the module docstring)."""
    h, w = depth_m.shape
    far = np.where(depth_m > 0, depth_m, np.inf).ravel()
    fu, fv = np.floor(u), np.floor(v)
    u0 = np.clip(fu, 0, w - 1).astype(np.intp)
    v0 = np.clip(fv, 0, h - 1).astype(np.intp)
    # the second column / row only where the point is not on the first one's centers
    du = (u - fu > 1e-6) & (u0 < w - 1)
    dv = ((v - fv > 1e-6) & (v0 < h - 1)) * w
    i = v0 * w + u0
    dmax = np.maximum(np.maximum(far[i], far[i + du]), np.maximum(far[i + dv], far[i + du + dv]))
    return z <= dmax * (1.0 + rel_tol) + abs_tol_m
