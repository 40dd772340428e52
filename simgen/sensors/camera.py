"""Camera model: intrinsics, mounting and capture times (pure functions of the spec)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simgen.geometry import look_at_cv, pose_matrix
from simgen.scene.schema import Scene
from simgen.scene.sensors import CameraSensor, FovIntrinsics, SensorBase
from simgen.scene.types import value, vec
from simgen.sim.builders import pose_quat_wxyz

#: Optical frame (OpenCV: x right, y down, z forward) expressed in the sensor body frame
#: (x forward, y left, z up): optical z = body x, optical x = -body y, optical y = -body z.
R_BODY_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
T_BODY_OPTICAL = np.eye(4)
T_BODY_OPTICAL[:3, :3] = R_BODY_OPTICAL


def intrinsics_matrix(spec: CameraSensor) -> np.ndarray:
    """K (3x3, float64) in OpenCV's convention: pixel centers at integer coordinates."""
    w, h = spec.resolution
    intr = spec.intrinsics
    if isinstance(intr, FovIntrinsics):
        fy = (h / 2.0) / math.tan(math.radians(value(intr.fov_deg)) / 2.0)
        fx, cx, cy = fy, (w - 1) / 2.0, (h - 1) / 2.0
    else:
        fx, fy, cx, cy = value(intr.fx), value(intr.fy), value(intr.cx), value(intr.cy)
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def mount_in_parent(spec: SensorBase) -> np.ndarray:
    """Sensor body frame (x forward, z up) in its parent frame (world or the attached object)."""
    if spec.look_at is not None:
        la = spec.look_at
        return look_at_cv(vec(la.eye), vec(la.target), vec(la.up)) @ np.linalg.inv(T_BODY_OPTICAL)
    assert spec.pose is not None
    return pose_matrix(vec(spec.pose.position), pose_quat_wxyz(spec.pose))


def sensor_pose_w(
    spec: SensorBase, attachment_pose_w: Callable[[str, str | None], np.ndarray]
) -> np.ndarray:
    """World pose of the sensor body frame; ``attachment_pose_w(object, link)`` gives parents."""
    mount = mount_in_parent(spec)
    if spec.attach_to is None:
        return mount
    return attachment_pose_w(spec.attach_to.object, spec.attach_to.link) @ mount


def optical_pose_w(body_pose_w: np.ndarray) -> np.ndarray:
    """Camera-to-world pose ``T_w_c`` of the OpenCV optical frame."""
    return body_pose_w @ T_BODY_OPTICAL


@dataclass(frozen=True)
class CaptureSchedule:
    """The physics steps at which a sensor captures: t_k = k / rate_hz snapped to the nearest
    step, for every t_k in [0, duration) (half-open)."""

    steps: np.ndarray  # (F,) int64, strictly increasing

    @staticmethod
    def build(rate_hz: float, timestep: float, num_steps: int) -> CaptureSchedule:
        period = 1.0 / rate_hz
        if period < timestep * (1 - 1e-9):
            raise ValueError(
                f"capture rate {rate_hz} Hz is faster than the physics rate {1 / timestep:.6g} Hz"
            )
        duration = num_steps * timestep
        n = math.ceil(duration / period - 1e-9)
        steps = np.rint(np.arange(n) * period / timestep).astype(np.int64)
        steps = steps[steps < num_steps]
        return CaptureSchedule(np.unique(steps))


def camera_with_resolution(spec: CameraSensor, width: int, height: int) -> CameraSensor:
    """The same camera at another resolution; pinhole intrinsics scale with the image."""
    from simgen.scene.sensors import PinholeIntrinsics

    w0, h0 = spec.resolution
    intr = spec.intrinsics
    if isinstance(intr, PinholeIntrinsics):
        sx, sy = width / w0, height / h0
        intr = PinholeIntrinsics(
            fx=value(intr.fx) * sx,
            fy=value(intr.fy) * sy,
            cx=(value(intr.cx) + 0.5) * sx - 0.5,
            cy=(value(intr.cy) + 0.5) * sy - 0.5,
        )
    return spec.model_copy(update={"resolution": (width, height), "intrinsics": intr})


def scene_with_resolution(scene: Scene, width: int, height: int) -> Scene:
    """``scene`` with every camera rendering at ``width`` x ``height``."""
    sensors = [
        camera_with_resolution(s, width, height) if isinstance(s, CameraSensor) else s
        for s in scene.sensors
    ]
    return scene.model_copy(update={"sensors": sensors})  # keeps the source (private attrs)
