"""2D and 3D boxes (pure numpy): tight boxes from masks, object-frame boxes, projected corners.

Conventions (docs/labels.md):

* 2D boxes from masks are integer pixel windows ``[u0, v0, u1, v1)``, half-open: columns
  ``u0 .. u1-1`` and rows ``v0 .. v1-1`` hold the mask's pixels. An empty box is all zeros.
  (This is COCO's ``[x, y, w, h] = [u0, v0, u1 - u0, v1 - v0]``.)
* A 3D box is the axis-aligned bound, in the object frame, of the object's visual geometry:
  center ``center_o`` and edge lengths ``size`` along the object's x, y, z axes; its pose in any
  frame is the object's rotation with the center moved into that frame.
* Corner ``i`` of a box has sign ``(-1 if bit 2 of i is 0 else +1)`` along x, bit 1 along y,
  bit 0 along z: ``corner_i = center + R @ (signs_i * size / 2)``.
"""

from __future__ import annotations

import numpy as np

from simgen.geometry import invert_pose

#: (8, 3) signs of the box corners, in corner order (x is the slowest-varying axis).
CORNER_SIGNS = np.array(
    [[sx, sy, sz] for sx in (-1.0, 1.0) for sy in (-1.0, 1.0) for sz in (-1.0, 1.0)]
)
#: (12, 2) corner index pairs joined by the box's edges.
BOX_EDGES = np.array([(i, i ^ bit) for i in range(8) for bit in (4, 2, 1) if i < i ^ bit])


def mask_boxes(instance: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Tight boxes and pixel counts of instance ids ``1..n`` in a label image.

    Returns ``boxes`` (n, 4) int32 ``[u0, v0, u1, v1)`` (zeros where an id has no pixel) and
    ``counts`` (n,) int32, both indexed by ``id - 1``.
    """
    from scipy.ndimage import find_objects

    ids = np.minimum(instance, n + 1)  # ids above n are ignored
    counts = np.bincount(ids.ravel(), minlength=n + 2)[1 : n + 1].astype(np.int32)
    boxes = np.zeros((n, 4), np.int32)
    for i, sl in enumerate(find_objects(ids, max_label=n)):
        if sl is not None:
            boxes[i] = (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
    return boxes, counts


def mask_box(mask: np.ndarray) -> np.ndarray:
    """``[u0, v0, u1, v1)`` (int32) of a boolean mask; zeros when it is empty."""
    v, u = np.nonzero(mask)
    if len(u) == 0:
        return np.zeros(4, np.int32)
    return np.array([u.min(), v.min(), u.max() + 1, v.max() + 1], np.int32)


def object_boxes(
    points_p: np.ndarray,
    point_part: np.ndarray,
    part_object: np.ndarray,
    part_poses_w: np.ndarray,
    object_poses_w: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Object-frame axis-aligned boxes of every object's visual geometry at the current poses.

    ``points_p`` (V, 3) are vertices in their part's frame (a part's convex hull is enough),
    ``point_part`` (V,) their part index, ``part_object`` (P,) each part's object index
    (0-based), ``part_poses_w`` (P, 4, 4) and ``object_poses_w`` (N, 4, 4) world poses. Parts
    on moving links (URDF joints) are placed by their current link poses, so an articulated
    object's box bounds all its links in their current configuration.

    Returns ``center_o`` (N, 3) and ``size`` (N, 3); objects without geometry get zeros.
    """
    n = object_poses_w.shape[0]
    center, size = np.zeros((n, 3)), np.zeros((n, 3))
    if len(points_p) == 0:
        return center, size
    inv_obj = invert_pose(object_poses_w)
    t_o_p = inv_obj[part_object] @ part_poses_w  # (P, 4, 4): part frame in its object's frame
    t = t_o_p[point_part]
    pts_o = np.einsum("vij,vj->vi", t[:, :3, :3], points_p) + t[:, :3, 3]
    obj = part_object[point_part]
    lo = np.full((n, 3), np.inf)
    hi = np.full((n, 3), -np.inf)
    np.minimum.at(lo, obj, pts_o)
    np.maximum.at(hi, obj, pts_o)
    has = np.isfinite(lo[:, 0])
    center[has] = (lo[has] + hi[has]) / 2.0
    size[has] = hi[has] - lo[has]
    return center, size


def box_corners(center: np.ndarray, size: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """(..., 8, 3) corners of boxes with centers (..., 3), sizes (..., 3), rotations (..., 3, 3)."""
    local = CORNER_SIGNS * (size[..., None, :] / 2.0)
    return np.einsum("...ij,...kj->...ki", rotation, local) + center[..., None, :]


def project(
    k: np.ndarray, points_c: np.ndarray, dist: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (..., 2) of camera-frame points (..., 3) and their depth z (...).

    Points at z <= 0 (behind the camera) get NaN coordinates. ``dist``: the camera's lens
    distortion (OpenCV's k1, k2, p1, p2, k3; :mod:`simgen.sensors.lens`), None for a pinhole.
    """
    if dist is not None:
        from simgen.sensors.lens import project_distorted

        return project_distorted(k, dist, points_c)
    z = points_c[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uvw = points_c @ k.T
        uv = uvw[..., :2] / uvw[..., 2:3]
    uv[z <= 0] = np.nan
    return uv, z


def matrices_to_quats(r: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) ``(w, x, y, z)`` with w >= 0 from rotation matrices (..., 3, 3)."""
    m = np.asarray(r, np.float64)
    shape = m.shape[:-2]
    m = m.reshape(-1, 3, 3)
    tr = np.trace(m, axis1=1, axis2=2)
    q = np.empty((len(m), 4))
    # Shepperd's method: pick the largest of w, x, y, z for a stable division
    cand = np.stack([tr, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], 1)
    k = cand.argmax(1)
    for case in range(4):
        s_ = k == case
        if not np.any(s_):
            continue
        a = m[s_]
        if case == 0:
            s = 2.0 * np.sqrt(1.0 + tr[s_])
            q[s_] = np.stack(
                [
                    0.25 * s,
                    (a[:, 2, 1] - a[:, 1, 2]) / s,
                    (a[:, 0, 2] - a[:, 2, 0]) / s,
                    (a[:, 1, 0] - a[:, 0, 1]) / s,
                ],
                1,
            )
        else:
            i = case - 1
            j, l_ = (i + 1) % 3, (i + 2) % 3
            s = 2.0 * np.sqrt(1.0 + a[:, i, i] - a[:, j, j] - a[:, l_, l_])
            v = np.empty((len(a), 4))
            v[:, 0] = (a[:, l_, j] - a[:, j, l_]) / s
            v[:, 1 + i] = 0.25 * s
            v[:, 1 + j] = (a[:, j, i] + a[:, i, j]) / s
            v[:, 1 + l_] = (a[:, l_, i] + a[:, i, l_]) / s
            q[s_] = v
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q[q[:, 0] < 0] *= -1.0
    return q.reshape(*shape, 4)


def boxes_3d(
    center_o: np.ndarray,
    size: np.ndarray,
    object_poses_w: np.ndarray,
    t_c_w: np.ndarray,
    k: np.ndarray,
    dist: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every object's 3D box in the world and camera frames and its projected corners
    (through the lens distortion ``dist`` when given).

    Returns arrays indexed by object (N, ...): ``box3d_center_w``, ``box3d_quat_wxyz_w``,
    ``box3d_center_c``, ``box3d_quat_wxyz_c``, ``box3d_size``, ``box3d_corners_c`` (N, 8, 3),
    ``box3d_corners_uv`` (N, 8, 2; NaN behind the camera).
    """
    r_w = object_poses_w[:, :3, :3]
    c_w = np.einsum("nij,nj->ni", r_w, center_o) + object_poses_w[:, :3, 3]
    r_c = t_c_w[:3, :3] @ r_w
    c_c = c_w @ t_c_w[:3, :3].T + t_c_w[:3, 3]
    corners_c = box_corners(c_c, size, r_c)
    uv, _ = project(k, corners_c, dist)
    return {
        "box3d_center_w": c_w,
        "box3d_quat_wxyz_w": matrices_to_quats(r_w),
        "box3d_center_c": c_c,
        "box3d_quat_wxyz_c": matrices_to_quats(r_c),
        "box3d_size": size.copy(),
        "box3d_corners_c": corners_c,
        "box3d_corners_uv": uv.astype(np.float32),
    }
