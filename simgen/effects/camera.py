"""Camera effects: pure, vectorized functions of images, depth, parameters and a seeded
generator (numpy and OpenCV; no per-pixel Python loops).

Images are float32 *linear* RGB (:func:`simgen.effects.color.decode`), shape (H, W, 3); depth is
the camera-z depth (H, W) float32 with 0 where no surface was hit. docs/weather.md gives the
formulas and their sources; :mod:`simgen.run.camera_effects` applies them in order.
"""

from __future__ import annotations

import math

import numpy as np

#: The exposure at which the renderer's image has its nominal brightness (value 1 = full scale).
REFERENCE_EXPOSURE_S = 0.01
#: Pixels with fewer expected electrons get exact Poisson samples; above, the Gaussian with the
#: Poisson variance (relative error of its skewness below 0.25).
POISSON_EXACT_BELOW = 16.0
#: Auto exposure: target log-average luminance and the range of its scale (ISO 2720 mid-grey).
AUTO_EXPOSURE_TARGET = 0.18
AUTO_EXPOSURE_RANGE = (1.0 / 16.0, 16.0)
#: Most sub-frame samples of the motion blur.
MAX_BLUR_SAMPLES = 16


def distance_from_depth(depth_m: np.ndarray, ray_norm: np.ndarray) -> np.ndarray:
    """Euclidean distance from the camera center of every pixel's surface point:
    ``d = z * sqrt(1 + x^2 + y^2)`` with (x, y) the pixel's normalized ray; inf where no surface."""
    d = depth_m * ray_norm
    d[depth_m <= 0] = np.inf
    return d


def koschmieder(
    linear: np.ndarray, distance_m: np.ndarray, beta: float, airlight: np.ndarray
) -> np.ndarray:
    """Koschmieder's law on linear radiance: ``I = J t + A (1 - t)``, ``t = exp(-beta d)``.
    ``airlight`` (3,) linear. In place on ``linear`` (returned)."""
    if beta <= 0:
        return linear
    t = np.exp(np.float32(-beta) * distance_m.astype(np.float32, copy=False))
    a = np.asarray(airlight, np.float32)
    linear -= a
    linear *= t[..., None]
    linear += a
    return linear


def vignetting_gain(ray_norm: np.ndarray, strength: float) -> np.ndarray:
    """(H, W) float32 natural vignetting ``cos^4(theta)^strength``, ``cos theta = 1 / |ray|``."""
    return (ray_norm.astype(np.float64) ** (-4.0 * strength)).astype(np.float32)


def chromatic_maps(
    k: np.ndarray, width: int, height: int, shift_px: float
) -> tuple[np.ndarray, ...]:
    """Remap grids (map_x, map_y) for the red and the blue channel: each is magnified about the
    principal point so that it moves ``+shift_px`` (red) / ``-shift_px`` (blue) at the farthest
    image corner, linearly in the radius."""
    cx, cy = k[0, 2], k[1, 2]
    r_max = max(math.hypot(u - cx, v - cy) for u in (0, width - 1) for v in (0, height - 1))
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    out = []
    for sign in (1.0, -1.0):
        s = 1.0 + sign * shift_px / max(r_max, 1e-6)
        # output pixel p shows the source at c + (p - c) / s
        out += [((u - cx) / s + cx).astype(np.float32), ((v - cy) / s + cy).astype(np.float32)]
    return tuple(out)


def chromatic_aberration(linear: np.ndarray, maps: tuple[np.ndarray, ...]) -> np.ndarray:
    """Lateral chromatic aberration: red and blue resampled (bilinear) with ``maps``."""
    import cv2

    out = linear.copy()
    for c, (mx, my) in ((0, maps[0:2]), (2, maps[2:4])):
        out[..., c] = cv2.remap(
            np.ascontiguousarray(linear[..., c]),
            mx,
            my,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
    return out


def motion_blur(linear: np.ndarray, half_motion_px: np.ndarray) -> np.ndarray:
    """Blur along each pixel's own motion: a box filter over the segment ``p + s m(p)``,
    ``s`` in [-1, 1], where ``m`` (H, W, 2) is the image displacement of the pixel's surface
    point over half the exposure.

    Built by repeated halving: pass ``i`` averages the image sampled (bilinear) at
    ``p -/+ m(p) / 2^i``; after ``k`` passes every pixel is the mean of ``2^k`` evenly spaced
    samples over the segment (``2k`` resamplings instead of ``2^k``). ``k`` follows the longest
    motion (about one sample per pixel of streak, at most ``MAX_BLUR_SAMPLES``)."""
    import cv2

    mx = np.ascontiguousarray(half_motion_px[..., 0], np.float32)
    my = np.ascontiguousarray(half_motion_px[..., 1], np.float32)
    mag = cv2.magnitude(mx, my)
    longest = float(np.percentile(mag[::4, ::4], 99.9)) if mag.size else 0.0
    taps = min(MAX_BLUR_SAMPLES, math.ceil(2.0 * longest) + 1)
    if taps <= 1:
        return linear
    passes = math.ceil(math.log2(taps))
    # only the rows and columns that move (a still camera: the moving objects)
    moving = mag > 0.05
    rows, cols = np.flatnonzero(moving.any(1)), np.flatnonzero(moving.any(0))
    if rows.size == 0:
        return linear
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    u = np.arange(c0, c1, dtype=np.float32)[None, :]
    v = np.arange(r0, r1, dtype=np.float32)[:, None]
    mx, my = mx[r0:r1, c0:c1], my[r0:r1, c0:c1]
    out = linear.copy()
    for i in range(1, passes + 1):
        sx, sy = mx * np.float32(0.5**i), my * np.float32(0.5**i)
        a = cv2.remap(out, u - sx, v - sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        b = cv2.remap(out, u + sx, v + sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        cv2.addWeighted(a, 0.5, b, 0.5, 0.0, dst=a)
        out[r0:r1, c0:c1] = a
    return out


def auto_exposure_scale(linear: np.ndarray) -> float:
    """Scale that brings the log-average luminance to ``AUTO_EXPOSURE_TARGET`` (Reinhard et al.
    2002's key value), clipped to ``AUTO_EXPOSURE_RANGE``; computed on every 4th pixel."""
    from simgen.effects.color import LUMINANCE

    y = linear[::4, ::4] @ LUMINANCE.astype(np.float32)
    avg = float(np.exp(np.mean(np.log(1e-4 + y))))
    lo, hi = AUTO_EXPOSURE_RANGE
    return float(np.clip(AUTO_EXPOSURE_TARGET / max(avg, 1e-9), lo, hi))


def sensor_response(
    linear: np.ndarray,
    exposure_s: float,
    gain: float,
    rng: np.random.Generator | None,
    full_well_e: float | None = None,
    read_noise_e: float = 0.0,
) -> np.ndarray:
    """Exposure, gain and (when ``full_well_e`` is given) Poisson-Gaussian noise.

    The render ``x`` is the image of a ``REFERENCE_EXPOSURE_S`` exposure at gain 1 with value 1
    at full well. A pixel collects ``e = x * (t / t_ref) * full_well`` electrons (at most the
    full well); the output is ``gain * (Poisson(e) + N(0, read_noise^2)) / full_well`` (Foi et
    al. 2008's Poisson-Gaussian model). Without noise: ``gain * x * t / t_ref``."""
    tau = np.float32(exposure_s / REFERENCE_EXPOSURE_S)
    if full_well_e is None:
        linear *= np.float32(gain) * tau
        return linear
    assert rng is not None
    fw = np.float32(full_well_e)
    e = np.minimum(linear * (tau * fw), fw)
    z = standard_normal(rng, e.shape)
    read = np.float32(read_noise_e**2)
    small = e < POISSON_EXACT_BELOW
    # shot and read noise in one Gaussian draw (variance e + read^2); exact Poisson when small
    noisy = e + np.sqrt(e + read) * z
    if np.any(small):
        noisy[small] = rng.poisson(e[small]).astype(np.float32) + np.sqrt(read) * z[small]
    noisy *= np.float32(gain) / fw
    return noisy


def standard_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """float32 standard normal samples by the Box–Muller transform of ``rng``'s uniforms (about
    three times faster than ``Generator.standard_normal`` here; tails reach 5.8 sigma)."""
    import cv2

    n = int(np.prod(shape))
    m = (n + 1) // 2
    u = rng.random(2 * m, dtype=np.float32)
    one_minus = np.subtract(np.float32(1.0), u[:m]).reshape(-1, 1)  # in (0, 1]: finite log
    r = cv2.sqrt(cv2.log(one_minus) * np.float32(-2.0)).reshape(-1, 1)
    theta = (u[m:] * np.float32(2.0 * np.pi)).reshape(-1, 1)
    x, y = cv2.polarToCart(r, theta)
    out = np.empty(2 * m, np.float32)
    out[:m], out[m:] = x.ravel(), y.ravel()
    return out[:n].reshape(shape)


def jpeg(image_u8: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip (OpenCV's libjpeg, 4:2:0 chroma subsampling) of an RGB uint8 image."""
    import cv2

    ok, buf = cv2.imencode(".jpg", image_u8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 RGB
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if decoded is None:  # pragma: no cover - OpenCV decodes what it encoded
        raise RuntimeError("JPEG decoding failed")
    return np.ascontiguousarray(decoded[..., ::-1])
