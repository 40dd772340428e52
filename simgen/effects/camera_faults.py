"""Camera sensor faults as pure functions on RGB images (uint8, (H, W, 3)).

Faults corrupt only the RGB image; depth and segmentation stay ground truth (the event labels
say which frames carry a fault). Random parts are drawn from generators passed in: the fixed
parts of a fault (where the blob sits, which pixels are dead) from the event's stream, the
parts that change every frame (noise) from the frame's stream.
"""

from __future__ import annotations

import numpy as np


def blob_alpha(
    height: int, width: int, center_uv: tuple[float, float], radius: float, softness: float
) -> np.ndarray:
    """(H, W) float32 coverage of a round blob: 1 inside ``(1 - softness) * r``, falling
    linearly to 0 at ``r``. ``center_uv`` is in fractions of width and height, ``radius`` a
    fraction of the image height."""
    r = radius * height
    cx, cy = center_uv[0] * (width - 1), center_uv[1] * (height - 1)
    yy, xx = np.mgrid[0:height, 0:width]
    d = np.hypot(xx - cx, yy - cy)
    inner = r * (1.0 - softness)
    if r <= inner:
        return (d <= r).astype(np.float32)
    return np.clip((r - d) / (r - inner), 0.0, 1.0).astype(np.float32)


def occlude(
    rgb: np.ndarray, alpha: np.ndarray, opacity: float, color: tuple[float, float, float]
) -> np.ndarray:
    """Blend a blob of ``color`` (components in [0, 1]) over the image."""
    a = (alpha * opacity)[..., None]
    out = rgb.astype(np.float32) * (1.0 - a) + np.asarray(color, np.float32)[:3] * 255.0 * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def blackout(rgb: np.ndarray) -> np.ndarray:
    return np.zeros_like(rgb)


def noise_burst(rgb: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian noise of ``std`` (8-bit units) to every channel of every pixel."""
    noisy = rgb.astype(np.float32) + rng.normal(0.0, std, rgb.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def dead_pixel_indices(
    height: int, width: int, fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Flat indices of ``round(fraction * H * W)`` distinct pixels."""
    n = round(fraction * height * width)
    return rng.choice(height * width, size=n, replace=False)


def dead_pixels(rgb: np.ndarray, flat_indices: np.ndarray, value: int) -> np.ndarray:
    out = rgb.copy()
    out.reshape(-1, rgb.shape[-1])[flat_indices] = value
    return out
