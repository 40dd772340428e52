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

from simgen.labels.occlusion import depth_visible, inside_image

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
    """Flow of every labeled pixel of ``src`` into ``dst`` (forward if dst is later)."""
    h, w = src.depth_m.shape
    out = empty_flow(h, w)
    v, u = np.nonzero(src.part)
    if len(u) == 0:
        return out
    p = src.part[v, u].astype(np.intp) - 1
    z = src.depth_m[v, u].astype(np.float64)
    kinv = np.linalg.inv(src.k)
    rays = np.stack([u, v, np.ones_like(u)], 1).astype(np.float64) @ kinv.T
    x_c0 = rays * z[:, None]
    # per part: motion of its points in the world, then into the destination camera
    motion_w = dst.part_poses_w @ _inv(src.part_poses_w)  # (P, 4, 4)
    used, inverse = np.unique(p, return_inverse=True)
    m_w = motion_w[used]
    x_w0 = x_c0 @ src.pose_w_c[:3, :3].T + src.pose_w_c[:3, 3]
    x_w1 = np.einsum("nij,nj->ni", m_w[inverse, :3, :3], x_w0) + m_w[inverse, :3, 3]
    t_c1_w = _inv(dst.pose_w_c)
    x_c1 = x_w1 @ t_c1_w[:3, :3].T + t_c1_w[:3, 3]
    z1 = x_c1[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uvw = x_c1 @ dst.k.T
        uv1 = uvw[:, :2] / uvw[:, 2:3]
    out.flow_px[v, u] = (uv1 - np.stack([u, v], 1)).astype(np.float32)
    out.scene_flow_w[v, u] = (x_w1 - x_w0).astype(np.float32)
    dh, dw = dst.depth_m.shape
    on = (z1 >= dst.near) & inside_image(uv1, dw, dh)
    status = np.full(len(u), OUTSIDE, np.uint8)
    if np.any(on):
        seen = depth_visible(uv1[on], z1[on], dst.depth_m)
        status[on] = np.where(seen, VISIBLE, OCCLUDED)
    out.status[v, u] = status
    # behind the camera the projection is meaningless: report no displacement
    out.flow_px[v[z1 <= 0], u[z1 <= 0]] = 0.0
    return out
