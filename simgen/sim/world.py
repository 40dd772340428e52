"""The physics engine: one pybullet client per episode, owned and closed explicitly."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from simgen.sim.quiet import import_pybullet, quiet_stdout

pb = import_pybullet()
from pybullet_utils import bullet_client

from simgen.errors import SimulationError
from simgen.geometry import invert_pose, pose_matrices, pose_matrix, xyzw_to_wxyz
from simgen.random.sample import EpisodeParams
from simgen.scene.objects import ObjectBase
from simgen.scene.types import value, vec
from simgen.sim.assets import AssetResolver
from simgen.sim.builders import BuildContext, build
from simgen.sim.visuals import MeshLibrary, VisualPart


@dataclass(frozen=True)
class Body:
    """One scene object in the physics world."""

    instance_id: int  # 1-based, stable for the episode; 0 is background
    name: str
    class_id: int
    body_id: int  # pybullet's id (internal)
    spec: ObjectBase
    com_in_frame: np.ndarray  # (4, 4) base inertial (center of mass) frame in the object frame
    link_index_by_name: dict[str, int]


@dataclass(frozen=True)
class ObjectStates:
    """World-frame state of every object's frame (the pose given in the scene file), at one time.

    Arrays are indexed by ``instance_id - 1``. Objects not in the world at that time (before
    their spawn event, after their removal) have NaN in every array.
    """

    position_w: np.ndarray  # (N, 3) float64, meters
    quat_wxyz_w: np.ndarray  # (N, 4) float64
    linear_velocity_w: np.ndarray  # (N, 3) m/s of the object frame's origin
    angular_velocity_w: np.ndarray  # (N, 3) rad/s


@dataclass(frozen=True)
class Contacts:
    """Contact points at one step (pybullet's contact manifold), ids are instance ids."""

    instance_a: np.ndarray  # (M,) int32
    instance_b: np.ndarray  # (M,) int32
    link_a: np.ndarray  # (M,) int32, -1 = base
    link_b: np.ndarray  # (M,) int32
    position_w: np.ndarray  # (M, 3) on A
    normal_w: np.ndarray  # (M, 3) contact normal, pointing from B to A
    normal_force: np.ndarray  # (M,) newtons

    @staticmethod
    def empty() -> Contacts:
        z = np.zeros(0, dtype=np.int32)
        return Contacts(z, z, z, z, np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0))


class PhysicsWorld:
    """A pybullet DIRECT client holding one episode's objects. Use as a context manager."""

    def __init__(
        self,
        params: EpisodeParams,
        *,
        assets: AssetResolver,
        meshes: MeshLibrary,
        pybullet_visuals: bool = False,
        placing: bool = False,
        visuals: bool = True,
    ) -> None:
        if not params.placed and not placing:
            raise ValueError(
                "these parameters have scattered objects not yet placed: get them from "
                "simgen.run.prepare.prepare_episode (or Simulator.prepare), not sample_episode"
            )
        self._pybullet_visuals = pybullet_visuals
        self._visuals = visuals  # False: physics only (placement worlds), no visual_parts
        self._assets, self._meshes = assets, meshes
        self.params = params
        self.scene = params.scene
        sim = self.scene.simulation
        self.timestep = value(sim.timestep)
        self.duration = value(sim.duration)
        self.step_index = 0
        with quiet_stdout():
            self._client: Any = bullet_client.BulletClient(connection_mode=pb.DIRECT)
        try:
            self._setup(assets, meshes)
        except BaseException:
            self.close()
            raise

    # -- lifecycle ------------------------------------------------------------------------------

    def _setup(self, assets: AssetResolver, meshes: MeshLibrary) -> None:
        c = self._client
        sim = self.scene.simulation
        c.setGravity(*vec(sim.gravity).tolist())
        c.setPhysicsEngineParameter(
            fixedTimeStep=self.timestep,
            numSolverIterations=int(sim.solver_iterations),
            deterministicOverlappingPairs=1,
        )
        classes = self.scene.class_table()
        self.bodies: list[Body] = []
        self.visual_parts: list[VisualPart] = []
        # the scene's objects, then those scenarios may spawn (built, then taken out at t = 0)
        for i, spec in enumerate([*self.scene.objects, *spawnable_objects(self.scene)]):
            built = self._build(spec, i + 1)
            dyn = c.getDynamicsInfo(built.body_id, -1)
            com_in_frame = pose_matrix(dyn[3], xyzw_to_wxyz(dyn[4]))
            links = {
                c.getJointInfo(built.body_id, j)[12].decode(): j
                for j in range(c.getNumJoints(built.body_id))
            }
            self.bodies.append(
                Body(
                    i + 1,
                    spec.name,
                    classes.index(spec.class_name),
                    built.body_id,
                    spec,
                    com_in_frame,
                    links,
                )
            )
            self.visual_parts.extend(built.parts)
        self.active = np.ones(len(self.bodies), dtype=bool)
        self._index_bodies()

    def _build(self, spec: ObjectBase, instance_id: int) -> Any:
        ctx = BuildContext(
            client=self._client,
            assets=self._assets,
            meshes=self._meshes,
            instance_id=instance_id,
            pybullet_visuals=self._pybullet_visuals,
            visuals=self._visuals,
        )
        built = build(spec, ctx)
        self._check_extent(built.body_id, spec)
        self._set_dynamics(built.body_id, spec)
        return built

    def _check_extent(self, body: int, spec: ObjectBase) -> None:
        """A body larger than ``max_extent_m`` (a URDF or mesh at a mistaken scale) fails
        here, before it is simulated; planes are infinite by design."""
        from simgen.limits import current, exceeded

        if spec.kind == "plane":  # type: ignore[attr-defined]
            return
        c = self._client
        lo = np.full(3, np.inf)
        hi = np.full(3, -np.inf)
        for link in range(-1, c.getNumJoints(body)):
            a, b = c.getAABB(body, link)
            lo, hi = np.minimum(lo, a), np.maximum(hi, b)
        size = float(np.max(hi - lo)) if np.all(np.isfinite(hi - lo)) else np.inf
        if size > current().max_extent_m:
            raise SimulationError(
                f"object {spec.name!r}: " + exceeded("max_extent_m", "its size, m", size)
            )

    def _index_bodies(self) -> None:
        self._instance_by_body = {
            b.body_id: b.instance_id for b in self.bodies if self.active[b.instance_id - 1]
        }
        self._body_by_name = {b.name: b for b in self.bodies}

    # -- objects entering and leaving (scenario spawn / remove) ---------------------------------

    def deactivate(self, name: str) -> None:
        """Take an object out of the world; its state reads NaN until :meth:`activate`."""
        b = self._body_by_name[name]
        if self.active[b.instance_id - 1]:
            self.client.removeBody(b.body_id)
            self.active[b.instance_id - 1] = False
            self._index_bodies()

    def activate(self, name: str, spec: ObjectBase | None = None) -> None:
        """Put an object (back) into the world, built from ``spec`` (default: its own), with the
        same instance id and visual parts."""
        b = self._body_by_name[name]
        i = b.instance_id - 1
        if self.active[i]:
            self.deactivate(name)
        new_spec = spec if spec is not None else b.spec
        built = self._build(new_spec, b.instance_id)
        self.bodies[i] = replace(b, body_id=built.body_id, spec=new_spec)
        self.active[i] = True
        self._index_bodies()

    def part_active(self) -> np.ndarray:
        """(P,) bool: whether each visual part's object is in the world now."""
        return np.array([self.active[p.instance_id - 1] for p in self.visual_parts], dtype=bool)

    def _set_dynamics(self, body: int, spec: ObjectBase) -> None:
        c = self._client
        for link in range(-1, c.getNumJoints(body)):
            c.changeDynamics(
                body,
                link,
                lateralFriction=value(spec.friction),
                restitution=value(spec.restitution),
                linearDamping=0.0,  # pybullet's default 0.04 is an unphysical drag
                angularDamping=0.0,
            )
        if not spec.static:
            lin = vec(spec.velocity.linear)
            ang = np.radians(vec(spec.velocity.angular_deg))
            c.resetBaseVelocity(body, linearVelocity=lin.tolist(), angularVelocity=ang.tolist())

    def close(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            try:
                client.disconnect()
            except pb.error:
                pass
            self._client = None

    def __enter__(self) -> PhysicsWorld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def client(self) -> Any:
        if self._client is None:
            raise SimulationError("the physics world is closed")
        return self._client

    # -- time -----------------------------------------------------------------------------------

    @property
    def time(self) -> float:
        """Simulated time of the current state, seconds (step index x timestep)."""
        return self.step_index * self.timestep

    @property
    def num_steps(self) -> int:
        """Steps in the episode: states at t = k * dt for k in [0, num_steps)."""
        return max(1, int(np.floor(self.duration / self.timestep + 1e-9)))

    def step(self) -> None:
        self.client.stepSimulation()
        self.step_index += 1

    # -- state ----------------------------------------------------------------------------------

    def body(self, name: str) -> Body:
        return self._body_by_name[name]

    def object_states(self) -> ObjectStates:
        c = self.client
        n = len(self.bodies)
        pos = np.zeros((n, 3))
        quat = np.zeros((n, 4))
        lin = np.zeros((n, 3))
        ang = np.zeros((n, 3))
        for i, b in enumerate(self.bodies):
            if not self.active[i]:
                pos[i] = quat[i] = lin[i] = ang[i] = np.nan
                continue
            p_com, q_com = c.getBasePositionAndOrientation(b.body_id)
            v_com, w = c.getBaseVelocity(b.body_id)
            t_frame = pose_matrix(p_com, xyzw_to_wxyz(q_com)) @ invert_pose(b.com_in_frame)
            pos[i] = t_frame[:3, 3]
            quat[i] = _matrix_quat(t_frame[:3, :3])
            w_ = np.asarray(w)
            lin[i] = np.asarray(v_com) + np.cross(w_, pos[i] - np.asarray(p_com))
            ang[i] = w_
        bad = ~np.isfinite(pos).all(axis=1) & self.active
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise SimulationError(
                f"object {self.bodies[i].name!r}: the physics engine lost it (its position is "
                f"not finite at t = {self.time:.4f} s, step {self.step_index}); its values "
                "(sizes, masses, velocities, timestep) are beyond what pybullet simulates "
                "stably"
            )
        return ObjectStates(pos, quat, lin, ang)

    def link_poses_w(self, body: Body) -> dict[int, np.ndarray]:
        """World pose (4x4) of the object frame (key -1) and of each URDF link frame
        (all NaN while the object is out of the world)."""
        c = self.client
        if not self.active[body.instance_id - 1]:
            nan = np.full((4, 4), np.nan)
            return {j: nan for j in range(-1, len(body.link_index_by_name))}
        p_com, q_com = c.getBasePositionAndOrientation(body.body_id)
        out = {-1: pose_matrix(p_com, xyzw_to_wxyz(q_com)) @ invert_pose(body.com_in_frame)}
        n = c.getNumJoints(body.body_id)
        if n:
            states = c.getLinkStates(body.body_id, list(range(n)), computeForwardKinematics=1)
            for j, s in enumerate(states):
                out[j] = pose_matrix(s[4], xyzw_to_wxyz(s[5]))
        return out

    def part_poses_w(self) -> np.ndarray:
        """(P, 4, 4) world pose of every visual part, in ``visual_parts`` order."""
        links = {b.instance_id: self.link_poses_w(b) for b in self.bodies}
        if not self.visual_parts:
            return np.zeros((0, 4, 4))
        return np.stack(
            [links[p.instance_id][p.link_index] @ p.local_pose for p in self.visual_parts]
        )

    def attachment_pose_w(self, object_name: str, link: str | None) -> np.ndarray:
        """World pose of an object's frame, or of one of its URDF links."""
        b = self._body_by_name[object_name]
        poses = self.link_poses_w(b)
        if link is None:
            return poses[-1]
        if link not in b.link_index_by_name:
            known = ", ".join(sorted(b.link_index_by_name)) or "(none)"
            raise SimulationError(f"object {object_name!r} has no link {link!r}; links: {known}")
        return poses[b.link_index_by_name[link]]

    def contacts(self) -> Contacts:
        pts = self.client.getContactPoints()
        if not pts:
            return Contacts.empty()
        inst = self._instance_by_body
        return Contacts(
            instance_a=np.array([inst.get(p[1], 0) for p in pts], dtype=np.int32),
            instance_b=np.array([inst.get(p[2], 0) for p in pts], dtype=np.int32),
            link_a=np.array([p[3] for p in pts], dtype=np.int32),
            link_b=np.array([p[4] for p in pts], dtype=np.int32),
            position_w=np.array([p[5] for p in pts], dtype=np.float64),
            normal_w=np.array([p[7] for p in pts], dtype=np.float64),
            normal_force=np.array([p[9] for p in pts], dtype=np.float64),
        )


def spawnable_objects(scene: Any) -> list[ObjectBase]:
    """Objects that the scene's scenarios spawn during the episode, in order."""
    from simgen.scenario.checks import spawned_objects

    return [o for sc in scene.scenarios for o in spawned_objects(sc)]


def _matrix_quat(r: np.ndarray) -> np.ndarray:
    from simgen.geometry import matrix_to_quat

    return matrix_to_quat(r)


__all__ = ["Body", "Contacts", "ObjectStates", "PhysicsWorld", "pose_matrices"]
