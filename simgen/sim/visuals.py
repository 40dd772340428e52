"""Visual geometry: what each object looks like, shared by the renderer and the ray caster.

A :class:`VisualPart` is a set of triangle meshes rigidly attached to one link of one object,
with a fixed offset from that link's frame. Its world pose at any time is
``link_pose_w @ local_pose``; :class:`simgen.sim.world.PhysicsWorld` provides the link poses.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh

from simgen.errors import AssetError

MAX_MESH_FACES = 5_000_000  # the default of simgen.limits.Limits.max_mesh_triangles


@dataclass(frozen=True)
class Appearance:
    """Resolved material of a visual part. ``use_mesh_visuals``: keep the file's own
    colors/textures (URDF and mesh assets without an explicit material)."""

    color_rgba: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 1.0)
    texture: Path | None = None
    metallic: float = 0.0
    roughness: float = 0.6
    use_mesh_visuals: bool = False


@dataclass(frozen=True)
class VisualPart:
    instance_id: int
    link_index: int  # -1 is the base
    meshes: tuple[trimesh.Trimesh, ...]
    local_pose: np.ndarray  # (4, 4): part frame in the link frame
    appearance: Appearance
    key: str  # identifies the geometry (for caches of GPU buffers / ray-casting scenes)
    double_sided: bool = False


@dataclass
class MeshLibrary:
    """Loads mesh files once and hands out shared (read-only) copies. Owned by a worker.

    Files are cached as loaded (unscaled), keyed by path. A scaled variant (a transformed copy)
    is cached from its second request on: the fixed scales of a scene are made once, while a
    scale sampled anew every episode makes a copy that lives for that episode only. (Keeping
    such never-reused copies for a while, even a bounded number, was measured to make a worker's
    resident memory grow by about 1 MB per episode: heap fragmentation.)"""

    max_entries: int = 256
    max_scaled: int = 64
    _cache: dict[str, tuple[trimesh.Trimesh, ...]] = field(default_factory=dict)
    _scaled: OrderedDict[tuple[str, tuple[float, ...]], tuple[trimesh.Trimesh, ...]] = field(
        default_factory=OrderedDict
    )
    _requested: OrderedDict[tuple[str, tuple[float, ...]], None] = field(
        default_factory=OrderedDict
    )

    def load(
        self, path: Path, scale: np.ndarray | tuple[float, float, float]
    ) -> tuple[trimesh.Trimesh, ...]:
        s = tuple(float(x) for x in np.broadcast_to(np.asarray(scale, dtype=float), (3,)))
        base = self._cache.get(str(path))
        if base is None:
            base = tuple(_load_meshes(path, np.ones(3)))
            if len(self._cache) >= self.max_entries:
                self._cache.pop(next(iter(self._cache)))
            self._cache[str(path)] = base
        if np.allclose(s, 1.0):
            return base
        key = (str(path), s)
        hit = self._scaled.pop(key, None)
        if hit is None:
            scaled = []
            for m in base:
                g = m.copy()
                g.apply_transform(np.diag([*s, 1.0]))
                scaled.append(g)
            hit = tuple(scaled)
            if key not in self._requested:  # first request: remember the key, not the copy
                self._requested[key] = None
                while len(self._requested) > 16 * self.max_scaled:
                    self._requested.popitem(last=False)
                return hit
        self._scaled[key] = hit  # most recently used last
        while len(self._scaled) > self.max_scaled:
            self._scaled.popitem(last=False)
        return hit

    def __len__(self) -> int:
        return len(self._cache)


def _load_meshes(path: Path, scale: np.ndarray) -> list[trimesh.Trimesh]:
    if path.stat().st_size == 0:
        raise AssetError(f"mesh {path}: the file is empty")
    try:
        loaded = trimesh.load(str(path), force="scene", process=False)
    except Exception as e:  # trimesh raises many types on a bad file
        raise AssetError(f"mesh {path}: cannot be read ({type(e).__name__}: {e})") from None
    meshes: list[trimesh.Trimesh] = []
    for geom in loaded.dump(concatenate=False) if hasattr(loaded, "dump") else [loaded]:
        if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
            continue
        g = geom.copy()
        if not np.all(np.isfinite(g.vertices)):
            raise AssetError(f"mesh {path}: has NaN or infinite vertex coordinates")
        g.apply_scale(1.0) if np.allclose(scale, 1.0) else g.apply_transform(np.diag([*scale, 1.0]))
        meshes.append(g)
    if not meshes:
        raise AssetError(f"mesh {path}: contains no triangles (empty or not a mesh file?)")
    from simgen.limits import current, exceeded

    n = sum(len(m.faces) for m in meshes)
    if n > current().max_mesh_triangles:
        raise AssetError(f"mesh {path}: " + exceeded("max_mesh_triangles", "triangles", n))
    if not any(float(m.area) > 0.0 for m in meshes):
        raise AssetError(
            f"mesh {path}: all {n} triangles have zero area (collapsed vertices): nothing to "
            "see or collide with"
        )
    return meshes


def geometry_key(*parts: object) -> str:
    h = hashlib.sha1(repr(parts).encode()).hexdigest()[:16]
    return h


# --- primitive meshes (all centered, in meters) ------------------------------------------------


def box_mesh(size: np.ndarray) -> trimesh.Trimesh:
    """Box with 24 vertices (4 per face) and UVs in meters, so textures tile at 1 m."""
    hx, hy, hz = np.asarray(size, dtype=float) / 2.0
    verts: list[np.ndarray] = []
    uvs: list[list[float]] = []
    faces: list[list[int]] = []
    # (normal axis, sign) -> face corners in counter-clockwise order seen from outside
    for axis in range(3):
        for sign in (-1.0, 1.0):
            u_ax, v_ax = [a for a in range(3) if a != axis]
            half = np.array([hx, hy, hz])
            base = len(verts)
            for cu, cv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                p = np.zeros(3)
                p[axis] = sign * half[axis]
                p[u_ax] = cu * half[u_ax]
                p[v_ax] = cv * half[v_ax]
                verts.append(p)
                uvs.append([(cu + 1) * half[u_ax], (cv + 1) * half[v_ax]])
            n = np.cross(verts[base + 1] - verts[base], verts[base + 2] - verts[base])
            if n[axis] * sign > 0:
                faces += [[base, base + 1, base + 2], [base, base + 2, base + 3]]
            else:
                faces += [[base, base + 2, base + 1], [base, base + 3, base + 2]]
    m = trimesh.Trimesh(np.array(verts), np.array(faces), process=False)
    m.visual = trimesh.visual.TextureVisuals(uv=np.array(uvs))
    return m


def sphere_mesh(radius: float) -> trimesh.Trimesh:
    return trimesh.creation.uv_sphere(radius=radius, count=[48, 48])


def cylinder_mesh(radius: float, length: float) -> trimesh.Trimesh:
    return trimesh.creation.cylinder(radius=radius, height=length, sections=64)


def capsule_mesh(radius: float, length: float) -> trimesh.Trimesh:
    return trimesh.creation.capsule(height=length, radius=radius, count=[48, 48])


def plane_mesh(size_x: float, size_y: float) -> trimesh.Trimesh:
    hx, hy = size_x / 2.0, size_y / 2.0
    v = np.array([[-hx, -hy, 0.0], [hx, -hy, 0.0], [hx, hy, 0.0], [-hx, hy, 0.0]])
    f = np.array([[0, 1, 2], [0, 2, 3]])
    uv = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]) * np.array([size_x, size_y])
    m = trimesh.Trimesh(vertices=v, faces=f, process=False)
    m.visual = trimesh.visual.TextureVisuals(uv=uv)
    return m
