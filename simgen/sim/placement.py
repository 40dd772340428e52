"""Place scattered objects without overlap, then let them settle (a pybullet engine step).

Runs in its own :class:`~simgen.sim.world.PhysicsWorld` built from the episode's resolved scene
in which every object that is not scattered stays fixed (dynamic ones are made static at their
initial pose, scenarios are left out). For each scattered object, in order, poses are drawn from
its region and orientation until its convex collision shape keeps ``min_gap`` from everything
placed before (pybullet's closest-point query; supports and planes only must not be
penetrated). Then the world steps until every settling object is at rest (speeds below the
tolerances of ``randomization.settle``) or ``max_time`` has passed, with their motion damped so
that rolling objects stop. The resulting poses become the objects' poses (at rest) in the
episode's resolved scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simgen.errors import SamplingError
from simgen.geometry import euler_deg_to_quat, quat_normalize, quat_to_matrix, wxyz_to_xyzw
from simgen.random.distributions import Distribution
from simgen.random.sample import EpisodeParams, ScatterPlan
from simgen.scene.objects import BoxObject, PlaneObject
from simgen.scene.placement import AlongRegion, BoxRegion, OnRegion
from simgen.scene.types import EulerOrientation, value, vec
from simgen.sim.world import PhysicsWorld

PENETRATION_TOL = -1e-4  # m: supports and planes may touch, not be penetrated
SLAB_SIZE, SLAB_THICKNESS = 1000.0, 1.0  # m: what planes become while placing
#: pybullet damping (velocity factor per second 1 - d) and rolling/spinning friction while
#: settling, so that rolling and rocking objects come to rest; the episode runs without them
SETTLE_LINEAR_DAMPING = 0.9
SETTLE_ANGULAR_DAMPING = 0.99
SETTLE_ROLLING_FRICTION = 0.01


@dataclass
class PlacementResult:
    poses: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # pos, quat
    tries: dict[str, list[int]] = field(default_factory=dict)  # per scatter, per object
    settle_steps: int = 0
    at_rest: bool = True


def settle_scene(params: EpisodeParams) -> Any:
    """The scene of the placement world: fixed objects static, no scenarios, the settling
    timestep and solver iterations of ``randomization.settle``; planes become 1 km slabs with
    their top on the plane (pybullet adds an infinite plane 30x slower than a box)."""
    scattered = {n for p in params.scatter for n in p.objects}
    objects = [
        _slab(o) if isinstance(o, PlaneObject) else o
        for o in (
            o if o.name in scattered or o.static else o.model_copy(update={"static": True})
            for o in params.scene.objects
        )
    ]
    s = params.scene.randomization.settle
    sim = params.scene.simulation
    simulation = sim.model_copy(
        update={
            "timestep": max(value(sim.timestep), s.timestep),
            "solver_iterations": s.solver_iterations,
        }
    )
    return params.scene.model_copy(
        update={"objects": objects, "scenarios": [], "simulation": simulation}
    )


def _slab(plane: PlaneObject) -> BoxObject:
    q = _orientation(plane.pose.orientation, np.random.default_rng(0))
    center = vec(plane.pose.position) - quat_to_matrix(q)[:, 2] * 0.5 * SLAB_THICKNESS
    return BoxObject.model_validate(
        {
            "name": plane.name,
            "class": plane.class_name,
            "static": True,
            "size": [SLAB_SIZE, SLAB_SIZE, SLAB_THICKNESS],
            "friction": plane.friction,
            "restitution": plane.restitution,
            "pose": {"position": center.tolist(), "orientation": {"quat_wxyz": q.tolist()}},
        }
    )


def set_pose(world: PhysicsWorld, name: str, position: np.ndarray, quat_wxyz: np.ndarray) -> None:
    """Put an object's frame at a world pose, at rest."""
    from simgen.geometry import matrix_to_quat, pose_matrix

    b = world.body(name)
    t_com = pose_matrix(position, quat_wxyz) @ b.com_in_frame
    c = world.client
    c.resetBasePositionAndOrientation(
        b.body_id, t_com[:3, 3].tolist(), wxyz_to_xyzw(matrix_to_quat(t_com[:3, :3])).tolist()
    )
    c.resetBaseVelocity(b.body_id, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])


def body_aabb(world: PhysicsWorld, body_id: int) -> tuple[np.ndarray, np.ndarray]:
    """World AABB of a body over all its links."""
    c = world.client
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for link in range(-1, c.getNumJoints(body_id)):
        a, b = c.getAABB(body_id, link)
        lo, hi = np.minimum(lo, a), np.maximum(hi, b)
    return lo, hi


def _orientation(orientation: Any, rng: np.random.Generator) -> np.ndarray:
    if isinstance(orientation, Distribution):
        drawn = orientation.sample(rng)
        if "quat_wxyz" not in drawn:  # a choice of orientations
            from simgen.scene.types import EulerOrientation as E

            return euler_deg_to_quat(vec(E.model_validate(drawn).euler_deg))
        return quat_normalize(drawn["quat_wxyz"])
    if isinstance(orientation, EulerOrientation):
        return euler_deg_to_quat(vec(orientation.euler_deg))
    return quat_normalize(vec(orientation.quat_wxyz))


def _polyline(region: AlongRegion) -> np.ndarray:
    pts = np.array([vec(p) for p in region.along.points])
    if not region.along.spline or len(pts) < 3:
        return pts
    ext = np.vstack([2 * pts[0] - pts[1], pts, 2 * pts[-1] - pts[-2]])
    t = np.linspace(0.0, 1.0, 33)[:-1, None]
    out = []
    for i in range(1, len(ext) - 2):  # Catmull-Rom through pts[i-1] .. pts[i]
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        out.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    return np.vstack([*out, pts[-1:]])


def point_on_polyline(line: np.ndarray, s: float) -> np.ndarray:
    """The point at arc-length fraction ``s`` in [0, 1] of a polyline."""
    seg = np.linalg.norm(np.diff(line, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    d = s * cum[-1]
    i = int(np.clip(np.searchsorted(cum, d, side="right") - 1, 0, len(seg) - 1))
    f = 0.0 if seg[i] == 0 else (d - cum[i]) / seg[i]
    return np.asarray(line[i] + f * (line[i + 1] - line[i]))


class _Placer:
    def __init__(self, world: PhysicsWorld, params: EpisodeParams) -> None:
        self.world = world
        self.params = params
        scattered = {n for p in params.scatter for n in p.objects}
        self.obstacles = [b for b in world.bodies if b.name not in scattered]
        planes = {o.name for o in params.scene.objects if isinstance(o, PlaneObject)}
        self.planes = {b.body_id for b in world.bodies if b.name in planes}

    def place(self, plan: ScatterPlan, result: PlacementResult) -> None:
        tries = []
        support = None
        if isinstance(plan.region, OnRegion):
            support = self.world.body(plan.region.on_top_of.object).body_id
        line = _polyline(plan.region) if isinstance(plan.region, AlongRegion) else None
        for i, name in enumerate(plan.objects):
            rng = self.params.rng("scatter", plan.name, i, "attempt", self.params.attempt)
            for t in range(1, plan.max_tries + 1):
                q = _orientation(plan.orientation, rng)
                p = self._position(plan, i, name, q, rng, line)
                if p is None:
                    continue
                set_pose(self.world, name, p, q)
                if self._free(name, plan.min_gap, support):
                    result.poses[name] = (p, q)
                    tries.append(t)
                    break
            else:
                raise SamplingError(
                    f"scatter {plan.name!r}: could not place {name} without overlap in "
                    f"{plan.max_tries} tries ({i} of {len(plan.objects)} placed); the region is "
                    "too small for this many objects: enlarge it or lower 'count' or 'min_gap'"
                )
            self.obstacles.append(self.world.body(name))
        result.tries[plan.name] = tries

    def _position(
        self,
        plan: ScatterPlan,
        i: int,
        name: str,
        q: np.ndarray,
        rng: np.random.Generator,
        line: np.ndarray | None,
    ) -> np.ndarray | None:
        region = plan.region
        if isinstance(region, BoxRegion):
            c, s = vec(region.box.center), vec(region.box.size)
            return np.asarray(c + (rng.random(3) - 0.5) * s)
        if line is not None:
            even = region.along.even
            s_ = (i + 0.5) / len(plan.objects) if even else float(rng.random())
            return point_on_polyline(line, s_)
        return self._on_top(region, name, q, rng)

    def _on_top(
        self, region: OnRegion, name: str, q: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray | None:
        r = region.on_top_of
        support = self.world.body(r.object)
        lo, hi = body_aabb(self.world, support.body_id)
        if r.area is not None:
            c = np.array([value(v) for v in r.area.center])
            half = np.array([value(v) for v in r.area.size]) / 2
            lo[:2], hi[:2] = np.maximum(lo[:2], c - half), np.minimum(hi[:2], c + half)
        if not np.all(np.isfinite(lo[:2])) or np.any(hi[:2] - lo[:2] >= SLAB_SIZE - 1e-6):
            raise SamplingError(
                f"scatter on_top_of {r.object!r}: its top is unbounded (a plane); give 'area'"
            )
        set_pose(self.world, name, np.zeros(3), q)  # the object's extent at this orientation
        olo, ohi = body_aabb(self.world, self.world.body(name).body_id)
        margin = value(r.margin)
        xy_lo = lo[:2] + margin - olo[:2]
        xy_hi = hi[:2] - margin - ohi[:2]
        if np.any(xy_hi < xy_lo):
            return None  # does not fit at this orientation
        xy = xy_lo + rng.random(2) * (xy_hi - xy_lo)
        z = hi[2] + value(r.drop_height) - olo[2]
        return np.array([xy[0], xy[1], z])

    def _free(self, name: str, gap: float, support: int | None) -> bool:
        c = self.world.client
        me = self.world.body(name).body_id
        lo, hi = body_aabb(self.world, me)
        near = {
            b for b, _ in c.getOverlappingObjects((lo - gap).tolist(), (hi + gap).tolist()) or ()
        }
        for other in self.obstacles:
            oid = other.body_id
            if oid not in near:  # bounding boxes apart by more than the gap
                continue
            loose = oid == support or oid in self.planes
            limit = PENETRATION_TOL if loose else gap
            pts = c.getClosestPoints(me, oid, distance=max(limit, 0.0) + 1e-9)
            if any(p[8] < limit for p in pts):
                return False
        return True


def place_and_settle(world: PhysicsWorld, params: EpisodeParams) -> PlacementResult:
    """Place every scattered object of ``params`` in ``world`` and settle them."""
    result = PlacementResult()
    placer = _Placer(world, params)
    for plan in params.scatter:
        placer.place(plan, result)
    settling = [n for p in params.scatter if p.settle for n in p.objects]
    if settling:
        _settle(world, params, settling, result)
    return result


def _com_poses(world: PhysicsWorld, bodies: list[int]) -> np.ndarray:
    """(B, 7) center-of-mass position and quaternion (pybullet order) of bodies."""
    c = world.client
    return np.array([[*p, *q] for p, q in (c.getBasePositionAndOrientation(b) for b in bodies)])


def _settle(
    world: PhysicsWorld, params: EpisodeParams, names: list[str], result: PlacementResult
) -> None:
    s = params.scene.randomization.settle
    dt = world.timestep
    every = max(1, round(0.1 / dt))
    max_steps = max(1, math.ceil(s.max_time / dt))
    ang_tol = math.radians(s.angular_tolerance_deg)
    idx = [world.body(n).instance_id - 1 for n in names]
    c = world.client
    for n in names:
        body = world.body(n).body_id
        for link in range(-1, c.getNumJoints(body)):
            c.changeDynamics(
                body,
                link,
                linearDamping=SETTLE_LINEAR_DAMPING,
                angularDamping=SETTLE_ANGULAR_DAMPING,
                rollingFriction=SETTLE_ROLLING_FRICTION,
                spinningFriction=SETTLE_ROLLING_FRICTION,
            )
    bodies = [world.body(n).body_id for n in names]
    steps, at_rest = 0, False
    prev = _com_poses(world, bodies)
    while steps < max_steps:
        chunk = min(every, max_steps - steps)
        for _ in range(chunk):
            world.step()
        steps = world.step_index
        now = _com_poses(world, bodies)
        # mean speeds over the interval: robust to contact jitter that does not move anything
        span = chunk * dt
        lin = np.linalg.norm(now[:, :3] - prev[:, :3], axis=1) / span
        dots = np.abs(np.sum(now[:, 3:] * prev[:, 3:], axis=1))
        ang = 2 * np.arccos(np.clip(dots, 0.0, 1.0)) / span
        if np.all(lin < s.linear_tolerance) and np.all(ang < ang_tol):
            at_rest = True
            break
        prev = now
    st = world.object_states()
    for n, i in zip(names, idx, strict=True):
        result.poses[n] = (st.position_w[i].copy(), st.quat_wxyz_w[i].copy())
    result.settle_steps, result.at_rest = steps, at_rest
