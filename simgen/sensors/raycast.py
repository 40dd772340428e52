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
rays one by one on the calling thread without holding the GIL, so :meth:`RayCaster.trace`
splits large casts over a thread pool. benchmarks/bench_lidar.py measures it against pybullet
and the raw binding.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from simgen.errors import RenderBackendError
from simgen.sim.visuals import VisualPart

#: Cosine margin of the bounding-cone test (keeps rays that graze a part's box).
_CULL_EPS = 1e-6
#: A cast is split over threads only in chunks of at least this many rays: below it, handing
#: work to a thread costs more than it saves (measured on the street benchmark).
MIN_RAYS_PER_THREAD = 16384
#: Rays handled at once by the moving-part culling (its temporaries stay in cache).
BLOCK = 8192


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
    cos_incidence: np.ndarray  # (n,) float32 |cos| of ray and surface normal, 0 on a miss


@dataclass
class _Local:
    scene: Any  # embreex EmbreeScene in the part frame
    center: np.ndarray  # (3,) bounding sphere center, part frame
    radius: float
    lo: np.ndarray  # (3,) bounding box, part frame
    hi: np.ndarray

    @property
    def corners(self) -> np.ndarray:
        """(8, 3) corners of the bounding box, part frame."""
        lo, hi = self.lo, self.hi
        return np.array(
            [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
        )


def _origins(origin: np.ndarray, n: int) -> np.ndarray:
    """(n, 3) float32 view repeating one origin (stride 0: no copy; Embree only reads it)."""
    o = np.ascontiguousarray(origin, np.float32)
    return np.lib.stride_tricks.as_strided(o, shape=(n, 3), strides=(0, o.itemsize))


class RayCaster:
    """Embree geometry cache and worker threads, shared by the episodes of one worker.

    ``threads``: rays of one cast are split over this many threads (embreex releases the GIL
    while tracing); default: every core.
    """

    def __init__(self, max_cached: int = 512, threads: int | None = None) -> None:
        self.max_cached = max_cached
        self.threads = max(1, threads if threads is not None else (os.cpu_count() or 1))
        self._local: OrderedDict[str, _Local] = OrderedDict()
        self._pool: ThreadPoolExecutor | None = None
        self.builds = 0  # Embree scenes built (for tests and benchmarks)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def local(self, part: VisualPart) -> _Local:
        hit = self._local.get(part.key)
        if hit is not None:
            self._local.move_to_end(part.key)
            return hit
        v, f = part_triangles(part)
        lo, hi = v.min(axis=0), v.max(axis=0)
        center = (lo + hi) / 2.0
        radius = float(np.sqrt(((v - center) ** 2).sum(axis=1).max()))
        entry = _Local(self.build([(v, f)]), center, radius, lo, hi)
        self._local[part.key] = entry
        if len(self._local) > self.max_cached:
            self._local.popitem(last=False)
        return entry

    def build(self, meshes: Sequence[tuple[np.ndarray, np.ndarray]]) -> Any:
        """An Embree scene with one geometry per (vertices, faces); geometry id = list index.
        Committed here, so threads may trace it at once."""
        rtcore_scene, mesh_construction = embree()
        scene = rtcore_scene.EmbreeScene(robust=True)
        for v, f in meshes:
            mesh_construction.TriangleMesh(
                scene, np.ascontiguousarray(v, np.float32), np.ascontiguousarray(f, np.int32)
            )
        one = np.zeros((1, 3), np.float32)
        scene.run(one, one + np.array([0, 0, 1], np.float32))  # commits the scene
        self.builds += 1
        return scene

    def trace(
        self, scene: Any, origin: np.ndarray, dirs: np.ndarray, t: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Trace ``dirs`` (n, 3) float32 from ``origin`` on ``scene``, splitting the rays over the
        threads. ``t`` (n,) float32 holds tfar on entry and the hit distance on return.
        Returns (geometry id, geometric normal)."""
        n = dirs.shape[0]
        geom = np.empty(n, np.int32)
        ng = np.empty((n, 3), np.float32)
        o = _origins(origin, n)

        def run(lo: int, hi: int) -> None:
            res = scene.run(o[lo:hi], dirs[lo:hi], dists=t[lo:hi], output=1)
            geom[lo:hi] = res["geomID"]
            ng[lo:hi] = res["Ng"]

        chunks = min(self.threads, n // MIN_RAYS_PER_THREAD)
        if chunks <= 1:
            run(0, n)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="simgen-ray")
            edges = np.linspace(0, n, chunks + 1).astype(int)
            list(self._pool.map(run, edges[:-1], edges[1:]))
        return geom, ng

    def scene(
        self, parts: Sequence[VisualPart], movable: np.ndarray, poses_w: np.ndarray
    ) -> CastScene:
        """An episode's cast scene: ``movable[i]`` tells whether part i can move; the others
        are baked at ``poses_w`` (P, 4, 4)."""
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
        self._corners: np.ndarray | None = None
        self._centers = self._lo = self._hi = np.zeros((0, 3))
        self._static: Any = None
        self.bake(poses_w)

    def bake(self, poses_w: np.ndarray) -> None:
        """(Re)build the world-frame scene of the parts that do not move, at ``poses_w``."""
        meshes = []
        for i in self.static_parts:
            v, f = part_triangles(self.parts[i])
            meshes.append((v @ poses_w[i, :3, :3].T + poses_w[i, :3, 3], f))
        self._static = self.caster.build(meshes) if meshes else None

    def cast(
        self, origin_w: np.ndarray, dirs_w: np.ndarray, moving_poses_w: np.ndarray, t_max: float
    ) -> Hits:
        """Nearest hits of rays from ``origin_w`` (3,) along unit ``dirs_w`` (n, 3) up to
        ``t_max``; ``moving_poses_w`` (M, 4, 4) are the world poses of ``moving_parts``."""
        n = dirs_w.shape[0]
        d32 = np.ascontiguousarray(dirs_w, np.float32)
        t = np.full(n, t_max, np.float32)
        part = np.full(n, -1, np.int32)
        ng = np.zeros((n, 3), np.float32)
        if self._static is not None and n:
            geom, ng = self.caster.trace(self._static, np.asarray(origin_w, np.float32), d32, t)
            hit = geom >= 0
            part[hit] = self.static_parts[geom[hit]]
        if self.moving_parts.size and n:
            o64 = np.asarray(origin_w, np.float64)
            for a in range(0, n, BLOCK):  # blocks that stay in cache
                b = min(a + BLOCK, n)
                self._cast_moving(o64, d32[a:b], moving_poses_w, t[a:b], part[a:b], ng[a:b])
        t[part < 0] = np.inf
        dot = np.abs(np.einsum("ij,ij->i", d32, ng))
        length = np.sqrt(np.einsum("ij,ij->i", ng, ng))
        cos = np.divide(dot, length, out=np.zeros(n, np.float32), where=length > 0)
        return Hits(t, part, cos)

    def _cast_moving(
        self,
        origin: np.ndarray,
        d32: np.ndarray,
        poses: np.ndarray,
        t: np.ndarray,
        part: np.ndarray,
        ng: np.ndarray,
    ) -> None:
        """Instancing on the rays. Each part's bounding box, seen from the origin, lies in a cone
        (axis: toward the box center; half-angle: the widest corner); one matrix product tests
        every ray against every cone, and only rays inside a cone are moved into that part's
        frame and traced on its cached geometry, with tfar = the nearest hit so far."""
        if self._corners is None:
            self._corners = np.stack([x.corners for x in self._locals])  # (M, 8, 3)
            self._centers = np.stack([(x.lo + x.hi) / 2.0 for x in self._locals])
            self._lo = np.stack([x.lo for x in self._locals])
            self._hi = np.stack([x.hi for x in self._locals])
        rot = poses[:, :3, :3]
        o_l = np.einsum("mji,mj->mi", rot, origin - poses[:, :3, 3])  # origin in part frames
        inside = np.all((o_l >= self._lo) & (o_l <= self._hi), axis=1)
        v = self._corners - o_l[:, None, :]  # (M, 8, 3)
        u = self._centers - o_l
        u /= np.sqrt(np.einsum("mi,mi->m", u, u))[:, None] + 1e-12
        cos_corner = np.einsum("mki,mi->mk", v, u) / (
            np.sqrt(np.einsum("mki,mki->mk", v, v)) + 1e-12
        )
        cos_lim = cos_corner.min(axis=1) - _CULL_EPS
        every = inside | (cos_lim <= 0.0)  # the box surrounds the origin or spans >= 180 deg
        axes_w = np.einsum("mij,mj->mi", rot, u).astype(np.float32)
        in_cone = (d32 @ axes_w.T) >= cos_lim.astype(np.float32)  # (n, M): every part at once
        in_cone[:, every] = True
        rot32 = rot.astype(np.float32)
        for k in np.flatnonzero(in_cone.any(axis=0)):
            idx = np.flatnonzero(in_cone[:, k])
            d_l = np.take(d32, idx, axis=0) @ rot32[k]  # R^T d, as rows
            tf = t[idx]
            res = self._locals[k].scene.run(_origins(o_l[k], idx.size), d_l, dists=tf, output=1)
            hit = res["geomID"] >= 0
            if not hit.any():
                continue
            j = idx[hit]
            t[j] = tf[hit]
            part[j] = self.moving_parts[k]
            ng[j] = res["Ng"][hit] @ rot32[k].T
