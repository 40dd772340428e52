"""Lens distortion: OpenCV's Brown–Conrady model (pure numpy), and the maps that apply it.

A camera with ``distortion`` produces images whose pixel ``(u, v)`` sees the ray with
normalized (undistorted) coordinates ``(x, y)`` such that, with ``r^2 = x^2 + y^2``::

    x_d = x (1 + k1 r^2 + k2 r^4 + k3 r^6) + 2 p1 x y + p2 (r^2 + 2 x^2)
    y_d = y (1 + k1 r^2 + k2 r^4 + k3 r^6) + p1 (r^2 + 2 y^2) + 2 p2 x y
    u = fx x_d + cx,   v = fy y_d + cy

exactly as ``cv2.projectPoints`` with ``distCoeffs = (k1, k2, p1, p2, k3)`` (Brown 1966,
Conrady 1919; OpenCV's ``calib3d`` documentation). K keeps OpenCV's convention (pixel centers at
integer coordinates).

simgen renders a pinhole image on a *canvas* large enough to hold every ray the distorted image
sees (same focal lengths, shifted principal point), then resamples it: each output pixel takes
the canvas position of its undistorted ray (:attr:`Lens.source_uv`), bilinearly for RGB and from
the nearest canvas pixel for every label map, so labels never blend. :class:`Lens` holds these
maps, computed once per camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from simgen.errors import SimgenError

#: Largest canvas, as a multiple of the image size in each direction (stronger distortion is
#: refused: the image would see far beyond the pinhole field of view).
MAX_CANVAS_SCALE = 3.0
#: Round-trip accuracy required of the inverse distortion, pixels.
INVERSE_TOL_PX = 1e-3


class LensError(SimgenError):
    """Distortion coefficients that cannot be used (the image folds over itself)."""


def distort_normalized(
    x: np.ndarray, y: np.ndarray, dist: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Brown–Conrady distortion of normalized coordinates (OpenCV order k1, k2, p1, p2, k3)."""
    k1, k2, p1, p2, k3 = (float(c) for c in dist)
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xy = x * y
    xd = x * radial + 2.0 * p1 * xy + p2 * (r2 + 2.0 * x * x)
    yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * xy
    return xd, yd


def undistort_normalized(
    xd: np.ndarray, yd: np.ndarray, dist: np.ndarray, iterations: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`distort_normalized` by Newton's method (vectorized; starts from the
    distorted point). Where the model folds, the result is not a true inverse: check it."""
    k1, k2, p1, p2, k3 = (float(c) for c in dist)
    x, y = xd.astype(np.float64).copy(), yd.astype(np.float64).copy()
    for _ in range(iterations):
        r2 = x * x + y * y
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        dradial = k1 + r2 * (2.0 * k2 + 3.0 * k3 * r2)  # d radial / d r2
        fx = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x) - xd
        fy = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y - yd
        a = radial + 2.0 * x * x * dradial + 2.0 * p1 * y + 6.0 * p2 * x
        b = 2.0 * x * y * dradial + 2.0 * p1 * x + 2.0 * p2 * y
        c = 2.0 * x * y * dradial + 2.0 * p1 * x + 2.0 * p2 * y
        d = radial + 2.0 * y * y * dradial + 6.0 * p1 * y + 2.0 * p2 * x
        det = a * d - b * c
        det = np.where(np.abs(det) < 1e-12, 1e-12, det)
        dx = (d * fx - b * fy) / det
        dy = (a * fy - c * fx) / det
        x -= dx
        y -= dy
        if max(float(np.abs(dx).max(initial=0)), float(np.abs(dy).max(initial=0))) < 1e-14:
            break
    return x, y


def project_distorted(
    k: np.ndarray, dist: np.ndarray | None, points_c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (..., 2) and depth z (...) of camera-frame points (..., 3), through K
    and (when given) the distortion; NaN behind the camera (z <= 0)."""
    z = points_c[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = points_c[..., 0] / z
        y = points_c[..., 1] / z
    if dist is not None:
        x, y = distort_normalized(x, y, dist)
    uv = np.stack([k[0, 0] * x + k[0, 1] * y + k[0, 2], k[1, 1] * y + k[1, 2]], axis=-1)
    uv[z <= 0] = np.nan
    return uv, z


def pixel_rays(k: np.ndarray, dist: np.ndarray | None, width: int, height: int) -> np.ndarray:
    """(H, W, 2) float64 normalized coordinates ``(x, y) = (X/Z, Y/Z)`` of the ray through every
    pixel center (pinhole when ``dist`` is None)."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    yd = (v - k[1, 2]) / k[1, 1]
    xd = (u - k[0, 2] - k[0, 1] * yd) / k[0, 0]
    if dist is None:
        return np.stack([xd, yd], axis=-1)
    x, y = undistort_normalized(xd, yd, dist)
    ud, vd = distort_normalized(x, y, dist)
    err = np.hypot((ud - xd) * k[0, 0], (vd - yd) * k[1, 1]).max(initial=0.0)
    if not np.isfinite(err) or err > INVERSE_TOL_PX:
        raise LensError(
            f"distortion {list(np.round(dist, 6))} folds the image (its inverse misses by "
            f"{err:.3g} px at the borders); use smaller coefficients"
        )
    return np.stack([x, y], axis=-1)


@dataclass
class Lens:
    """A distorted camera's resampling maps (an engine-side cache, built once per camera).

    ``canvas_k`` and ``canvas_size`` describe the pinhole image to render; ``source_uv`` (H, W, 2)
    float32 is the canvas position each output pixel samples; ``source_index`` (H, W) the flat
    index of the nearest canvas pixel (label maps)."""

    k: np.ndarray  # (3, 3) of the output (distorted) image
    dist: np.ndarray  # (5,) k1, k2, p1, p2, k3
    size: tuple[int, int]  # output (width, height)
    rays: np.ndarray  # (H, W, 2) float64 undistorted normalized coordinates per pixel
    canvas_k: np.ndarray
    canvas_size: tuple[int, int]
    source_uv: np.ndarray
    source_index: np.ndarray
    _footprint: np.ndarray | None = field(default=None, repr=False)

    @staticmethod
    def build(k: np.ndarray, dist: np.ndarray, width: int, height: int) -> Lens:
        dist = np.asarray(dist, np.float64)
        rays = pixel_rays(k, dist, width, height)
        su = k[0, 0] * rays[..., 0] + k[0, 1] * rays[..., 1] + k[0, 2]
        sv = k[1, 1] * rays[..., 1] + k[1, 2]
        pad = [
            max(0, math.ceil(-su.min()) + 1),
            max(0, math.ceil(-sv.min()) + 1),
            max(0, math.ceil(su.max() - (width - 1)) + 1),
            max(0, math.ceil(sv.max() - (height - 1)) + 1),
        ]
        cw, ch = width + pad[0] + pad[2], height + pad[1] + pad[3]
        if cw > MAX_CANVAS_SCALE * width or ch > MAX_CANVAS_SCALE * height:
            raise LensError(
                f"distortion {list(np.round(dist, 6))} is too strong: the image would see "
                f"{cw / width:.1f} x {ch / height:.1f} times the pinhole field of view "
                f"(at most {MAX_CANVAS_SCALE:g})"
            )
        ck = k.copy()
        ck[0, 2] += pad[0]
        ck[1, 2] += pad[1]
        src = np.stack([su + pad[0], sv + pad[1]], axis=-1).astype(np.float32)
        iu = np.clip(np.floor(src[..., 0] + 0.5), 0, cw - 1).astype(np.intp)
        iv = np.clip(np.floor(src[..., 1] + 0.5), 0, ch - 1).astype(np.intp)
        return Lens(k, dist, (width, height), rays, ck, (cw, ch), src, iv * cw + iu)

    def project(self, points_c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Output-image pixel coordinates and depth of camera-frame points."""
        return project_distorted(self.k, self.dist, points_c)

    def canvas_to_image(self, uv_canvas: np.ndarray) -> np.ndarray:
        """Output-image positions (..., 2) of canvas pixel positions (..., 2)."""
        ck = self.canvas_k
        y = (uv_canvas[..., 1] - ck[1, 2]) / ck[1, 1]
        x = (uv_canvas[..., 0] - ck[0, 2] - ck[0, 1] * y) / ck[0, 0]
        xd, yd = distort_normalized(x, y, self.dist)
        k = self.k
        return np.stack([k[0, 0] * xd + k[0, 1] * yd + k[0, 2], k[1, 1] * yd + k[1, 2]], -1)

    def nearest(self, canvas: np.ndarray) -> np.ndarray:
        """Resample a canvas label map (H_c, W_c[, C]) to the output image, nearest pixel."""
        flat = canvas.reshape(self.canvas_size[1] * self.canvas_size[0], *canvas.shape[2:])
        return np.take(flat, self.source_index, axis=0)

    def bilinear(self, canvas: np.ndarray) -> np.ndarray:
        """Resample a canvas image (uint8 or float32) to the output image, bilinearly."""
        import cv2

        return cv2.remap(
            canvas,
            self.source_uv[..., 0],
            self.source_uv[..., 1],
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )

    @property
    def footprint(self) -> np.ndarray:
        """(H_c, W_c) bool: canvas pixels inside the region the output image sees (the
        undistorted outline of the image, filled)."""
        if self._footprint is None:
            import cv2

            w, h = self.size
            edge = np.concatenate(
                [
                    self.source_uv[0, :],
                    self.source_uv[:, w - 1],
                    self.source_uv[h - 1, ::-1],
                    self.source_uv[::-1, 0],
                ]
            )
            mask = np.zeros((self.canvas_size[1], self.canvas_size[0]), np.uint8)
            pts = np.round(edge * 16).astype(np.int32)
            cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=4)
            self._footprint = mask.astype(bool)
        return self._footprint
