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


def bev_image(
    points_s: np.ndarray, labels: np.ndarray, n_classes: int, *, extent_m: float, size_px: int = 800
) -> np.ndarray:
    """Bird's-eye view of a point cloud (sensor frame, x forward = up, y left = left), points
    colored by class id; a grid line every 10 m and the sensor as a white cross."""
    img = np.zeros((size_px, size_px, 3), np.uint8)
    scale = size_px / (2.0 * extent_m)
    c = size_px / 2.0
    for r in np.arange(10.0, extent_m + 1e-9, 10.0):
        cv2.circle(img, (int(c), int(c)), int(r * scale), (45, 45, 45), 1)
    u = np.rint(c - points_s[:, 1] * scale).astype(np.int64)
    v = np.rint(c - points_s[:, 0] * scale).astype(np.int64)
    ok = (u >= 0) & (u < size_px) & (v >= 0) & (v < size_px)
    colors = palette(max(n_classes, int(labels.max(initial=0)) + 1))
    order = np.argsort(points_s[ok, 2])  # high points last: they stay visible from above
    uu, vv, cc = u[ok][order], v[ok][order], colors[labels[ok][order]]
    for du, dv in ((0, 0), (1, 0), (0, 1), (1, 1)):  # 2x2 pixel dots
        img[np.minimum(vv + dv, size_px - 1), np.minimum(uu + du, size_px - 1)] = cc
    cv2.drawMarker(img, (int(c), int(c)), (255, 255, 255), cv2.MARKER_CROSS, 12, 2)
    return img


def range_image_rgb(range_image: np.ndarray, min_height: int = 256) -> np.ndarray:
    """A LiDAR range image (rings x columns) colorized, rows repeated to be at least
    ``min_height`` pixels tall."""
    rep = max(1, -(-min_height // max(range_image.shape[0], 1)))
    return np.repeat(colorize_depth(range_image), rep, axis=0)


def draw_points(
    rgb: np.ndarray,
    points_c: np.ndarray,
    k: np.ndarray,
    colors: np.ndarray,
    radius: int = 1,
    dist: np.ndarray | None = None,
) -> np.ndarray:
    """Points in the OpenCV camera frame drawn on an image (only those in front of the camera);
    ``dist``: the camera's lens distortion, if any."""
    from simgen.sensors.lens import project_distorted

    out = rgb.copy()
    h, w = out.shape[:2]
    front = points_c[:, 2] > 1e-3
    p, col = points_c[front], colors[front]
    uv, _ = project_distorted(k, dist, p)
    u, v = uv[:, 0], uv[:, 1]
    ok = (u >= 0) & (u <= w - 1) & (v >= 0) & (v <= h - 1)
    for x, y, cc in zip(np.rint(u[ok]), np.rint(v[ok]), col[ok], strict=True):
        cv2.circle(out, (int(x), int(y)), radius, tuple(int(q) for q in cc), -1)
    return out
