"""What actions do to the physics world (one function per physical action).

Velocities and poses are those of the object frame (the pose in the scene file), converted to
pybullet's center-of-mass frame here. Forces act at the center of mass unless an offset is
given.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from simgen.geometry import (
    euler_deg_to_quat,
    matrix_to_quat,
    pose_matrix,
    quat_normalize,
    quat_to_matrix,
    wxyz_to_xyzw,
    xyzw_to_wxyz,
)
from simgen.scene.objects import ObjectBase
from simgen.scene.types import EulerOrientation, Pose, value, vec
from simgen.sim.quiet import import_pybullet
from simgen.sim.world import PhysicsWorld

pb = import_pybullet()


def _quat(pose: Pose) -> np.ndarray:
    o = pose.orientation
    if isinstance(o, EulerOrientation):
        return euler_deg_to_quat(vec(o.euler_deg))
    return quat_normalize(vec(o.quat_wxyz))  # type: ignore[union-attr]


def frame_state(world: PhysicsWorld, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(T_w_frame 4x4, center of mass position) of an object now."""
    b = world.body(name)
    p_com, q_com = world.client.getBasePositionAndOrientation(b.body_id)
    from simgen.geometry import invert_pose

    t = pose_matrix(p_com, xyzw_to_wxyz(q_com)) @ invert_pose(b.com_in_frame)
    return t, np.asarray(p_com, dtype=np.float64)


def set_frame_velocity(
    world: PhysicsWorld, name: str, linear: np.ndarray | None, angular: np.ndarray | None
) -> None:
    """Set the object frame origin's linear velocity (m/s) and the angular velocity (rad/s);
    ``None`` keeps the current value."""
    c = world.client
    b = world.body(name)
    v_com, w = (np.asarray(x, dtype=np.float64) for x in c.getBaseVelocity(b.body_id))
    t, p_com = frame_state(world, name)
    w_new = w if angular is None else np.asarray(angular, dtype=np.float64)
    if linear is None:
        v_origin = v_com + np.cross(w, t[:3, 3] - p_com)
    else:
        v_origin = np.asarray(linear, dtype=np.float64)
    v_new = v_origin + np.cross(w_new, p_com - t[:3, 3])
    c.resetBaseVelocity(b.body_id, v_new.tolist(), w_new.tolist())


def teleport(
    world: PhysicsWorld, name: str, position: np.ndarray, quat_wxyz: np.ndarray, keep_velocity: bool
) -> None:
    c = world.client
    b = world.body(name)
    v, w = c.getBaseVelocity(b.body_id)
    t_com = pose_matrix(position, quat_wxyz) @ b.com_in_frame
    c.resetBasePositionAndOrientation(
        b.body_id, t_com[:3, 3].tolist(), wxyz_to_xyzw(matrix_to_quat(t_com[:3, :3])).tolist()
    )
    if keep_velocity:  # (pybullet clears the velocity when it moves a body)
        c.resetBaseVelocity(b.body_id, list(v), list(w))
    else:
        c.resetBaseVelocity(b.body_id, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])


def apply_force(
    world: PhysicsWorld, name: str, force: np.ndarray, offset: np.ndarray | None = None
) -> None:
    """Apply ``force`` (N, world) at the center of mass (+ ``offset``) during the next step."""
    b = world.body(name)
    _, p_com = frame_state(world, name)
    at = p_com if offset is None else p_com + offset
    world.client.applyExternalForce(
        b.body_id, -1, np.asarray(force, float).tolist(), at.tolist(), pb.WORLD_FRAME
    )


def apply_impulse(world: PhysicsWorld, name: str, impulse: np.ndarray, offset: np.ndarray) -> None:
    """Change the momentum by ``impulse`` (N s) over the next step: force = impulse / dt."""
    apply_force(world, name, np.asarray(impulse, float) / world.timestep, offset)


def heading_frame(world: PhysicsWorld, name: str) -> np.ndarray:
    """4x4 frame at an object's origin with x along its heading (yaw only) and z up."""
    t, _ = frame_state(world, name)
    x = t[:3, 0]
    yaw = math.atan2(x[1], x[0])
    h = np.eye(4)
    h[:3, :3] = quat_to_matrix(euler_deg_to_quat((0.0, 0.0, math.degrees(yaw))))
    h[:3, 3] = t[:3, 3]
    return h


def spawn(
    world: PhysicsWorld, spec: ObjectBase, relative_to: str | None, absolute_z: bool = False
) -> None:
    """Put a spawnable object into the world at its pose (in ``relative_to``'s heading frame;
    with ``absolute_z`` the pose's z is a world height)."""
    if relative_to is not None:
        h = heading_frame(world, relative_to)
        if absolute_z:
            h[2, 3] = 0.0
        t = h @ pose_matrix(vec(spec.pose.position), _quat(spec.pose))
        r = h[:3, :3]
        pose = Pose.model_validate(
            {
                "position": [float(v) for v in t[:3, 3]],
                "orientation": {"quat_wxyz": [float(v) for v in matrix_to_quat(t[:3, :3])]},
            }
        )
        vel = spec.velocity.model_copy(
            update={
                "linear": tuple(float(v) for v in r @ vec(spec.velocity.linear)),
                "angular_deg": tuple(float(v) for v in r @ vec(spec.velocity.angular_deg)),
            }
        )
        spec = spec.model_copy(update={"pose": pose, "velocity": vel})
    world.activate(spec.name, spec)


def push_off_speed(
    world: PhysicsWorld, name: str, surface: str, direction_deg: float | None, overshoot: float
) -> np.ndarray:
    """Horizontal velocity that slides ``name`` past the edge of ``surface``'s bounding box."""
    from simgen.sim.placement import body_aabb

    t, _ = frame_state(world, name)
    p = t[:3, 3]
    lo, hi = body_aabb(world, world.body(surface).body_id)
    if direction_deg is None:
        d = p[:2] - (lo[:2] + hi[:2]) / 2
        d = d / np.linalg.norm(d) if np.linalg.norm(d) > 1e-6 else np.array([1.0, 0.0])
    else:
        a = math.radians(direction_deg)
        d = np.array([math.cos(a), math.sin(a)])
    exits = [((hi[k] if d[k] > 0 else lo[k]) - p[k]) / d[k] for k in range(2) if abs(d[k]) > 1e-9]
    dist = max(0.0, min(exits)) + overshoot
    mu = value(world.body(name).spec.friction) * value(world.body(surface).spec.friction)
    g = float(np.linalg.norm(vec(world.scene.simulation.gravity))) or 9.81
    speed = math.sqrt(2.0 * max(mu, 0.05) * g * dist) * 1.1
    return np.array([d[0] * speed, d[1] * speed, 0.0])


def light_values(light: Any, intensity: Any, color: Any) -> Any:
    """A light spec with a new intensity and/or color."""
    update: dict[str, Any] = {}
    if intensity is not None:
        update["intensity"] = value(intensity)
    if color is not None:
        update["color"] = tuple(value(c) for c in color)
    return light.model_copy(update=update)
