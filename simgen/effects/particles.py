"""Rain streaks and snowflakes in a camera image (pure numpy; seeded).

1. **Sampling** (:func:`sample_particles`): particles fill the camera's view volume between
   ``z_near`` and a far distance per size (beyond it a particle's streak would cover less than
   ``MIN_COVERAGE`` of any pixel, or its image would be narrower than ``MIN_WIDTH_PX``: such
   particles only matter together, as extinction, which
   :func:`simgen.effects.camera.koschmieder` applies). Counts are Poisson with mean
   ``N(D) dD x volume``; sizes follow ``N(D)``; positions are uniform in the volume.
2. **Motion**: each particle falls at its terminal speed (plus wind); its image moves along the
   projection of its velocity relative to the camera during the exposure ``T``, so the streak
   runs from the projection of ``X - v T / 2`` to that of ``X + v T / 2`` (length, density and
   orientation follow from rate, fall speed, exposure and the camera's own motion).
3. **Rasterizing** (:func:`rasterize`): a particle of image diameter ``w = f D / z`` covers
   ``pi w^2 / 4`` pixel-exposures in total, spread evenly along its streak (Garg & Nayar 2007:
   a pixel's streak intensity is the time the drop spends on it over the exposure). Samples
   behind the rendered surface at their pixel (``z >= depth``) are dropped (occlusion). Wide
   particles are spread by a normalized box of their width, by size class.
4. **Compositing** (:func:`composite`): coverage ``c`` per pixel becomes opacity
   ``alpha = 1 - exp(-c)`` (independent overlaps), ``I = I (1 - alpha) + alpha L_particle``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simgen.effects.precipitation import SizeDistribution

#: Coverage below which a lone particle is not drawn (a few 8-bit codes at full
#: contrast); fainter particles act only together, as the extinction.
MIN_COVERAGE = 3e-2
#: Narrower particle images are not drawn either (a haze of sub-pixel flakes is extinction).
MIN_WIDTH_PX = 0.5
#: Nearest particle distance, m.
Z_NEAR = 0.2
#: Farthest particle distance, m (whatever the size).
Z_FAR_MAX = 50.0
#: Share of the image extent added on each side when sampling (streaks that enter the image).
MARGIN = 0.15
#: Cap on the particles drawn per frame (the expected count beyond it is reported, not drawn).
MAX_PARTICLES = 200_000
#: Upper bounds of the width classes (px) spread by one box filter each.
WIDTH_CLASSES = (1.5, 3.0, 6.0, 12.0, 24.0, np.inf)


@dataclass(frozen=True)
class Particles:
    """Particles of one kind in the camera frame at the middle of the exposure."""

    kind: str  # "rain" or "snow"
    position_c: np.ndarray  # (n, 3) m, OpenCV camera frame
    diameter_m: np.ndarray  # (n,) geometric size (a snowflake's, not its melted diameter)
    velocity_c: np.ndarray  # (n, 3) m/s relative to the camera
    expected: float  # the mean count the sample was drawn from

    def __len__(self) -> int:
        return int(self.diameter_m.shape[0])


def far_distance(d_mm: np.ndarray, speed: np.ndarray, focal_px: float, exposure_s: float):
    """Distance beyond which a particle of diameter ``d_mm`` covers less than
    ``MIN_COVERAGE`` of every pixel or its image is narrower than ``MIN_WIDTH_PX``. Its image
    (diameter ``w = f D / z``, streak ``L = f v T / z``) covers ``(pi / 4) w^2 / max(L + w, 1)``
    of each pixel it crosses, which falls below the limit beyond
    ``min((pi / 4) f D^2 / (c (v T + D)), f D sqrt(pi / (4 c)))``."""
    d = np.asarray(d_mm) * 1e-3
    streak = np.pi / 4.0 * focal_px * d * d / (MIN_COVERAGE * (speed * exposure_s + d))
    point = focal_px * d * np.sqrt(np.pi / (4.0 * MIN_COVERAGE))
    wide = focal_px * d / MIN_WIDTH_PX
    return np.clip(np.minimum(np.minimum(streak, point), wide), Z_NEAR, Z_FAR_MAX)


def sample_particles(
    dsd: SizeDistribution,
    rng: np.random.Generator,
    *,
    bounds_n: tuple[float, float, float, float],
    z_far: np.ndarray | float,
    velocity_c_of: Callable[[np.ndarray], np.ndarray],
    z_near: float = Z_NEAR,
) -> Particles:
    """Particles in the volume ``x/z in [x0, x1], y/z in [y0, y1], z in [z_near, z_far]``.

    ``z_far``: one distance, or one per size bin of ``dsd.bins()``; ``velocity_c_of(d_mm)``
    gives the velocity relative to the camera (n, 3) of particles of diameters ``d_mm``.
    """
    x0, x1, y0, y1 = bounds_n
    edges, density = dsd.bins()
    z1 = np.maximum(np.broadcast_to(np.asarray(z_far, np.float64), density.shape), z_near)
    volume = (x1 - x0) * (y1 - y0) / 3.0 * (z1**3 - z_near**3)  # frustum slab, m^3
    expected = density * volume
    counts = rng.poisson(expected)
    total = int(counts.sum())
    if total > MAX_PARTICLES:  # keep the count bounded; thin uniformly
        counts = rng.binomial(counts, MAX_PARTICLES / total)
    b = np.repeat(np.arange(len(counts)), counts)
    d_mm = dsd.sample_sizes(edges, b, rng) if len(b) else np.zeros(0)
    u = rng.random((len(b), 3))
    z = np.cbrt(z_near**3 + u[:, 0] * (z1[b] ** 3 - z_near**3))
    pos = np.stack([(x0 + u[:, 1] * (x1 - x0)) * z, (y0 + u[:, 2] * (y1 - y0)) * z, z], 1)
    vel = velocity_c_of(d_mm) if len(b) else np.zeros((0, 3))
    size_m = dsd.geometric_diameter(d_mm) * 1e-3
    return Particles(dsd.kind, pos, size_m, vel, float(expected.sum()))


def rasterize(
    p: Particles,
    project: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    focal_px: float,
    exposure_s: float,
    depth_m: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """(H, W) float32 coverage: pixel-exposure fractions covered by the particles in front of
    the rendered surfaces (sum over particles; may exceed 1 where they overlap); into ``out``
    when given."""
    h, w = depth_m.shape
    if out is None:
        cover = np.zeros((h, w), np.float32)
    else:
        cover = out
        cover.fill(0.0)
    if len(p) == 0:
        return cover
    half = p.velocity_c * (exposure_s / 2.0)
    a, za = project(_front(p.position_c - half))
    b, zb = project(_front(p.position_c + half))
    width = focal_px * p.diameter_m / p.position_c[:, 2]
    energy = np.pi / 4.0 * width * width
    seg = b - a
    length = np.sqrt((seg * seg).sum(1))
    ok = np.isfinite(length) & np.isfinite(energy)
    n = np.where(ok, np.ceil(np.nan_to_num(length)).astype(np.int64) + 1, 0)
    n = np.minimum(n, 4 * (w + h))
    idx = np.repeat(np.arange(len(n)), n)
    if idx.size == 0:
        return cover
    start = np.cumsum(n) - n
    s = (np.arange(idx.size) - start[idx]) / np.maximum(n[idx] - 1, 1)
    pts = a[idx] + s[:, None] * seg[idx]
    z = za[idx] + s * (zb[idx] - za[idx])
    u = np.floor(pts[:, 0] + 0.5).astype(np.int64)
    v = np.floor(pts[:, 1] + 0.5).astype(np.int64)
    on = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    u, v, z, idx = u[on], v[on], z[on], idx[on]
    surf = depth_m[v, u]
    front = (surf <= 0) | (z < surf)
    u, v, idx = u[front], v[front], idx[front]
    value = (energy / n)[idx]
    cls = np.searchsorted(np.asarray(WIDTH_CLASSES), width)[idx]
    flat = cover.reshape(-1)
    for c in np.unique(cls):
        sel = cls == c
        uu, vv, val = u[sel], v[sel], value[sel].astype(np.float32)
        if c == 0:  # narrow streaks: straight into their pixels
            _accumulate(flat, vv * w + uu, val)
            continue
        # wider particles: spread over the class's typical width by a normalized k x k box
        # (the total is kept but for what falls outside the image)
        k = round(WIDTH_CLASSES[c - 1] * (1.5 if np.isfinite(WIDTH_CLASSES[c]) else 1.0))
        _spread(cover, uu, vv, val, k)
    return cover


def _accumulate(flat: np.ndarray, index: np.ndarray, value: np.ndarray) -> None:
    """``flat[index] += value`` with repeated indices summed."""
    if index.size * 8 < flat.size:  # few samples: sum the repeats, then one scatter
        uniq, inverse = np.unique(index, return_inverse=True)
        flat[uniq] += np.bincount(inverse, weights=value).astype(np.float32)
    else:
        flat += np.bincount(index, weights=value, minlength=flat.size).astype(np.float32)


def _spread(cover: np.ndarray, u: np.ndarray, v: np.ndarray, value: np.ndarray, k: int) -> None:
    """Add samples ``value`` at (u, v), each spread evenly over the k x k pixels around it (the
    footprint of OpenCV's ``blur`` with a centered anchor), dropping what leaves the image."""
    import cv2

    h, w = cover.shape
    lo = k // 2  # the box covers [p - (k - 1 - k // 2), p + k // 2] in each direction
    r0, r1 = max(int(v.min()) - lo, 0), min(int(v.max()) + k - lo, h)
    c0, c1 = max(int(u.min()) - lo, 0), min(int(u.max()) + k - lo, w)
    if u.size * k * k * 4 < (r1 - r0) * (c1 - c0):  # sparse: splat each sample
        dv, du = np.mgrid[-(k - 1 - lo) : lo + 1, -(k - 1 - lo) : lo + 1]
        uu = (u[:, None] + du.ravel()).ravel()
        vv = (v[:, None] + dv.ravel()).ravel()
        inside = (uu >= 0) & (uu < w) & (vv >= 0) & (vv < h)
        val = np.repeat(value / np.float32(k * k), k * k)[inside]
        _accumulate(cover.reshape(-1), vv[inside] * w + uu[inside], val)
        return
    # dense: accumulate in the samples' bounding box, then one box filter
    buf = np.zeros((r1 - r0, c1 - c0), np.float32)
    _accumulate(buf.reshape(-1), (v - r0) * (c1 - c0) + (u - c0), value)
    cover[r0:r1, c0:c1] += cv2.blur(buf, (k, k), borderType=cv2.BORDER_CONSTANT)


def _front(points_c: np.ndarray, min_z: float = 0.05) -> np.ndarray:
    out = points_c.copy()
    out[:, 2] = np.maximum(out[:, 2], min_z)
    return out


def composite(linear: np.ndarray, cover: np.ndarray, radiance: np.ndarray) -> np.ndarray:
    """Blend particles of linear ``radiance`` (3,) over ``linear`` with opacity
    ``alpha = 1 - exp(-cover)``; returns the opacity (H, W). In place on ``linear``.
    (:mod:`simgen.run.camera_effects` lays fog and every kind of particle over the image at
    once with :func:`simgen.effects.camera.blend_layers`, from :func:`transmittance`.)"""
    from simgen.effects.camera import blend_layers

    t = transmittance(cover)
    linear[...] = blend_layers(linear, [(t, radiance)])
    return np.subtract(np.float32(1.0), t)


def transmittance(cover: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(H, W) float32 share of each pixel no particle covers, ``exp(-cover)``: independent
    overlaps (a Poisson count of particles). ``out`` may be ``cover``."""
    import cv2

    t = cv2.multiply(np.asarray(cover, np.float32), -1.0, dst=out)
    return cv2.exp(t, dst=t)
