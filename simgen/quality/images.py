"""Image appearance measures (pure functions of RGB images) and their streaming accumulator.

Per image, from its 8-bit gray version (OpenCV's ``RGB2GRAY``: 0.299 R + 0.587 G + 0.114 B):

* brightness: mean gray / 255 (0..1)
* contrast: RMS contrast, standard deviation of gray / 255 (0..0.5)
* saturation: mean HSV saturation (OpenCV ``RGB2HSV``, S / 255; 0..1)
* sharpness: variance of the Laplacian of gray (OpenCV ``Laplacian``, 3x3 aperture, on 0..255
  values); blur lowers it
* edge density: share of pixels on Canny edges (thresholds 100 and 200)

and over all pixels, the histogram of each color channel (32 bins of 8 values).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from simgen.quality.accum import Histogram

CANNY_LOW, CANNY_HIGH = 100, 200
CHANNEL_BINS = 32


def image_measures(rgb: np.ndarray) -> dict[str, float]:
    """The per-image measures of one (H, W, 3) uint8 RGB image."""
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    g = gray.astype(np.float64)
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)
    return {
        "brightness": float(g.mean() / 255.0),
        "contrast": float(g.std() / 255.0),
        "saturation": float(hsv[..., 1].mean() / 255.0),
        "sharpness": float(cv2.Laplacian(gray, cv2.CV_64F, ksize=1).var()),
        "edge_density": float((cv2.Canny(gray, CANNY_LOW, CANNY_HIGH) > 0).mean()),
    }


def channel_counts(rgb: np.ndarray) -> np.ndarray:
    """(3, 32) pixel counts of each channel's values in bins of 8 (images of any leading shape)."""
    flat = np.asarray(rgb, np.uint8).reshape(-1, 3) >> 3
    return np.stack([np.bincount(flat[:, c], minlength=CHANNEL_BINS) for c in range(3)])


def _measure_histograms() -> dict[str, Histogram]:
    return {
        "brightness": Histogram(0.0, 1.0, 50),
        "contrast": Histogram(0.0, 0.5, 50),
        "saturation": Histogram(0.0, 1.0, 50),
        "sharpness": Histogram(0.1, 1e5, 60, log=True, unit="var(Laplacian)"),
        "edge_density": Histogram(0.0, 0.5, 50),
    }


CHANNELS = ("red", "green", "blue")


class ImageStats:
    """Histograms of the per-image measures and of the pixel values of each channel."""

    def __init__(self) -> None:
        self.frames = 0
        self.measures = _measure_histograms()
        self.channels = {c: Histogram(0.0, 256.0, CHANNEL_BINS) for c in CHANNELS}

    def add_images(self, rgb: np.ndarray) -> list[dict[str, float]]:
        """Add a block of (F, H, W, 3) images; returns each image's measures."""
        out = [image_measures(img) for img in rgb]
        for k, h in self.measures.items():
            h.add(np.array([m[k] for m in out]))
        counts = channel_counts(rgb)
        for c, name in enumerate(CHANNELS):
            self.channels[name].add_counts(counts[c])
        self.frames += len(rgb)
        return out

    def merge(self, other: ImageStats) -> None:
        self.frames += other.frames
        for k, h in other.measures.items():
            self.measures[k].merge(h)
        for k, h in other.channels.items():
            self.channels[k].merge(h)

    def to_json(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "measures": {k: h.to_json() for k, h in self.measures.items()},
            "channels": {k: h.to_json() for k, h in self.channels.items()},
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ImageStats:
        s = cls()
        s.frames = int(d["frames"])
        s.measures = {k: Histogram.from_json(v) for k, v in d["measures"].items()}
        s.channels = {k: Histogram.from_json(v) for k, v in d["channels"].items()}
        return s
