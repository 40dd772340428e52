"""One small builder per object kind: spec -> pybullet body + visual parts.

Builders are registered with :func:`functools.singledispatch` on the spec's model class; a kind
without a builder fails loudly. pybullet's (x, y, z, w) quaternions appear only in this package.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from functools import singledispatch
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from simgen.errors import AssetError, SimulationError
from simgen.geometry import euler_deg_to_quat, quat_normalize, wxyz_to_xyzw
from simgen.scene.objects import (
    BoxObject,
    CapsuleObject,
    CylinderObject,
    MeshObject,
    ObjectBase,
    PlaneObject,
    SphereObject,
    UrdfObject,
)
from simgen.scene.types import EulerOrientation, Pose, value, vec
from simgen.sim.assetcheck import check_texture, check_urdf
from simgen.sim.assets import AssetResolver
from simgen.sim.quiet import import_pybullet
from simgen.sim.visuals import (
    Appearance,
    MeshLibrary,
    VisualPart,
    box_mesh,
    capsule_mesh,
    cylinder_mesh,
    geometry_key,
    plane_mesh,
    sphere_mesh,
)

pb = import_pybullet()


@dataclass
class BuildContext:
    client: Any  # pybullet_utils.bullet_client.BulletClient
    assets: AssetResolver
    meshes: MeshLibrary
    instance_id: int
    pybullet_visuals: bool = False  # also give primitives pybullet visual shapes (debug/benchmarks)
    visuals: bool = True  # False: physics only, no visual parts (faster URDF loading)


@dataclass
class Built:
    body_id: int
    parts: list[VisualPart]


def pose_quat_wxyz(pose: Pose) -> np.ndarray:
    o = pose.orientation
    if isinstance(o, EulerOrientation):
        return euler_deg_to_quat(vec(o.euler_deg))
    return quat_normalize(vec(o.quat_wxyz))


def _appearance(spec: ObjectBase, ctx: BuildContext, default_mesh_visuals: bool) -> Appearance:
    m = spec.material
    if m is None:
        return Appearance(use_mesh_visuals=default_mesh_visuals)
    rgba = tuple(value(c) for c in m.color)
    if len(rgba) == 3:
        rgba = (*rgba, 1.0)
    tex = None
    if m.texture:
        what = f"texture of object {spec.name!r}"
        tex = ctx.assets.resolve(m.texture, what)
        check_texture(tex, what)
    return Appearance(
        color_rgba=rgba,  # type: ignore[arg-type]
        texture=tex,
        metallic=value(m.metallic),
        roughness=value(m.roughness),
    )


def _primitive_body(
    spec: ObjectBase, ctx: BuildContext, collision: int, mesh: trimesh.Trimesh, key: str
) -> Built:
    c = ctx.client
    mass = 0.0 if spec.static else value(spec.mass)
    q = pose_quat_wxyz(spec.pose)
    appearance = _appearance(spec, ctx, default_mesh_visuals=False)
    visual = -1
    if ctx.pybullet_visuals:
        visual = c.createVisualShape(
            pb.GEOM_MESH,
            vertices=mesh.vertices.tolist(),
            indices=mesh.faces.reshape(-1).tolist(),
            rgbaColor=list(appearance.color_rgba),
        )
    body = c.createMultiBody(
        baseMass=mass,
        baseCollisionShapeIndex=collision,
        baseVisualShapeIndex=visual,
        basePosition=vec(spec.pose.position).tolist(),
        baseOrientation=wxyz_to_xyzw(q).tolist(),
    )
    if body < 0:
        raise SimulationError(f"object {spec.name!r}: pybullet could not create the body")
    part = VisualPart(
        instance_id=ctx.instance_id,
        link_index=-1,
        meshes=(mesh,),
        local_pose=np.eye(4),
        appearance=appearance,
        key=key,
    )
    return Built(body, [part])


@singledispatch
def build(spec: ObjectBase, ctx: BuildContext) -> Built:
    raise NotImplementedError(f"no builder for object kind {type(spec).__name__}")


@build.register
def _(spec: BoxObject, ctx: BuildContext) -> Built:
    size = vec(spec.size)
    col = ctx.client.createCollisionShape(pb.GEOM_BOX, halfExtents=(size / 2).tolist())
    return _primitive_body(spec, ctx, col, box_mesh(size), geometry_key("box", *size))


@build.register
def _(spec: SphereObject, ctx: BuildContext) -> Built:
    r = value(spec.radius)
    col = ctx.client.createCollisionShape(pb.GEOM_SPHERE, radius=r)
    return _primitive_body(spec, ctx, col, sphere_mesh(r), geometry_key("sphere", r))


@build.register
def _(spec: CylinderObject, ctx: BuildContext) -> Built:
    r, h = value(spec.radius), value(spec.length)
    col = ctx.client.createCollisionShape(pb.GEOM_CYLINDER, radius=r, height=h)
    return _primitive_body(spec, ctx, col, cylinder_mesh(r, h), geometry_key("cyl", r, h))


@build.register
def _(spec: CapsuleObject, ctx: BuildContext) -> Built:
    r, h = value(spec.radius), value(spec.length)
    col = ctx.client.createCollisionShape(pb.GEOM_CAPSULE, radius=r, height=h)
    return _primitive_body(spec, ctx, col, capsule_mesh(r, h), geometry_key("capsule", r, h))


@build.register
def _(spec: PlaneObject, ctx: BuildContext) -> Built:
    sx, sy = value(spec.size[0]), value(spec.size[1])
    col = ctx.client.createCollisionShape(pb.GEOM_PLANE, planeNormal=[0, 0, 1])
    return _primitive_body(spec, ctx, col, plane_mesh(sx, sy), geometry_key("plane", sx, sy))


@build.register
def _(spec: MeshObject, ctx: BuildContext) -> Built:
    path = ctx.assets.resolve(spec.file, f"mesh of object {spec.name!r}")
    scale = np.broadcast_to(
        vec(spec.scale) if isinstance(spec.scale, tuple) else value(spec.scale), (3,)
    )
    meshes = _load(ctx, path, scale, spec.name)
    combined = trimesh.util.concatenate(
        [trimesh.Trimesh(m.vertices, m.faces, process=False) for m in meshes]
    )
    col = _mesh_collision(spec, ctx, combined, path)
    if col < 0:
        raise AssetError(f"object {spec.name!r}: pybullet rejected the collision shape of {path}")
    c = ctx.client
    q = pose_quat_wxyz(spec.pose)
    body = c.createMultiBody(
        baseMass=0.0 if spec.static else value(spec.mass),
        baseCollisionShapeIndex=col,
        baseVisualShapeIndex=-1,
        basePosition=vec(spec.pose.position).tolist(),
        baseOrientation=wxyz_to_xyzw(q).tolist(),
    )
    part = VisualPart(
        instance_id=ctx.instance_id,
        link_index=-1,
        meshes=meshes,
        local_pose=np.eye(4),
        appearance=_appearance(spec, ctx, default_mesh_visuals=True),
        key=geometry_key("mesh", str(path), *scale),
    )
    return Built(body, [part])


def _load(ctx: BuildContext, path: Path, scale: Any, name: str) -> tuple[trimesh.Trimesh, ...]:
    """The meshes of a file; a broken file is an AssetError naming the object."""
    try:
        return ctx.meshes.load(path, scale)
    except AssetError as e:
        raise AssetError(f"object {name!r}: {e}") from None


def _mesh_collision(spec: MeshObject, ctx: BuildContext, mesh: Any, path: Path) -> int:
    c = ctx.client
    if spec.collision == "mesh":
        return int(
            c.createCollisionShape(
                pb.GEOM_MESH,
                vertices=mesh.vertices.tolist(),
                indices=mesh.faces.reshape(-1).tolist(),
                flags=pb.GEOM_FORCE_CONCAVE_TRIMESH,
            )
        )
    if spec.collision == "convex_hull":
        hull = mesh.convex_hull
        return int(c.createCollisionShape(pb.GEOM_MESH, vertices=hull.vertices.tolist()))
    return int(c.createCollisionShape(pb.GEOM_MESH, fileName=str(_vhacd(mesh))))


def _vhacd(mesh: trimesh.Trimesh) -> Path:
    """Convex decomposition with pybullet's V-HACD, cached by mesh content."""
    digest = hashlib.sha1(mesh.vertices.tobytes() + mesh.faces.tobytes()).hexdigest()[:20]
    cache = Path(os.environ.get("SIMGEN_CACHE", Path.home() / ".cache" / "simgen")) / "vhacd"
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"{digest}.obj"
    if out.is_file():
        return out
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.obj"
        mesh.export(str(src))
        part = Path(tmp) / "out.obj"
        from simgen.sim.quiet import quiet_c_output

        with quiet_c_output():  # V-HACD prints its progress on stdout
            pb.vhacd(str(src), str(part), str(Path(tmp) / "log.txt"), resolution=100_000)
        if not part.is_file():
            raise AssetError("convex decomposition (V-HACD) failed for a mesh")
        os.replace(part, out)
    return out


@build.register
def _(spec: UrdfObject, ctx: BuildContext) -> Built:
    path = ctx.assets.resolve(spec.asset, f"asset of object {spec.name!r}")
    c = ctx.client
    q = pose_quat_wxyz(spec.pose)
    position = vec(spec.pose.position)
    check_urdf(path, ctx.assets, f"object {spec.name!r}: URDF")
    try:
        if path.suffix.lower() == ".sdf":
            body = _load_sdf(spec, ctx, path, position, q)
        else:
            body = c.loadURDF(
                str(path),
                basePosition=position.tolist(),
                baseOrientation=wxyz_to_xyzw(q).tolist(),
                useFixedBase=bool(spec.static),
                globalScaling=value(spec.scale),
                flags=0 if ctx.visuals else pb.URDF_IGNORE_VISUAL_SHAPES,
            )
    except pb.error as e:
        raise AssetError(f"object {spec.name!r}: pybullet cannot load {path}: {e}") from None
    if spec.mass is not None and not spec.static:
        c.changeDynamics(body, -1, mass=value(spec.mass))
    return Built(body, _urdf_parts(spec, ctx, body, path) if ctx.visuals else [])


def _load_sdf(
    spec: UrdfObject, ctx: BuildContext, path: Path, position: np.ndarray, q: np.ndarray
) -> int:
    """An SDF file with exactly one model, placed so its base link frame sits at the pose."""
    from simgen.geometry import pose_matrix, xyzw_to_wxyz

    c = ctx.client
    bodies = c.loadSDF(str(path), globalScaling=value(spec.scale))
    if len(bodies) != 1:
        for b in bodies:
            c.removeBody(b)
        raise AssetError(
            f"object {spec.name!r}: {path} holds {len(bodies)} models; simgen needs one"
        )
    body = int(bodies[0])
    dyn = c.getDynamicsInfo(body, -1)
    com = pose_matrix(position, q) @ pose_matrix(dyn[3], xyzw_to_wxyz(dyn[4]))
    from simgen.geometry import matrix_to_quat

    c.resetBasePositionAndOrientation(
        body, com[:3, 3].tolist(), wxyz_to_xyzw(matrix_to_quat(com[:3, :3])).tolist()
    )
    if spec.static:
        c.changeDynamics(body, -1, mass=0.0)
    return body


_PB_GEOM = {
    pb.GEOM_BOX: "box",
    pb.GEOM_SPHERE: "sphere",
    pb.GEOM_CYLINDER: "cylinder",
    pb.GEOM_CAPSULE: "capsule",
    pb.GEOM_MESH: "mesh",
    pb.GEOM_PLANE: "plane",
}


def _urdf_parts(spec: UrdfObject, ctx: BuildContext, body: int, urdf: Path) -> list[VisualPart]:
    from simgen.geometry import pose_matrix, xyzw_to_wxyz

    parts = []
    override = spec.material is not None
    for row in ctx.client.getVisualShapeData(body):
        link, gtype, dims, fname, pos, orn, rgba = (
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            row[6],
            row[7],
        )
        kind = _PB_GEOM.get(gtype)
        if kind == "mesh":
            file = Path(fname.decode() if isinstance(fname, bytes) else fname)
            if not file.is_absolute():
                file = urdf.parent / file
            what = f"mesh of URDF {urdf} (object {spec.name!r})"
            real = ctx.assets.resolve(str(file.resolve()), what)
            meshes = _load(ctx, real, dims, spec.name)
            key = geometry_key("mesh", str(real), *dims)
        elif kind == "box":
            meshes, key = (box_mesh(np.array(dims)),), geometry_key("box", *dims)
        elif kind == "sphere":
            meshes, key = (sphere_mesh(dims[0]),), geometry_key("sphere", dims[0])
        elif kind in ("cylinder", "capsule"):
            length, radius = dims[0], dims[1]
            make = cylinder_mesh if kind == "cylinder" else capsule_mesh
            meshes, key = (make(radius, length),), geometry_key(kind, radius, length)
        else:
            continue  # planes and unknown geometry types have no visual here
        app = (
            _appearance(spec, ctx, default_mesh_visuals=False)
            if override
            else Appearance(color_rgba=tuple(rgba), use_mesh_visuals=kind == "mesh")  # type: ignore[arg-type]
        )
        parts.append(
            VisualPart(
                instance_id=ctx.instance_id,
                link_index=int(link),
                meshes=meshes,
                local_pose=pose_matrix(pos, xyzw_to_wxyz(orn)),
                appearance=app,
                key=key,
            )
        )
    return parts
