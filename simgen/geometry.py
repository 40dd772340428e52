"""Rigid-body math in simgen's conventions (pure numpy).

Conventions (docs/conventions.md; pinned by tests/test_conventions.py):

* Units SI: meters, seconds, kilograms, radians inside the code; degrees only in scene files
  (fields named ``*_deg``).
* World frame: right-handed, Z up.
* Quaternions are **scalar-first** ``(w, x, y, z)`` everywhere in simgen (files, datasets,
  Python). pybullet's ``(x, y, z, w)`` is converted only in :mod:`simgen.sim`.
* Euler angles ``[roll, pitch, yaw]`` in degrees are rotations about the fixed world axes X,
  then Y, then Z: ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)`` (the same as pybullet's
  ``getQuaternionFromEuler``).
* A pose ``T_a_b`` (4x4) maps points in frame b to frame a: ``p_a = T_a_b @ p_b``.
  ``pose_w`` is an object's frame expressed in the world.
* Camera frame: OpenCV, x right, y down, z forward (optical axis).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

F64 = NDArray[np.float64]

#: Rotation from the OpenCV camera frame to the OpenGL camera frame (x right, y up, z back).
CV_TO_GL: F64 = np.diag([1.0, -1.0, -1.0, 1.0])


def quat_normalize(q_wxyz: ArrayLike) -> F64:
    q = np.asarray(q_wxyz, dtype=np.float64)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(n == 0):
        raise ValueError("quaternion of zero length")
    return q / n


def quat_to_matrix(q_wxyz: ArrayLike) -> F64:
    """Rotation matrix (..., 3, 3) from unit quaternions (..., 4) in (w, x, y, z) order."""
    w, x, y, z = np.moveaxis(quat_normalize(q_wxyz), -1, 0)
    r = np.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )
    return r.reshape((*r.shape[:-1], 3, 3))


def matrix_to_quat(r: ArrayLike) -> F64:
    """Unit quaternion (w, x, y, z) with w >= 0 from a rotation matrix (3, 3)."""
    m = np.asarray(r, dtype=np.float64)
    t = np.trace(m)
    if t > 0:
        s = 2.0 * np.sqrt(t + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    qa = quat_normalize(q)
    return qa if qa[0] >= 0 else -qa


def euler_deg_to_quat(rpy_deg: ArrayLike) -> F64:
    """(w, x, y, z) of ``Rz(yaw) @ Ry(pitch) @ Rx(roll)``, angles in degrees."""
    roll, pitch, yaw = np.radians(np.asarray(rpy_deg, dtype=np.float64))
    cr, sr = np.cos(roll / 2), np.sin(roll / 2)
    cp, sp = np.cos(pitch / 2), np.sin(pitch / 2)
    cy, sy = np.cos(yaw / 2), np.sin(yaw / 2)
    return np.array(
        [
            cr * cp * cy + sr * sp * sy,
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
        ]
    )


def wxyz_to_xyzw(q: ArrayLike) -> F64:
    return np.asarray(q, dtype=np.float64)[..., [1, 2, 3, 0]]


def xyzw_to_wxyz(q: ArrayLike) -> F64:
    return np.asarray(q, dtype=np.float64)[..., [3, 0, 1, 2]]


def pose_matrix(position: ArrayLike, quat_wxyz: ArrayLike) -> F64:
    """4x4 homogeneous pose from a position and a (w, x, y, z) quaternion."""
    t = np.eye(4)
    t[:3, :3] = quat_to_matrix(quat_wxyz)
    t[:3, 3] = np.asarray(position, dtype=np.float64)
    return t


def pose_matrices(positions: ArrayLike, quats_wxyz: ArrayLike) -> F64:
    """(N, 4, 4) poses from (N, 3) positions and (N, 4) quaternions."""
    p = np.asarray(positions, dtype=np.float64)
    out = np.zeros((p.shape[0], 4, 4))
    out[:, :3, :3] = quat_to_matrix(quats_wxyz)
    out[:, :3, 3] = p
    out[:, 3, 3] = 1.0
    return out


def invert_pose(t: ArrayLike) -> F64:
    """Inverse of rigid transform(s) (..., 4, 4)."""
    m = np.asarray(t, dtype=np.float64)
    r = m[..., :3, :3]
    rt = np.swapaxes(r, -1, -2)
    out = np.zeros_like(m)
    out[..., :3, :3] = rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", rt, m[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def look_at_cv(eye: ArrayLike, target: ArrayLike, up: ArrayLike = (0.0, 0.0, 1.0)) -> F64:
    """Camera-to-world pose ``T_w_c`` (OpenCV axes) of a camera at ``eye`` looking at ``target``."""
    e = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - e
    nz = np.linalg.norm(z)
    if nz == 0:
        raise ValueError("look_at: eye and target coincide")
    z = z / nz
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    nx = np.linalg.norm(x)
    if nx < 1e-9:
        raise ValueError("look_at: viewing direction is parallel to 'up'")
    x = x / nx
    y = np.cross(z, x)
    t = np.eye(4)
    t[:3, 0], t[:3, 1], t[:3, 2], t[:3, 3] = x, y, z, e
    return t


def transform_points(t: ArrayLike, points: ArrayLike) -> F64:
    """Apply a 4x4 transform to (N, 3) points."""
    m = np.asarray(t, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64)
    return p @ m[:3, :3].T + m[:3, 3]
