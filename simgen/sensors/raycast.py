"""Ray casting against the visual geometry (the triangles the camera renders) with Embree.

Engines, in two levels:

* :class:`RayCaster` lives as long as a worker. It keeps one Embree scene per *geometry* (a
  :class:`~simgen.sim.visuals.VisualPart`'s triangles in the part's own frame, keyed by
  ``part.key``) across episodes, and the worker threads that trace.
* :class:`CastScene` belongs to one episode. Parts that cannot move (the base of a static
  object) are baked into one world-frame Embree scene, built once. Parts that move are never
  rebuilt: rays that can reach a part are moved into the part's frame and traced on its cached
  geometry (instancing done on the rays). A cast therefore costs no BVH build.

:meth:`CastScene.trace_static` and :meth:`CastScene.trace_part` are the building blocks;
:meth:`CastScene.cast` casts rays from one point at one instant, and
:func:`simgen.sensors.sweep_cast.cast_sweep` casts a LiDAR sweep whose sectors were taken at
different instants.

The binding is ``embreex`` (trimesh's ray backend; Embree 4). Its ``EmbreeScene.run`` traces
rays one by one on the calling thread without holding the GIL, so casts are split into chunks
traced by a thread pool. benchmarks/bench_lidar.py measures it against pybullet and the raw
binding.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from simgen.errors import RenderBackendError
from simgen.sim.visuals import VisualPart

T = TypeVar("T")

#: Cosine margin of the bounding-cone test (keeps rays that graze a part's box).
_CULL_EPS = 1e-6
#: A cast is split over threads in chunks of at least this many rays: below it, handing work
#: to a thread costs more than it saves (measured on the street benchmark).
MIN_RAYS_PER_THREAD = 16384
#: Rays handled at once by the moving-part culling of :meth:`CastScene.cast`.
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
    lo: np.ndarray  # (3,) bounding box, part frame
    hi: np.ndarray

    @property
    def corners(self) -> np.ndarray:
        """(8, 3) corners of the bounding box, part frame."""
        lo, hi = self.lo, self.hi
        return np.array(
            [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
        )


def origins(origin: np.ndarray, n: int) -> np.ndarray:
    """(n, 3) float32 view repeating one origin (stride 0: no copy; Embree only reads it)."""
    o = np.ascontiguousarray(origin, np.float32)
    return np.lib.stride_tricks.as_strided(o, shape=(n, 3), strides=(0, o.itemsize))


def incidence(d: np.ndarray, ng: np.ndarray, out: np.ndarray) -> None:
    """``out`` = |cos| between directions ``d`` and geometric normals ``ng`` (n, 3); 0 for a
    miss (Embree's normal of a miss is zero). Coordinate by coordinate: 1-D loops are several
    times faster than a row-wise reduction over 3 elements."""
    dc, nc = d.T, ng.T
    tmp = np.empty(out.shape, np.float32)
    dot = np.multiply(dc[0], nc[0], dtype=np.float32)
    dot += np.multiply(dc[1], nc[1], out=tmp)
    dot += np.multiply(dc[2], nc[2], out=tmp)
    length = np.multiply(nc[0], nc[0], dtype=np.float32)
    length += np.multiply(nc[1], nc[1], out=tmp)
    length += np.multiply(nc[2], nc[2], out=tmp)
    np.sqrt(length, out=length)
    length += np.float32(1e-30)
    np.divide(np.abs(dot, out=dot), length, out=out)


class RayCaster:
    """Embree geometry cache and worker threads, shared by the episodes of one worker.

    ``threads``: casts are split over this many threads (embreex releases the GIL while
    tracing); default: every core.
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

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on a worker thread (inline when there is one thread)."""
        if self.threads == 1:
            fut: Future[T] = Future()
            try:
                fut.set_result(fn(*args))
            except BaseException as e:
                fut.set_exception(e)
            return fut
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="simgen-ray")
        return self._pool.submit(fn, *args)

    def map(self, fn: Callable[..., T], *iterables: Iterable[Any]) -> list[T]:
        """``[fn(*args) ...]`` over the worker threads, in order."""
        return [f.result() for f in [self.submit(fn, *a) for a in zip(*iterables, strict=True)]]

    def local(self, part: VisualPart) -> _Local:
        hit = self._local.get(part.key)
        if hit is not None:
            self._local.move_to_end(part.key)
            return hit
        v, f = part_triangles(part)
        entry = _Local(self.build([(v, f)]), v.min(axis=0), v.max(axis=0))
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

    def scene(
        self, parts: Sequence[VisualPart], movable: np.ndarray, poses_w: np.ndarray
    ) -> CastScene:
        """An episode's cast scene: ``movable[i]`` tells whether part i can move; the others
        are baked at ``poses_w`` (P, 4, 4)."""
        return CastScene(self, list(parts), np.asarray(movable, bool), poses_w)


class CastScene:
    """The geometry of one episode; cast rays with :meth:`cast` (one instant) or
    :func:`simgen.sensors.sweep_cast.cast_sweep` (a sweep)."""

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
        self.locals = [caster.local(parts[i]) for i in self.moving_parts]
        #: bounding boxes of the moving parts in their frames, (M, 3) each
        self.box_lo = np.array([x.lo for x in self.locals]).reshape(-1, 3)
        self.box_hi = np.array([x.hi for x in self.locals]).reshape(-1, 3)
        # Embree geometry id -> part index; a miss (-1) reads the appended -1
        self._geom_part = np.append(self.static_parts, -1).astype(np.int32)
        self.static: Any = None
        self.bake(poses_w)

    def bake(self, poses_w: np.ndarray) -> None:
        """(Re)build the world-frame scene of the parts that do not move, at ``poses_w``."""
        meshes = []
        for i in self.static_parts:
            v, f = part_triangles(self.parts[i])
            meshes.append((v @ poses_w[i, :3, :3].T + poses_w[i, :3, 3], f))
        self.static = self.caster.build(meshes) if meshes else None

    def trace_static(
        self,
        origins_w: np.ndarray,
        dirs_w: np.ndarray,
        t: np.ndarray,
        part: np.ndarray,
        cos: np.ndarray,
    ) -> None:
        """Trace rays (n, 3) float32 on the static parts, on the calling thread. ``t`` holds
        tfar on entry and the hit distance on return; ``part`` and ``cos`` are written for every
        ray (-1 and 0 on a miss)."""
        if self.static is None:
            part[...] = -1
            cos[...] = 0.0
            return
        res = self.static.run(origins_w, dirs_w, dists=t, output=1)
        geom = res["geomID"]
        np.take(self._geom_part, geom, out=part, mode="wrap")
        incidence(dirs_w, res["Ng"], cos)

    def trace_part(
        self, k: int, origins_l: np.ndarray, dirs_l: np.ndarray, t: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Trace rays given in the frame of moving part ``k`` (index into ``moving_parts``)
        with tfar ``t`` (updated in place). Returns (hit mask, |cos incidence| of the hits)."""
        res = self.locals[k].scene.run(origins_l, dirs_l, dists=t, output=1)
        hit = res["geomID"] >= 0
        cos = np.empty(int(np.count_nonzero(hit)), np.float32)
        incidence(dirs_l[hit], res["Ng"][hit], cos)
        return hit, cos

    def cast(
        self, origin_w: np.ndarray, dirs_w: np.ndarray, moving_poses_w: np.ndarray, t_max: float
    ) -> Hits:
        """Nearest hits of rays from ``origin_w`` (3,) along unit ``dirs_w`` (n, 3) up to
        ``t_max``, at one instant; ``moving_poses_w`` (M, 4, 4) are the world poses of
        ``moving_parts``."""
        n = dirs_w.shape[0]
        d32 = np.ascontiguousarray(dirs_w, np.float32)
        t = np.full(n, t_max, np.float32)
        part = np.full(n, -1, np.int32)
        cos = np.zeros(n, np.float32)
        o = origins(np.asarray(origin_w, np.float32), n)
        edges = np.linspace(0, n, max(1, min(self.caster.threads, n // MIN_RAYS_PER_THREAD)) + 1)
        bounds = edges.astype(int)

        def static(a: int, b: int) -> None:
            self.trace_static(o[a:b], d32[a:b], t[a:b], part[a:b], cos[a:b])

        self.caster.map(static, bounds[:-1], bounds[1:])
        if self.moving_parts.size and n:
            o64 = np.asarray(origin_w, np.float64)
            for a in range(0, n, BLOCK):  # blocks that stay in cache
                b = min(a + BLOCK, n)
                self._cast_moving(o64, d32[a:b], moving_poses_w, t[a:b], part[a:b], cos[a:b])
        t[part < 0] = np.inf
        return Hits(t, part, cos)

    def _cast_moving(
        self,
        origin: np.ndarray,
        d32: np.ndarray,
        poses: np.ndarray,
        t: np.ndarray,
        part: np.ndarray,
        cos: np.ndarray,
    ) -> None:
        """Instancing on the rays. Each part's bounding box, seen from the origin, lies in a cone
        (axis: toward the box center; half-angle: the widest corner); one matrix product tests
        every ray against every cone, and only rays inside a cone are moved into that part's
        frame and traced on its cached geometry, with tfar = the nearest hit so far."""
        rot = poses[:, :3, :3]
        o_l = np.einsum("mji,mj->mi", rot, origin - poses[:, :3, 3])  # origin in part frames
        inside = np.all((o_l >= self.box_lo) & (o_l <= self.box_hi), axis=1)
        corners = np.stack([x.corners for x in self.locals])  # (M, 8, 3)
        v = corners - o_l[:, None, :]
        u = (self.box_lo + self.box_hi) / 2.0 - o_l
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
            tf = t[idx]
            o = origins(o_l[k].astype(np.float32), idx.size)
            hit, c = self.trace_part(int(k), o, np.take(d32, idx, axis=0) @ rot32[k], tf)
            if hit.any():
                j = idx[hit]
                t[j] = tf[hit]
                part[j] = self.moving_parts[k]
                cos[j] = c
