"""Ray casting against the visual geometry (the triangles the camera renders) with Embree.

Engines, in two levels:

* :class:`RayCaster` lives as long as a worker. It keeps one Embree scene per *geometry* (a
  :class:`~simgen.sim.visuals.VisualPart`'s triangles in the part's own frame, keyed by
  ``part.key``) across episodes.
* :class:`CastScene` belongs to one episode. Parts that cannot move (the base of a static
  object) are baked into one world-frame Embree scene, built once. Parts that move are never
  rebuilt: at each cast, rays whose direction passes within a part's bounding sphere are moved
  into that part's frame and cast against its cached geometry with ``tfar`` set to the nearest
  hit so far (instancing done on the rays). A sector of a sweep therefore costs no BVH build.

The binding is ``embreex`` (trimesh's ray backend; Embree 4). Its ``EmbreeScene.run`` traces
rays one by one on the calling thread and holds the GIL, so a cast uses one core;
benchmarks/bench_lidar.py measures it against other bindings and pybullet.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simgen.errors import RenderBackendError
from simgen.sim.visuals import VisualPart

#: Cosine margin of the bounding-sphere test (keeps rays that graze a sphere).
_CULL_EPS = 1e-6


def embree() -> tuple[Any, Any]:
    """The embreex modules ``(rtcore_scene, mesh_construction)``, with an install hint."""
    try:
        from embreex import mesh_construction, rtcore_scene
    except ImportError as e:  # pragma: no cover - embreex is a dependency on x86_64
        raise RenderBackendError(
            f"LiDAR ray casting needs Embree through the 'embreex' package ({e}); "
            "install it with: pip install embreex"
        ) from None
    return rtcore_scene, mesh_construction


def part_triangles(part: VisualPart) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) float64 vertices in the part frame and (F, 3) int32 faces of all its meshes."""
    verts, faces, base = [], [], 0
    for m in part.meshes:
        verts.append(np.asarray(m.vertices, dtype=np.float64))
        faces.append(np.asarray(m.faces, dtype=np.int64) + base)
        base += len(m.vertices)
    return np.concatenate(verts), np.concatenate(faces).astype(np.int32)


@dataclass(frozen=True)
class Hits:
    """Nearest hit of each ray. ``t`` is the distance along the unit direction."""

    t: np.ndarray  # (n,) float32, inf where the ray hit nothing within t_max
    part: np.ndarray  # (n,) int32 index into the scene's parts, -1 = miss
    normal_w: np.ndarray  # (n, 3) float32 unit geometric normal (either side), 0 on a miss


@dataclass
class _Local:
    scene: Any  # embreex EmbreeScene in the part frame
    center: np.ndarray  # (3,) bounding sphere center, part frame
    radius: float


class RayCaster:
    """Embree geometry cache shared by the episodes of one worker."""

    def __init__(self, max_cached: int = 512) -> None:
        self.max_cached = max_cached
        self._local: OrderedDict[str, _Local] = OrderedDict()
        self.builds = 0  # Embree scenes built (for tests and benchmarks)

    def local(self, part: VisualPart) -> _Local:
        hit = self._local.get(part.key)
        if hit is not None:
            self._local.move_to_end(part.key)
            return hit
        v, f = part_triangles(part)
        lo, hi = v.min(axis=0), v.max(axis=0)
        center = (lo + hi) / 2.0
        radius = float(np.sqrt(((v - center) ** 2).sum(axis=1).max()))
        entry = _Local(self.build([(v, f)]), center, radius)
        self._local[part.key] = entry
        if len(self._local) > self.max_cached:
            self._local.popitem(last=False)
        return entry

    def build(self, meshes: Sequence[tuple[np.ndarray, np.ndarray]]) -> Any:
        """An Embree scene with one geometry per (vertices, faces); geometry id = list index."""
        rtcore_scene, mesh_construction = embree()
        scene = rtcore_scene.EmbreeScene(robust=True)
        for v, f in meshes:
            mesh_construction.TriangleMesh(
                scene, np.ascontiguousarray(v, np.float32), np.ascontiguousarray(f, np.int32)
            )
        self.builds += 1
        return scene

    def scene(
        self, parts: Sequence[VisualPart], movable: np.ndarray, poses_w: np.ndarray
    ) -> CastScene:
        """An episode's cast scene: ``movable[i]`` tells whether part i can move."""
        return CastScene(self, list(parts), np.asarray(movable, bool), poses_w)


class CastScene:
    """The geometry of one episode; cast rays with :meth:`cast`."""

    def __init__(
        self,
        caster: RayCaster,
        parts: list[VisualPart],
        movable: np.ndarray,
        poses_w: np.ndarray,
    ) -> None:
        self.caster = caster
        self.parts = parts
        self.movable = movable
        self.static_parts = np.flatnonzero(~movable).astype(np.int32)
        self.moving_parts = np.flatnonzero(movable).astype(np.int32)
        self._locals = [caster.local(parts[i]) for i in self.moving_parts]
        self._static: Any = None
        self._static_poses = np.zeros((0, 4, 4))
        self._build_static(poses_w)

    def _build_static(self, poses_w: np.ndarray) -> None:
        meshes = []
        for i in self.static_parts:
            v, f = part_triangles(self.parts[i])
            meshes.append((v @ poses_w[i, :3, :3].T + poses_w[i, :3, 3], f))
        self._static = self.caster.build(meshes) if meshes else None
        self._static_poses = poses_w[self.static_parts].copy()

    def cast(
        self, origin_w: np.ndarray, dirs_w: np.ndarray, poses_w: np.ndarray, t_max: float
    ) -> Hits:
        """Nearest hits of rays from ``origin_w`` (3,) along unit ``dirs_w`` (n, 3) up to
        ``t_max``, with the parts at ``poses_w`` (P, 4, 4)."""
        if self.static_parts.size and not np.array_equal(
            poses_w[self.static_parts], self._static_poses
        ):
            self._build_static(poses_w)  # a "static" part was moved by hand: bake it again
        n = dirs_w.shape[0]
        t = np.full(n, t_max, np.float32)
        part = np.full(n, -1, np.int32)
        normal = np.zeros((n, 3), np.float32)
        d32 = np.ascontiguousarray(dirs_w, np.float32)
        if self._static is not None and n:
            o32 = np.broadcast_to(np.asarray(origin_w, np.float32), (n, 3)).copy()
            res = self._static.run(o32, d32, dists=t, output=1)
            hit = res["geomID"] >= 0
            part[hit] = self.static_parts[res["geomID"][hit]]
            normal[hit] = res["Ng"][hit]
        if self.moving_parts.size and n:
            self._cast_moving(np.asarray(origin_w, np.float64), d32, poses_w, t, part, normal)
        miss = part < 0
        t[miss] = np.inf
        length = np.linalg.norm(normal, axis=1, keepdims=True)
        normal = np.divide(normal, length, out=np.zeros_like(normal), where=length > 0)
        return Hits(t, part, normal)

    def _cast_moving(
        self,
        origin: np.ndarray,
        d32: np.ndarray,
        poses_w: np.ndarray,
        t: np.ndarray,
        part: np.ndarray,
        normal: np.ndarray,
    ) -> None:
        poses = poses_w[self.moving_parts]
        centers = np.einsum("pij,pj->pi", poses[:, :3, :3], np.stack([x.center for x in self._locals]))
        centers += poses[:, :3, 3]
        radii = np.array([x.radius for x in self._locals])
        to_c = centers - origin
        dist = np.linalg.norm(to_c, axis=1)
        t_far = float(t.max())
        inside = dist <= radii
        near = (dist - radii) <= t_far
        unit = to_c / np.maximum(dist, 1e-12)[:, None]
        cos_lim = np.sqrt(np.clip(1.0 - (radii / np.maximum(dist, 1e-12)) ** 2, 0.0, 1.0))
        cosines = d32 @ unit.T.astype(np.float32)  # (n, P): one BLAS call for all parts
        for k, pi in enumerate(self.moving_parts):
            if not near[k]:
                continue
            idx = (
                np.arange(d32.shape[0])
                if inside[k]
                else np.flatnonzero(cosines[:, k] >= cos_lim[k] - _CULL_EPS)
            )
            if idx.size == 0:
                continue
            r = poses[k, :3, :3]
            o_l = (origin - poses[k, :3, 3]) @ r  # R^T (o - p)
            d_l = np.ascontiguousarray(d32[idx] @ r.astype(np.float32))
            o_l32 = np.broadcast_to(o_l.astype(np.float32), (idx.size, 3)).copy()
            tf = t[idx].copy()
            res = self._locals[k].scene.run(o_l32, d_l, dists=tf, output=1)
            hit = res["geomID"] >= 0
            if not hit.any():
                continue
            j = idx[hit]
            t[j] = tf[hit]
            part[j] = pi
            normal[j] = res["Ng"][hit] @ r.T.astype(np.float32)
