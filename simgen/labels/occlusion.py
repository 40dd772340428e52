"""Is a 3D point seen by a camera? Pixel-grid and depth tests shared by flow and keypoints.

A point projecting to sub-pixel position (u, v) lies between the pixel centers around it (the
four of the bilinear cell, those inside the image; one or two when it falls within 1e-6 px of
a center's column or row). On a planar facet 1/z is affine in (u, v), so the facet's depth at
(u, v) lies between the depths at those centers. The point is therefore *occluded* when its
depth exceeds the largest of those rendered depths (by a relative tolerance), and *visible*
otherwise; pixels with no surface count as infinitely far. This needs no object ids, so it also catches an object hiding its own
back side. Near silhouettes (within a pixel) a hidden point may pass as visible.
"""

from __future__ import annotations

import numpy as np

#: Relative and absolute depth tolerance of the occlusion test (float32 depth, curved facets).
DEPTH_REL_TOL = 1e-3
DEPTH_ABS_TOL_M = 1e-4
#: A point this close (px) to a pixel center's column (row) uses that column (row) only.
ON_CENTER_PX = 1e-6


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
    True where no rendered surface lies in front of them (see the module docstring). For a few
    points (keypoints); :class:`DepthTest` does the same for many."""
    h, w = depth_m.shape
    far = np.where(depth_m > 0, depth_m, np.inf)
    fu, fv = np.floor(u), np.floor(v)
    dmax = np.zeros(len(z))
    for du, dv in ((0, 0), (1, 0), (0, 1), (1, 1)):
        c, r = fu + du, fv + dv
        use = (c >= 0) & (c < w) & (r >= 0) & (r < h)
        if du:  # the second column only where the point is not on the first one's centers
            use &= u - fu > ON_CENTER_PX
        if dv:
            use &= v - fv > ON_CENTER_PX
        d = far[np.clip(r, 0, h - 1).astype(np.intp), np.clip(c, 0, w - 1).astype(np.intp)]
        dmax = np.where(use, np.maximum(dmax, d), dmax)
    return z <= dmax * (1.0 + rel_tol) + abs_tol_m


class DepthTest:
    """:func:`inside_image` and :func:`depth_visible` against one depth image, prepared for many
    points (flow tests every pixel of a frame): the depth limit of each bilinear cell (the
    largest depth of its centers, with the tolerances) is computed once for the whole image, in
    four maps (the cell, a point on a column of centers, on a row, on a center), so a point
    costs one lookup. float32."""

    def __init__(self, depth_m: np.ndarray) -> None:
        h, w = depth_m.shape
        pad = np.zeros((h + 2, w + 2), np.float32)  # 0 around the image: never the largest
        limit = pad[1:-1, 1:-1]
        np.multiply(depth_m, np.float32(1.0 + DEPTH_REL_TOL), out=limit)
        limit += np.float32(DEPTH_ABS_TOL_M)
        np.copyto(limit, np.float32(np.inf), where=depth_m <= 0)
        #: (H, W) the largest depth at which a point on a pixel center is seen
        self.limit = limit
        self._shape = (h, w)
        # cell maps, indexed (floor(v) + 1, floor(u) + 1): rows floor(v) and floor(v) + 1
        rows = np.maximum(pad[:-1], pad[1:])
        cells = np.empty((4, h + 1, w + 1), np.float32)
        np.maximum(rows[:, :-1], rows[:, 1:], out=cells[0])  # the four centers
        cells[1] = rows[:, :-1]  # u on a center: its column only
        np.maximum(pad[:-1, :-1], pad[:-1, 1:], out=cells[2])  # v on a center: its row only
        cells[3] = pad[:-1, :-1]  # on a center
        self._cells = cells.reshape(-1)
        self._plane = (h + 1) * (w + 1)
        # the flat index is formed in floats: exact below 2**24
        self._float = np.float32 if 4 * self._plane < 2**24 else np.float64

    def test(
        self, u: np.ndarray, v: np.ndarray, z: np.ndarray, near: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """(on, seen) of points at (u, v) with camera depth z (arrays of one shape): on the
        image and not before the near plane; seen: :func:`depth_visible` (where on)."""
        h, w = self._shape
        f32 = self._float
        with np.errstate(invalid="ignore"):
            on = inside_image(u, v, w, h)
            on &= z >= near
            fu, fv = np.floor(u), np.floor(v)
            f = fv * f32(w + 1)  # the cell's flat index, then the map
            f += fu
            frac = u - fu
            flag = frac <= ON_CENTER_PX
            f += np.multiply(flag, f32(self._plane), out=frac)
            np.subtract(v, fv, out=frac)
            np.less_equal(frac, ON_CENTER_PX, out=flag)
            f += np.multiply(flag, f32(2 * self._plane), out=frac)
            i = f.astype(np.int32)  # NaN and huge values off the image: masked below
        i += w + 2
        i *= on
        return on, z <= np.take(self._cells, i)
