"""Amodal masks and boxes, visibility and truncation (pure numpy).

An object's *amodal* mask is what it would cover with nothing else in the scene. The renderer
draws each object alone inside a pixel window that holds its whole projection (from its 3D box,
clipped at the near plane, and reaching at most ``WINDOW_MARGIN`` image sizes, and at most
``WINDOW_MARGIN_MAX_PX`` pixels, beyond the image),
in the same pixel grid as the frame; this module turns those windows into labels:

* ``amodal mask`` = the rendered mask inside the image, united with the visible mask (the two
  rasterize the same triangles, so the union only guards against float rounding at edges);
* ``visibility`` = visible pixels / amodal pixels inside the image (occlusion only);
* ``truncation`` = share of the object's whole projection that falls outside the image
  (a lower bound when the window was capped by the margin).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simgen.labels.boxes import BOX_EDGES, mask_box, project

#: How far beyond the image an amodal window may reach, in image widths / heights, and pixels.
WINDOW_MARGIN = 0.5
WINDOW_MARGIN_MAX_PX = 512


def clip_box_at_near(corners_c: np.ndarray, near: float) -> np.ndarray:
    """Points spanning the part of a box (8 camera-frame corners) in front of the near plane:
    the corners with z >= near and the intersections of its edges with z = near."""
    z = corners_c[:, 2]
    keep = [corners_c[z >= near]]
    a, b = corners_c[BOX_EDGES[:, 0]], corners_c[BOX_EDGES[:, 1]]
    za, zb = a[:, 2], b[:, 2]
    cross = (za - near) * (zb - near) < 0
    if np.any(cross):
        t = (near - za[cross]) / (zb[cross] - za[cross])
        keep.append(a[cross] + t[:, None] * (b[cross] - a[cross]))
    return np.concatenate(keep)


def amodal_window(
    corners_c: np.ndarray, k: np.ndarray, near: float, width: int, height: int
) -> tuple[tuple[int, int, int, int], bool] | None:
    """Pixel window ``(u0, v0, u1, v1)`` (half-open) holding every pixel whose center the box's
    projection covers, capped at ``WINDOW_MARGIN`` beyond the image, and whether it was capped.
    None when the box is behind the near plane or its window misses the image."""
    pts = clip_box_at_near(corners_c, near)
    if len(pts) == 0:
        return None
    uv, _ = project(k, pts)
    lo, hi = np.nanmin(uv, axis=0), np.nanmax(uv, axis=0)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        return None
    mu = min(math.ceil(WINDOW_MARGIN * width), WINDOW_MARGIN_MAX_PX)
    mv = min(math.ceil(WINDOW_MARGIN * height), WINDOW_MARGIN_MAX_PX)
    want = (
        math.floor(lo[0]) - 1,
        math.floor(lo[1]) - 1,
        math.ceil(hi[0]) + 2,
        math.ceil(hi[1]) + 2,
    )
    win = (
        max(want[0], -mu),
        max(want[1], -mv),
        min(want[2], width + mu),
        min(want[3], height + mv),
    )
    if win[0] >= min(win[2], width) or win[1] >= min(win[3], height) or win[2] <= 0 or win[3] <= 0:
        return None
    return win, win != want


@dataclass(frozen=True)
class AmodalLabels:
    """One object's amodal labels in one frame."""

    box: np.ndarray  # (4,) int32 [u0, v0, u1, v1) of the amodal mask inside the image
    pixels: int  # amodal pixels inside the image
    visibility: float  # visible / amodal pixels (NaN when the amodal mask is empty)
    truncation: float  # share of the whole projection outside the image
    crop: np.ndarray  # (v1 - v0, u1 - u0) bool: the amodal mask inside ``box``


def amodal_labels(
    window: tuple[int, int, int, int],
    rendered: np.ndarray,
    instance: np.ndarray,
    instance_id: int,
    tight_box: np.ndarray,
) -> AmodalLabels:
    """Labels of one object from its mask rendered alone in ``window``, the frame's instance
    image and the object's tight box (zeros when not visible)."""
    h, w = instance.shape
    u0, v0, u1, v1 = window
    # work inside the image part of (window | tight box) only
    tb = tight_box if tight_box[2] > tight_box[0] else np.array([w, h, 0, 0])
    ru0, rv0 = max(min(u0, int(tb[0])), 0), max(min(v0, int(tb[1])), 0)
    ru1, rv1 = min(max(u1, int(tb[2])), w), min(max(v1, int(tb[3])), h)
    region = (slice(rv0, max(rv1, rv0)), slice(ru0, max(ru1, ru0)))
    visible = instance[region] == instance_id
    inside = np.zeros(visible.shape, bool)
    iu0, iv0, iu1, iv1 = max(u0, 0), max(v0, 0), min(u1, w), min(v1, h)
    if iu0 < iu1 and iv0 < iv1:
        inside[iv0 - rv0 : iv1 - rv0, iu0 - ru0 : iu1 - ru0] = rendered[
            iv0 - v0 : iv1 - v0, iu0 - u0 : iu1 - u0
        ]
    extra = visible & ~inside  # visible pixels the lone render missed (rounding at edges)
    amodal = inside | visible
    pixels = int(amodal.sum())
    total = int(rendered.sum()) + int(extra.sum())
    box = mask_box(amodal)
    crop = amodal[box[1] : box[3], box[0] : box[2]]
    if pixels:
        box = box + np.array([ru0, rv0, ru0, rv0], np.int32)
    n_visible = int(visible.sum())
    return AmodalLabels(
        box=box,
        pixels=pixels,
        visibility=n_visible / pixels if pixels else math.nan,
        truncation=1.0 - pixels / total if total else math.nan,
        crop=crop,
    )


def pack_masks(crops: list[np.ndarray]) -> np.ndarray:
    """Concatenated bit-packed crops (uint8, ``np.packbits`` of each crop's rows in C order)."""
    if not crops:
        return np.zeros(0, np.uint8)
    return np.concatenate([np.packbits(c.ravel()) for c in crops])


def unpack_masks(
    packed: np.ndarray, boxes: np.ndarray, pixels: np.ndarray, height: int, width: int
) -> dict[int, np.ndarray]:
    """Full-image amodal masks ``{instance_id: (H, W) bool}`` of one frame from the stored
    ``amodal_masks`` bits, ``box2d_amodal`` (N, 4) and ``amodal_pixels`` (N,): the crops are
    stored for objects with ``amodal_pixels > 0`` in instance-id order."""
    out: dict[int, np.ndarray] = {}
    pos = 0
    for i in np.nonzero(pixels > 0)[0]:
        u0, v0, u1, v1 = (int(x) for x in boxes[i])
        n = (u1 - u0) * (v1 - v0)
        nbytes = (n + 7) // 8
        bits = np.unpackbits(packed[pos : pos + nbytes])[:n].astype(bool)
        pos += nbytes
        mask = np.zeros((height, width), bool)
        mask[v0:v1, u0:u1] = bits.reshape(v1 - v0, u1 - u0)
        out[int(i) + 1] = mask
    if pos != len(packed):
        raise ValueError(f"amodal mask bits: used {pos} of {len(packed)} bytes")
    return out
