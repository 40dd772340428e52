"""Check ``require`` constraints on a world at t = 0 (pybullet ray casts and object poses).

Visibility is measured with rays from the camera's optical center toward sample points of the
object (up to :data:`MAX_POINTS` vertices of its visual meshes, in world coordinates): a point
counts when it projects inside the image between the clip planes and nothing else is in the
way (the first body the ray meets is the object itself, or is met no nearer than
:data:`TOLERANCE` before the point, as where the object stands on the floor). The visible fraction is approximate (rays meet collision shapes,
which may differ slightly from the visual meshes); it is what ``min_fraction`` compares with.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simgen.errors import SamplingError
from simgen.random.sample import EpisodeParams
from simgen.scene.placement import Distance, InView, Visible
from simgen.scene.sensors import CameraSensor
from simgen.scene.types import value
from simgen.sensors.camera import intrinsics_matrix, optical_pose_w, sensor_pose_w
from simgen.sim.world import PhysicsWorld

MAX_POINTS = 48
TOLERANCE = 0.01  # m


def sample_points_w(world: PhysicsWorld, instance_id: int) -> np.ndarray:
    """(K, 3) world points on the object's visual meshes (evenly strided vertices)."""
    poses = world.part_poses_w()
    pts = []
    for part, pose in zip(world.visual_parts, poses, strict=True):
        if part.instance_id != instance_id:
            continue
        for m in part.meshes:
            v = np.asarray(m.vertices, dtype=np.float64)
            pts.append(v @ pose[:3, :3].T + pose[:3, 3])
    if not pts:
        return np.zeros((0, 3))
    allp = np.vstack(pts)
    step = max(1, len(allp) // MAX_POINTS)
    return np.asarray(allp[::step][:MAX_POINTS])


def visible_fraction(world: PhysicsWorld, cam: CameraSensor, name: str) -> float:
    """Fraction of the object's sample points that the camera sees (see the module doc)."""
    body = world.body(name)
    pts = sample_points_w(world, body.instance_id)
    if len(pts) == 0:
        return 0.0
    t_w_c = optical_pose_w(sensor_pose_w(cam, world.attachment_pose_w))
    k = intrinsics_matrix(cam)
    w, h = cam.resolution
    origin = t_w_c[:3, 3]
    p_c = (pts - origin) @ t_w_c[:3, :3]
    z = p_c[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = k[0, 0] * p_c[:, 0] / z + k[0, 2]
        v = k[1, 1] * p_c[:, 1] / z + k[1, 2]
    inside = (
        (z > value(cam.near))
        & (z < value(cam.far))
        & (u >= -0.5)
        & (u < w - 0.5)
        & (v >= -0.5)
        & (v < h - 0.5)
    )
    if not np.any(inside):
        return 0.0
    targets = pts[inside]
    ends = origin + (targets - origin) * 1.02  # reach just past the surface point
    dist = np.linalg.norm(targets - origin, axis=1)
    hits = world.client.rayTestBatch([origin.tolist()] * len(ends), ends.tolist())
    seen = sum(
        1
        for hit, d in zip(hits, dist, strict=True)
        if hit[0] in (body.body_id, -1) or hit[2] * 1.02 * d >= d - TOLERANCE
    )
    return seen / len(pts)


def _camera(params: EpisodeParams, name: str) -> CameraSensor:
    for s in params.scene.sensors:
        if s.name == name and isinstance(s, CameraSensor):
            return s
    raise SamplingError(f"require: {name!r} is not a camera of the scene")


def check(world: PhysicsWorld, params: EpisodeParams) -> list[int]:
    """Indices (in ``require``) of the constraints that fail in ``world``'s current state."""
    failed = []
    for i, c in enumerate(params.scene.require):
        if not _holds(world, params, c):
            failed.append(i)
    return failed


def _holds(world: PhysicsWorld, params: EpisodeParams, c: Any) -> bool:
    if isinstance(c, Visible):
        p = c.visible
        return visible_fraction(world, _camera(params, p.camera), p.object) >= p.min_fraction
    if isinstance(c, InView):
        q = c.in_view
        cam = _camera(params, q.camera)
        names = _candidates(world, params, q.group, q.class_name)
        seen = 0
        for n in names:
            if visible_fraction(world, cam, n) >= q.min_fraction:
                seen += 1
                if seen >= q.min:
                    return True
        return False
    assert isinstance(c, Distance)
    d = c.distance
    st = world.object_states()
    pa = st.position_w[world.body(d.a).instance_id - 1]
    pb = st.position_w[world.body(d.b).instance_id - 1]
    dist = float(np.linalg.norm(pa - pb))
    return (d.min is None or dist >= d.min) and (d.max is None or dist <= d.max)


def _candidates(
    world: PhysicsWorld, params: EpisodeParams, group: str | None, class_name: str | None
) -> list[str]:
    if group is not None:
        return [n for p in params.scatter if p.name == group for n in p.objects]
    return [
        b.name
        for b in world.bodies
        if b.spec.kind != "plane" and (class_name is None or b.spec.class_name == class_name)  # type: ignore[attr-defined]
    ]
