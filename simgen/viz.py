"""Images for people: colorized depth, label palettes, overlays (uint8 RGB arrays)."""

from __future__ import annotations

import cv2
import numpy as np


def palette(n: int) -> np.ndarray:
    """(n, 3) uint8 distinct colors; index 0 (background) is black. Deterministic."""
    out = np.zeros((max(n, 1), 3), np.uint8)
    for i in range(1, n):
        hue = (i * 0.61803398875) % 1.0
        sat = 0.65 + 0.35 * ((i * 7) % 3) / 2
        val = 0.75 + 0.25 * ((i * 5) % 2)
        hsv = np.array([[[hue * 179, sat * 255, val * 255]]], np.uint8)
        out[i] = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return out


def colorize_labels(labels: np.ndarray, n: int | None = None) -> np.ndarray:
    """RGB image of an integer label map (0 stays black)."""
    lab = labels.astype(np.int64)
    k = int(lab.max()) + 1 if n is None else n
    return palette(max(k, int(lab.max()) + 1))[lab]


def colorize_depth(depth_m: np.ndarray, max_m: float | None = None) -> np.ndarray:
    """Turbo-colored depth (near = red/yellow... far = blue); no-surface pixels black."""
    valid = depth_m > 0
    if not np.any(valid):
        return np.zeros((*depth_m.shape, 3), np.uint8)
    lo = float(depth_m[valid].min())
    hi = float(max_m if max_m is not None else np.percentile(depth_m[valid], 99))
    scaled = np.clip((depth_m - lo) / max(hi - lo, 1e-6), 0, 1)
    img = cv2.applyColorMap(((1.0 - scaled) * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
    img = img.copy()
    img[~valid] = 0
    return img


def overlay(rgb: np.ndarray, instance: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """RGB with instance masks tinted and outlined."""
    colors = colorize_labels(instance)
    mask = instance > 0
    out = rgb.astype(np.float32)
    out[mask] = (1 - alpha) * out[mask] + alpha * colors[mask]
    edges = (
        cv2.morphologyEx(instance.astype(np.uint16), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
        > 0
    )
    out[edges] = 255
    return out.astype(np.uint8)


def write_png(path: str, rgb: np.ndarray) -> None:
    if not cv2.imwrite(path, rgb[..., ::-1] if rgb.ndim == 3 else rgb):
        raise OSError(f"cannot write {path}")
