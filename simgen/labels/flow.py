"""Optical and scene flow from rigid motion (pure numpy), not from image matching.

Every labeled pixel of a frame sees a point on one visual part (a rigid body: an object, or one
link of an articulated object). Between two frames of a camera the point moves with its part,
and the camera moves too. With ``T_w_p`` the part's pose and ``T_w_c`` the camera's::

    X_c1 = T_c1_w(t1) @ T_w_p(t1) @ inv(T_w_p(t0)) @ T_w_c(t0) @ X_c0

where ``X_c0`` is the pixel's point back-projected with its depth. The flow is the projection
of ``X_c1`` minus the pixel; the scene flow is the point's world displacement. A status per
pixel says whether the point is seen in the other frame (:mod:`simgen.labels.occlusion`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simgen.labels.occlusion import DEPTH_ABS_TOL_M, DEPTH_REL_TOL, depth_visible, inside_image

#: Flow status per pixel.
NO_FLOW = 0  # no surface at this pixel, or no other frame (first/last of the camera)
VISIBLE = 1  # the point is seen in the other frame
OCCLUDED = 2  # in the other frame's image, but hidden behind a surface
OUTSIDE = 3  # leaves the image (or passes behind the near plane)


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


def _inv(t: np.ndarray) -> np.ndarray:
    r = np.swapaxes(t[..., :3, :3], -1, -2)
    out = np.zeros_like(t)
    out[..., :3, :3] = r
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", r, t[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def rigid_flow(src: FlowView, dst: FlowView) -> Flow:
    """Flow of every labeled pixel of ``src`` into ``dst`` (forward if dst is later).

    Each part's motion, seen from the cameras, is one 4x4 matrix acting on the pixel's
    camera-frame point. Parts that do not move in the world share the camera's own motion, so
    a still camera over still parts needs no geometry at all (flow 0, a depth comparison).
    """
    h, w = src.depth_m.shape
    out = empty_flow(h, w)
    part = src.part.ravel().astype(np.intp)
    valid = part > 0
    status = out.status.reshape(-1)
    t_c1_w = _inv(dst.pose_w_c)
    motion = dst.part_poses_w @ _inv(src.part_poses_w)  # (P, 4, 4), world frame
    moving = np.concatenate([[False], _not_identity(motion)])  # by part id
    camera = t_c1_w @ src.pose_w_c  # how still parts move from camera 0 to camera 1
    if not _not_identity(camera[None])[0]:
        still = valid & ~moving[part]
        far = np.where(dst.depth_m > 0, dst.depth_m, np.inf).ravel()
        seen = src.depth_m.ravel() <= far * (1.0 + DEPTH_REL_TOL) + DEPTH_ABS_TOL_M
        status[still] = np.where(seen[still], VISIBLE, OCCLUDED)
        idx = np.flatnonzero(valid & ~still)
    else:
        idx = np.flatnonzero(valid)
    if len(idx) == 0:
        return out
    v, u = idx // w, idx % w
    z = src.depth_m.ravel()[idx].astype(np.float64)
    if src.rays is not None:  # a distorted image: each pixel's own ray
        rays = src.rays.reshape(-1, 2)
        x0 = rays[idx, 0] * z
        y0 = rays[idx, 1] * z
    else:
        kinv = np.linalg.inv(src.k)
        # camera-0 point of each pixel (rays per column / row, then gathered)
        rx_u = kinv[0, 0] * np.arange(w) + kinv[0, 2]
        rx_v = kinv[0, 1] * np.arange(h)
        ry_v = kinv[1, 1] * np.arange(h) + kinv[1, 2]
        x0 = (rx_u[u] + rx_v[v]) * z
        y0 = ry_v[v] * z
    p = part[idx]
    x1 = _move(camera, t_c1_w @ motion @ src.pose_w_c, moving, p, x0, y0, z)
    kd = dst.k
    z1 = x1[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        if dst.dist is not None:
            from simgen.sensors.lens import distort_normalized

            xd, yd = distort_normalized(x1[0] / z1, x1[1] / z1, dst.dist)
            u1 = kd[0, 0] * xd + kd[0, 1] * yd + kd[0, 2]
            v1 = kd[1, 1] * yd + kd[1, 2]
        else:
            u1 = (kd[0, 0] * x1[0] + kd[0, 1] * x1[1] + kd[0, 2] * z1) / z1
            v1 = (kd[1, 1] * x1[1] + kd[1, 2] * z1) / z1
        front = z1 > 0
        d = np.stack([u1 - u, v1 - v], 1)
        d[~front] = 0.0
        out.flow_px.reshape(-1, 2)[idx] = d
    mp = moving[p]
    if np.any(mp):  # scene flow: the world displacement of the moving parts' points
        r0, r1 = src.pose_w_c, dst.pose_w_c
        sf = out.scene_flow_w.reshape(-1, 3)
        a0, b0, c0 = x0[mp], y0[mp], z[mp]
        a1, b1, c1 = x1[0, mp], x1[1, mp], z1[mp]
        sf[idx[mp]] = np.stack(
            [
                r1[i, 0] * a1
                + r1[i, 1] * b1
                + r1[i, 2] * c1
                + r1[i, 3]
                - (r0[i, 0] * a0 + r0[i, 1] * b0 + r0[i, 2] * c0 + r0[i, 3])
                for i in range(3)
            ],
            1,
        )
    # status: where the point lands in dst, and whether a surface there hides it
    dh, dw = dst.depth_m.shape
    on = front & (z1 >= dst.near) & inside_image(u1, v1, dw, dh)
    seen = depth_visible(np.where(on, u1, 0.0), np.where(on, v1, 0.0), z1, dst.depth_m)
    status[idx] = np.where(on, np.where(seen, VISIBLE, OCCLUDED), OUTSIDE)
    return out


def _not_identity(m: np.ndarray) -> np.ndarray:
    return np.abs(m - np.eye(4)).reshape(len(m), -1).max(1, initial=0) > 1e-12


def _move(
    camera: np.ndarray,
    m: np.ndarray,
    moving: np.ndarray,
    p: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
) -> np.ndarray:
    """(3, N) points (x, y, z) of parts ``p`` moved by ``m[p - 1]`` (moving parts) or
    ``camera`` (the others)."""
    sel = np.where(moving[p], p, 0)
    if not np.any(sel):
        return _transform(camera, x, y, z)
    mats = np.concatenate([camera[None], m])  # index 0: the parts that do not move
    # one 1-D gather per matrix entry: no (N, 4, 4) temporary
    return np.stack(
        [
            mats[:, i, 0][sel] * x
            + mats[:, i, 1][sel] * y
            + mats[:, i, 2][sel] * z
            + mats[:, i, 3][sel]
            for i in range(3)
        ]
    )


def _transform(m: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """(3, N): one 4x4 transform applied to the points (x, y, z)."""
    return np.stack([m[i, 0] * x + m[i, 1] * y + m[i, 2] * z + m[i, 3] for i in range(3)])
