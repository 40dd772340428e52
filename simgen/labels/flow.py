"""Optical and scene flow from rigid motion (pure numpy), not from image matching.

Every labeled pixel of a frame sees a point on one visual part (a rigid body: an object, or one
link of an articulated object). Between two frames of a camera the point moves with its part,
and the camera moves too. With ``T_w_p`` the part's pose and ``T_w_c`` the camera's::

    X_c1 = T_c1_w(t1) @ T_w_p(t1) @ inv(T_w_p(t0)) @ T_w_c(t0) @ X_c0

where ``X_c0`` is the pixel's point back-projected with its depth. The flow is the projection
of ``X_c1`` minus the pixel; the scene flow is the point's world displacement. A status per
pixel says whether the point is seen in the other frame (:mod:`simgen.labels.occlusion`).

How it is computed (float32, whole images, no per-part loops): one 4x4 matrix ``M`` per part
carries the camera-0 point to camera 1 (parts that do not move in the world share the
camera's own motion). For a pinhole camera ``X_c0 = z K^-1 (u, v, 1)``, so the projected point
is ``p = z H (u, v, 1) + K t`` with ``H = K R K^-1`` (R, t: M's rotation and translation): a
homography of the pixel scaled by its depth. With ``E = H - I`` and ``q = z E (u, v, 1) + K t``
the flow is ``du = (q_0 - u q_2) / (z + q_2)`` (and ``dv`` alike): small terms only, so float32
keeps ~1e-5 px at any image size. Pixels of still parts use the camera's motion over the whole
image (broadcast over rows and columns); pixels of moving parts are gathered and use their
part's coefficients. A distorted camera back-projects each pixel along its own ray instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from simgen.geometry import invert_pose
from simgen.labels.occlusion import DepthTest

#: Flow status per pixel.
NO_FLOW = 0  # no surface at this pixel, or no other frame (first/last of the camera)
VISIBLE = 1  # the point is seen in the other frame
OCCLUDED = 2  # in the other frame's image, but hidden behind a surface
OUTSIDE = 3  # leaves the image (or passes behind the near plane)

#: Whole-image work goes in blocks of rows of about this many pixels: the temporaries of a
#: block stay in the CPU cache (twice as fast as whole images at 640x480).
BLOCK_PIXELS = 20_000


@dataclass(frozen=True)
class FlowView:
    """What flow needs of one camera frame."""

    part: np.ndarray  # (H, W) uint32: 1 + visual part index, 0 = no surface
    depth_m: np.ndarray  # (H, W) float32
    k: np.ndarray  # (3, 3)
    pose_w_c: np.ndarray  # (4, 4) camera (OpenCV) to world
    part_poses_w: np.ndarray  # (P, 4, 4) every visual part's world pose at this frame
    near: float
    # lens distortion (simgen.sensors.lens): the normalized ray (x, y) of every pixel, and the
    # coefficients the projection applies; None for a pinhole camera
    rays: np.ndarray | None = None  # (H, W, 2)
    dist: np.ndarray | None = None  # (5,)

    @cached_property
    def depth_test(self) -> DepthTest:
        """The depth test of points landing in this frame (prepared once, used by the flow
        into this frame from both neighbors)."""
        return DepthTest(self.depth_m)

    @cached_property
    def ray_planes(self) -> np.ndarray:
        """(2, H, W) float32 rays (x, y) of a distorted camera, for whole-image arithmetic."""
        assert self.rays is not None
        return np.moveaxis(self.rays, -1, 0).astype(np.float32)


@dataclass(frozen=True)
class Flow:
    flow_px: np.ndarray  # (H, W, 2) float32 (du, dv)
    status: np.ndarray  # (H, W) uint8
    scene_flow_w: np.ndarray  # (H, W, 3) float32, meters, world axes


def empty_flow(height: int, width: int) -> Flow:
    return Flow(
        np.zeros((height, width, 2), np.float32),
        np.zeros((height, width), np.uint8),
        np.zeros((height, width, 3), np.float32),
    )


def rigid_flow(src: FlowView, dst: FlowView, scene_flow: bool = True) -> Flow:
    """Flow of every labeled pixel of ``src`` into ``dst`` (forward if dst is later);
    ``scene_flow``: also the world displacement (else left 0).

    A still camera over still parts needs no geometry at all (flow 0, a depth comparison);
    with a moving camera every pixel moves and the camera's motion is applied to the whole
    image at once. Pixels of moving parts are then recomputed with their own part's motion.
    """
    h, w = src.depth_m.shape
    out = empty_flow(h, w)
    part, z = src.part, src.depth_m
    valid = part > 0
    t_c1_w = invert_pose(dst.pose_w_c)
    motion = dst.part_poses_w @ invert_pose(src.part_poses_w)  # (P, 4, 4), world frame
    moving = np.concatenate([[False], _not_identity(motion)])  # by part id
    camera = t_c1_w @ src.pose_w_c  # how still parts move from camera 0 to camera 1
    # matrices by part id (0: still parts) from camera-0 points to camera-1 points
    mats = np.concatenate([camera[None], t_c1_w @ motion @ src.pose_w_c])
    status = out.status
    if _not_identity(camera[None])[0]:  # every pixel moves: the camera's motion, in blocks
        coef = _coefficients(src, dst, mats[:1])[0]
        u, v = _pixels(src.depth_m.shape, None)
        a, b = _source_coordinates(src, None)
        rows = max(1, BLOCK_PIXELS // w)
        for r in range(0, h, rows):
            sl = slice(r, r + rows)
            du, dv, z1 = _flow_of(coef, _rows(a, sl), _rows(b, sl), z[sl], u, v[sl], src, dst)
            np.multiply(_landing(dst, u, v[sl], du, dv, z1), valid[sl], out=status[sl])
            keep = valid[sl] & (z1 > 0)  # no flow where no surface, nor behind the camera
            np.multiply(du, keep, out=out.flow_px[sl, :, 0])
            np.multiply(dv, keep, out=out.flow_px[sl, :, 1])
    else:  # a still camera: points of still parts stay on their own pixel
        seen = z <= dst.depth_test.limit
        status[...] = valid
        status += valid & ~seen  # 1 seen, 2 hidden, 0 no surface
    if not moving.any():
        return out
    idx = _pixels_of(part, moving)
    if len(idx) == 0:
        return out
    # float64 here: a part's rotation about a far-away origin makes large terms that cancel
    p = part.ravel()[idx]
    zi = z.ravel()[idx].astype(np.float64)
    u, v = _pixels(src.depth_m.shape, idx)
    a, b = _source_coordinates(src, idx)
    coef = _coefficients(src, dst, mats, np.float64)[p].T  # each pixel's part
    du, dv, z1 = _flow_of(coef, a, b, zi, u, v, src, dst)
    status.ravel()[idx] = _landing(dst, u, v, du, dv, z1)
    out.flow_px.reshape(-1, 2)[idx] = np.stack([du, dv], 1) * (z1 > 0)[:, None]
    if scene_flow:  # the world displacement of the moving parts' points
        moved = (motion - np.eye(4)) @ src.pose_w_c
        q = _affine(_coefficients(src, None, moved, np.float64)[p - 1].T, a, b, zi)
        out.scene_flow_w.reshape(-1, 3)[idx] = np.stack(q, 1)
    return out


def _pixels_of(part: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """Flat indices of the pixels whose part id is ``selected`` (by id, 0 included)."""
    if len(selected) <= 256:  # an 8-bit lookup table (twice as fast as numpy's gather)
        import cv2

        lut = np.zeros(256, np.uint8)
        lut[: len(selected)] = selected
        return np.flatnonzero(cv2.LUT(part.astype(np.uint8), lut))
    return np.flatnonzero(np.take(selected, part))


def _rows(x: np.ndarray, sl: slice) -> np.ndarray:
    """Rows ``sl`` of an image-shaped array (a single row broadcasts: itself)."""
    return x if x.shape[0] == 1 else x[sl]


def _not_identity(m: np.ndarray) -> np.ndarray:
    return np.abs(m - np.eye(4)).reshape(len(m), -1).max(1, initial=0) > 1e-12


def _source_coordinates(src: FlowView, idx: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """What the coefficients act on, of every pixel (``idx`` None: broadcastable over the
    image) or of the pixels ``idx``: pixel coordinates (u, v) for a pinhole camera, the
    pixels' normalized rays for a distorted one."""
    if src.rays is None:
        return _pixels(src.depth_m.shape, idx)
    if idx is None:
        return src.ray_planes[0], src.ray_planes[1]
    rays = src.rays.reshape(-1, 2)
    return rays[idx, 0], rays[idx, 1]


def _pixels(shape: tuple[int, ...], idx: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (u, v): of the whole image (float32, a row and a column, to
    broadcast) or of the flat pixel indices ``idx`` (float64)."""
    h, w = shape
    if idx is None:
        return np.arange(w, dtype=np.float32)[None, :], np.arange(h, dtype=np.float32)[:, None]
    return (idx % w).astype(np.float64), (idx // w).astype(np.float64)


def _coefficients(
    src: FlowView, dst: FlowView | None, mats: np.ndarray, dtype: type = np.float32
) -> np.ndarray:
    """(P, 12) per matrix ``mats`` (P, 4, 4) acting on camera-0 points: the affine
    map of the source coordinates (see :func:`_source_coordinates`) that :func:`_affine`
    applies. For a pinhole pair with ``dst``: ``[K R K^-1 - I | K t]`` in pixels (the
    difference form of the module docstring); else the camera-0 point's transform itself."""
    m = mats[:, :3, :]
    if src.rays is None:  # X_c0 = z K^-1 (u, v, 1)
        m = m.copy()
        m[:, :, :3] = m[:, :, :3] @ np.linalg.inv(src.k)
    if dst is not None and src.rays is None and dst.dist is None:
        m = dst.k @ m
        m[:, :, :3] -= np.eye(3)
    return m.reshape(len(mats), 12).astype(dtype)


def _affine(
    c: np.ndarray, a: np.ndarray, b: np.ndarray, z: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``z * (C[:, :3] @ (a, b, 1)) + C[:, 3]``, one array per row; ``c`` is the 12 entries of C
    (row-major), each a number or an array over the pixels."""
    out = []
    for i in range(3):
        q = c[4 * i] * a + (c[4 * i + 1] * b + c[4 * i + 2])
        q *= z
        q += c[4 * i + 3]
        out.append(q)
    return out[0], out[1], out[2]


def _flow_of(
    c: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    z: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    src: FlowView,
    dst: FlowView,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(du, dv, depth in camera 1) of the points at pixels (u, v) with source coordinates
    (a, b), depth z and coefficients ``c`` (:func:`_coefficients` with ``dst``). Finite
    everywhere (a point at depth 0 in camera 1 divides by 1): where no flow is given (no
    surface, behind the camera) callers multiply it by 0."""
    q0, q1, q2 = _affine(c, a, b, z)
    if src.rays is None and dst.dist is None:  # the difference form
        z1 = q2 + z
        den = z1 + (z1 == 0)
        q0 -= u * q2
        q0 /= den
        q1 -= v * q2
        q1 /= den
        return q0, q1, z1
    # the camera-1 point itself: project it (through the lens)
    from simgen.sensors.lens import distort_normalized

    den = (q2 + (q2 == 0)).astype(np.float64)  # float64: the polynomial of far-off points
    x, y = q0 / den, q1 / den
    with np.errstate(over="ignore", invalid="ignore"):
        if dst.dist is not None:
            x, y = distort_normalized(x, y, dst.dist)
        kd = dst.k
        return kd[0, 0] * x + kd[0, 1] * y + kd[0, 2] - u, kd[1, 1] * y + kd[1, 2] - v, q2


def _landing(
    dst: FlowView, u: np.ndarray, v: np.ndarray, du: np.ndarray, dv: np.ndarray, z1: np.ndarray
) -> np.ndarray:
    """uint8 status (1 seen, 2 hidden, 3 outside) of the points of pixels (u, v) landing at
    (u + du, v + dv) in ``dst`` with depth z1."""
    on, seen = dst.depth_test.test(u + du, v + dv, z1, dst.near)
    status = np.full(on.shape, OUTSIDE, np.uint8)
    status -= on
    status -= on & seen
    return status
