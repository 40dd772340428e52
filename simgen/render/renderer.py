"""Camera rendering with pyrender: RGB, depth and instance ids from the same geometry.

Two passes per camera frame (one when RGB is not multisampled, see :mod:`simgen.render.gl`):

1. a shaded pass (PBR, optional MSAA) gives RGB;
2. a flat label pass without multisampling gives part ids (hence instance ids), depth and
   optionally normals from the same rasterization, so every labeled pixel has exactly one object
   and a depth that belongs to it.

:meth:`Renderer.render_alone` renders single objects without occluders (amodal masks).

The renderer is an engine: it owns one GL context (one ``OffscreenRenderer``) for its lifetime
and keeps meshes uploaded across episodes (keyed by geometry and appearance).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from simgen.errors import RenderBackendError
from simgen.geometry import CV_TO_GL
from simgen.render.platform import import_pyrender
from simgen.scene.lights import AmbientLight, DirectionalLight, PointLight, SpotLight
from simgen.scene.schema import Scene
from simgen.scene.types import value, vec
from simgen.sim.visuals import VisualPart

#: Memory the renderer may keep for meshes not used in the current episode (see
#: Renderer._trim_mesh_cache).
MESH_CACHE_BYTES = 8 << 20


@dataclass(frozen=True)
class CameraImages:
    """One camera frame. ``depth_m`` is z along the optical axis, 0.0 where nothing was hit."""

    rgb: np.ndarray | None  # (H, W, 3) uint8
    depth_m: np.ndarray  # (H, W) float32
    instance: np.ndarray  # (H, W) uint16, 0 = background
    part: np.ndarray | None = None  # (H, W) uint32, 1 + index into the loaded parts, 0 = none
    normals_c: np.ndarray | None = None  # (H, W, 3) float32 unit normals, OpenCV camera frame


def _encode_id(i: int) -> tuple[int, int, int]:
    """An instance id as the segmentation color pyrender passes to the label shader."""
    return (i & 0xFF, (i >> 8) & 0xFF, (i >> 16) & 0xFF)


def _light_pose(direction: np.ndarray, position: np.ndarray | None = None) -> np.ndarray:
    """Pose whose -z axis points along ``direction`` (pyrender lights shine along -z)."""
    d = direction / np.linalg.norm(direction)
    z = -d
    helper = np.array([0.0, 0.0, 1.0]) if abs(z[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    t = np.eye(4)
    t[:3, 0], t[:3, 1], t[:3, 2] = x, y, z
    if position is not None:
        t[:3, 3] = position
    return t


class Renderer:
    """Headless pyrender renderer. Use as a context manager or call :meth:`close`."""

    def __init__(self, gl: str | None = None, *, one_pass: bool = True) -> None:
        self.one_pass = one_pass  # RGB and labels in one pass when not multisampling
        self.pyrender = import_pyrender(gl)
        self._offscreen: Any = None
        # key -> (pyrender mesh, bytes, episode it was last used in); see _trim_mesh_cache
        self._mesh_cache: OrderedDict[tuple[Any, ...], tuple[Any, int, int]] = OrderedDict()
        self._episode = 0
        self._texture_cache: dict[str, Any] = {}  # file path or image digest -> texture
        self.scene: Any = None
        self._part_nodes: list[Any] = []
        self._seg_map: dict[Any, tuple[int, int, int]] = {}
        self._light_nodes: list[tuple[Any, Any]] = []
        self.gl_info: dict[str, str] = {}

    # -- lifecycle ------------------------------------------------------------------------------

    def _gl(self, width: int, height: int, samples: int | None) -> Any:
        """Our GL renderer (see :mod:`simgen.render.gl`), current and sized for this camera."""
        if self._offscreen is None:
            from OpenGL import GL

            from simgen.render.gl import GLContext

            try:
                ctx = GLContext(width, height, samples or 1)
            except RenderBackendError:
                raise
            except Exception as e:
                raise RenderBackendError(f"cannot create an OpenGL context: {e}") from None
            self.gl_info = {
                "platform": os.environ.get("PYOPENGL_PLATFORM", ""),
                "renderer": _gl_string(GL, GL.GL_RENDERER),
                "version": _gl_string(GL, GL.GL_VERSION),
            }
            self._offscreen = ctx
        off = self._offscreen
        off._platform.make_current()
        gl = off._renderer
        gl.viewport_width, gl.viewport_height = width, height
        if samples is not None:
            gl.set_samples(samples)
        return gl

    def close(self) -> None:
        if self._offscreen is not None:
            self._offscreen.delete()
            self._offscreen = None
        self._mesh_cache.clear()
        self._texture_cache.clear()
        self.scene = None

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scene ----------------------------------------------------------------------------------

    def load(self, scene: Scene, parts: list[VisualPart]) -> None:
        """Build the render scene for one episode (meshes stay cached across episodes).
        Lighting and wet ground come from the scene's lighting and weather blocks
        (docs/weather.md)."""
        from simgen.effects.state import render_setup

        pr = self.pyrender
        bg, lights, parts = render_setup(scene, parts)
        ambient = np.zeros(3)
        for light in lights:
            if isinstance(light, AmbientLight):
                ambient += value(light.intensity) * np.array([value(c) for c in light.color[:3]])
        self.scene = pr.Scene(bg_color=[*bg[:3], 1.0], ambient_light=ambient)
        self._episode += 1
        self._part_nodes = []
        self._seg_map = {}
        self._label_ids: dict[Any, float] = {}
        self._nodes_of: dict[int, list[Any]] = {}
        # the label pass writes part ids (1-based); parts map to instances through this table
        self.part_instance = np.zeros(len(parts) + 1, np.uint16)
        for i, part in enumerate(parts):
            node = self.scene.add(self._mesh(part), pose=np.eye(4))
            self._part_nodes.append(node)
            self._seg_map[node] = _encode_id(i + 1)
            self._label_ids[node] = float(i + 1)
            self._nodes_of.setdefault(part.instance_id, []).append(node)
            self.part_instance[i + 1] = part.instance_id
        self._light_nodes = []
        for light in lights:
            made = self._light(light)
            if made is not None:
                self._light_nodes.append((light, self.scene.add(made[0], pose=made[1])))
        self._camera_node = None
        self._hidden: set[int] = set()
        self._trim_mesh_cache()

    def set_lights(self, lights: list[Any], background: Any) -> None:
        """New colors and intensities of the scene's lights (same list, same order as loaded)
        and a new background color: for scenario light changes and per-frame values."""
        ambient = np.zeros(3)
        others = []
        for light in lights:
            if isinstance(light, AmbientLight):
                ambient += value(light.intensity) * np.array([value(c) for c in light.color[:3]])
            else:
                others.append(light)
        self.scene.ambient_light = ambient
        for light, (_, node) in zip(others, self._light_nodes, strict=True):
            node.light.color = np.array([value(c) for c in light.color[:3]])
            node.light.intensity = value(light.intensity)
        bg = [value(c) for c in background]
        self.scene.bg_color = np.array([*bg[:3], 1.0])

    def _light(self, light: Any) -> tuple[Any, np.ndarray] | None:
        pr = self.pyrender
        color = np.array([value(c) for c in light.color[:3]])
        if isinstance(light, DirectionalLight):
            return pr.DirectionalLight(color=color, intensity=value(light.intensity)), _light_pose(
                vec(light.direction)
            )
        if isinstance(light, PointLight):
            rng = None if light.range is None else value(light.range)
            t = np.eye(4)
            t[:3, 3] = vec(light.position)
            return pr.PointLight(color=color, intensity=value(light.intensity), range=rng), t
        if isinstance(light, SpotLight):
            rng = None if light.range is None else value(light.range)
            spot = pr.SpotLight(
                color=color,
                intensity=value(light.intensity),
                range=rng,
                innerConeAngle=np.radians(value(light.inner_cone_deg)),
                outerConeAngle=np.radians(value(light.outer_cone_deg)),
            )
            return spot, _light_pose(vec(light.direction), vec(light.position))
        return None

    def update(
        self,
        part_poses_w: np.ndarray,
        light_poses_w: dict[int, np.ndarray] | None = None,
        visible: np.ndarray | None = None,
    ) -> None:
        """Move every visual part (and attached lights) to its pose at the current time.
        ``visible`` (P,) bool hides the parts of objects not in the world (default: all shown)."""
        for i, (node, pose) in enumerate(zip(self._part_nodes, part_poses_w, strict=True)):
            show = visible is None or bool(visible[i])
            if not show:
                if i not in self._hidden:
                    self.scene.remove_node(node)
                    self._hidden.add(i)
                continue
            if i in self._hidden:
                self.scene.add_node(node)
                self._hidden.discard(i)
            self.scene.set_pose(node, pose)
        for i, pose in (light_poses_w or {}).items():
            self.scene.set_pose(self._light_nodes[i][1], pose)

    @property
    def light_specs(self) -> list[Any]:
        return [spec for spec, _ in self._light_nodes]

    # -- meshes ---------------------------------------------------------------------------------

    def _mesh(self, part: VisualPart) -> Any:
        key = (part.key, part.appearance)
        hit = self._mesh_cache.pop(key, None)
        mesh = self._make_mesh(part) if hit is None else hit[0]
        size = _mesh_bytes(mesh) if hit is None else hit[1]
        self._mesh_cache[key] = (mesh, size, self._episode)  # now the most recently used
        return mesh

    def _trim_mesh_cache(self) -> None:
        """Keep every mesh of this episode; of the others, the most recently used up to
        ``MESH_CACHE_BYTES``. Geometry sampled anew each episode (a random size or scale) so
        never piles up, while the meshes of a fixed scene stay uploaded. Evicted meshes leave
        the GL context at the next render (pyrender deletes buffers of meshes not in the scene).
        """
        kept = sum(size for _, size, _ in self._mesh_cache.values())
        for key in list(self._mesh_cache):  # least recently used first
            if kept <= MESH_CACHE_BYTES:
                break
            _, size, used = self._mesh_cache[key]
            if used != self._episode:
                del self._mesh_cache[key]
                kept -= size

    def _make_mesh(self, part: VisualPart) -> Any:
        pr = self.pyrender
        app = part.appearance
        smooth = not part.key.startswith(("box", "plane"))
        prims = []
        for m in part.meshes:
            image = getattr(getattr(m.visual, "material", None), "image", None)
            has_uv = getattr(m.visual, "uv", None) is not None
            if app.use_mesh_visuals and (image is not None or np.allclose(app.color_rgba, 1.0)):
                made = pr.Mesh.from_trimesh(m, smooth=smooth and image is None).primitives
                for prim in made:
                    self._share_texture(prim.material)
                prims.extend(made)
                continue
            tex = None
            if app.texture is not None and has_uv:
                tex = self._texture(str(app.texture))
            material = pr.MetallicRoughnessMaterial(
                baseColorFactor=list(app.color_rgba),
                metallicFactor=app.metallic,
                roughnessFactor=app.roughness,
                baseColorTexture=tex,
                doubleSided=part.double_sided or part.key.startswith("plane"),
            )
            plain = m.copy()
            if tex is None:
                plain.visual = _plain_visual(m)
            prims.extend(pr.Mesh.from_trimesh(plain, material=material, smooth=smooth).primitives)
        return pr.Mesh(primitives=prims)

    def _share_texture(self, material: Any) -> None:
        """Use one texture object per distinct image, so that meshes of the same file (say,
        at another scale) share it: it is uploaded once and stays in the GL context."""
        tex = getattr(material, "baseColorTexture", None)
        if tex is None or tex.source is None:
            return
        import hashlib

        src = np.ascontiguousarray(tex.source)
        key = f"image:{src.shape}:{hashlib.sha1(src.tobytes()).hexdigest()}"
        shared = self._texture_cache.setdefault(key, tex)
        if shared is not tex:
            material.baseColorTexture = shared

    def _texture(self, path: str) -> Any:
        tex = self._texture_cache.get(path)
        if tex is None:
            import cv2

            from simgen.errors import AssetError

            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                raise AssetError(f"texture {path}: not a readable image")
            tex = self.pyrender.Texture(source=img[..., ::-1].copy(), source_channels="RGB")
            self._texture_cache[path] = tex
        return tex

    # -- rendering ------------------------------------------------------------------------------

    def render(
        self,
        k: np.ndarray,
        resolution: tuple[int, int],
        near: float,
        far: float,
        pose_w_c: np.ndarray,
        *,
        rgb: bool = True,
        antialias: int = 1,
        normals: bool = False,
    ) -> CameraImages:
        """Render one camera. ``k`` in OpenCV convention; ``pose_w_c`` is camera-to-world (OpenCV).
        ``normals``: also the camera-frame surface normals of the label pass."""
        pr = self.pyrender
        w, h = resolution
        self._set_camera(k, near, far, pose_w_c)
        flags = pr.RenderFlags
        color = None
        gl = self._gl(w, h, antialias)
        try:
            if rgb and antialias == 1 and self.one_pass:
                # RGB and labels from the same single-sampled rasterization
                color, ids, depth, nrm = gl.render_labeled(self.scene, self._label_ids, normals)
            else:
                if rgb:
                    color, _ = gl.render(self.scene, flags.OFFSCREEN)
                ids, depth, nrm = gl.render_labels(self.scene, self._seg_map, normals)
        finally:
            self._offscreen._platform.make_uncurrent()
        return CameraImages(
            rgb=color, depth_m=depth, instance=self.part_instance[ids], part=ids, normals_c=nrm
        )

    def _set_camera(self, k: np.ndarray, near: float, far: float, pose_w_c: np.ndarray) -> None:
        # OpenCV puts pixel centers at integer coordinates, OpenGL at half-integers.
        cam = self.pyrender.IntrinsicsCamera(
            fx=k[0, 0], fy=k[1, 1], cx=k[0, 2] + 0.5, cy=k[1, 2] + 0.5, znear=near, zfar=far
        )
        pose_gl = pose_w_c @ CV_TO_GL
        if self._camera_node is None:
            self._camera_node = self.scene.add(cam, pose=pose_gl)
        else:
            self._camera_node.camera = cam
            self.scene.set_pose(self._camera_node, pose_gl)
        self.scene.main_camera_node = self._camera_node

    def render_alone(
        self,
        k: np.ndarray,
        near: float,
        far: float,
        pose_w_c: np.ndarray,
        regions: dict[int, tuple[int, int, int, int]],
    ) -> dict[int, np.ndarray]:
        """Masks of single objects rendered with nothing else in the scene (amodal masks).

        ``regions`` maps instance ids to pixel windows ``(u0, v0, u1, v1)`` (half-open, in the
        camera's pixel grid; they may extend beyond the image). Each object is rasterized
        exactly as in the full frame, but only inside its window; the result is a boolean
        ``(v1 - v0, u1 - u0)`` mask per instance. Poses are those of the last :meth:`update`.

        The windows are packed side by side into one framebuffer (an atlas) and drawn in one
        pass, each object into its own window with the frame's projection shifted by the
        window's corner (integer offsets: the same pixel centers as the frame)."""
        out: dict[int, np.ndarray] = {}
        jobs = []
        for inst, (u0, v0, u1, v1) in regions.items():
            nodes = self._nodes_of.get(inst, [])
            if not nodes or u1 <= u0 or v1 <= v0:
                out[inst] = np.zeros((max(v1 - v0, 0), max(u1 - u0, 0)), bool)
            else:
                jobs.append((inst, nodes, (u0, v0, u1, v1)))
        if not jobs:
            return out
        self._set_camera(k, near, far, pose_w_c)  # the view; each window has its projection
        gl = self._gl(1, 1, None)  # sized per atlas below
        try:
            sizes = [(u1 - u0, v1 - v0) for _, _, (u0, v0, u1, v1) in jobs]
            for members, corners, (aw, ah) in pack_windows(sizes, _max_framebuffer_side()):
                places: dict[Any, tuple[tuple[int, int, int, int], np.ndarray]] = {}
                seg: dict[Any, Any] = {}
                for j, (x, y) in zip(members, corners, strict=True):
                    _, nodes, (u0, v0, u1, v1) = jobs[j]
                    w, h = u1 - u0, v1 - v0
                    cam = self.pyrender.IntrinsicsCamera(
                        fx=k[0, 0], fy=k[1, 1], cx=k[0, 2] + 0.5 - u0, cy=k[1, 2] + 0.5 - v0,
                        znear=near, zfar=far,
                    )  # fmt: skip
                    proj = cam.get_projection_matrix(w, h)
                    for n in nodes:  # GL rows count from the bottom of the atlas
                        places[n] = ((x, ah - y - h, w, h), proj)
                        seg[n] = self._seg_map[n]
                gl.viewport_width, gl.viewport_height = aw, ah
                ids = gl.render_ids(self.scene, seg, places)
                for j, (x, y) in zip(members, corners, strict=True):
                    inst, _, (u0, v0, u1, v1) = jobs[j]
                    out[inst] = ids[y : y + v1 - v0, x : x + u1 - u0] > 0
        finally:
            self._offscreen._platform.make_uncurrent()
        return out


def pack_windows(
    sizes: list[tuple[int, int]], limit: int
) -> list[tuple[list[int], list[tuple[int, int]], tuple[int, int]]]:
    """Shelf packing of windows ``(w, h)`` into atlases no larger than ``limit`` a side (a
    window larger than that gets an atlas of its own size). Returns, per atlas, the indices
    of its windows, their top-left corners (x right, y down) and the atlas size: rows of
    windows of decreasing height, about as wide as the atlas is tall."""
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i][1], i))
    area = sum(w * h for w, h in sizes)
    width = min(max(max(w for w, _ in sizes), int(np.ceil(np.sqrt(1.2 * area)))), limit)
    atlases: list[tuple[list[int], list[tuple[int, int]], tuple[int, int]]] = []
    members: list[int] = []
    corners: list[tuple[int, int]] = []
    x = y = shelf = used_w = 0
    for i in order:
        w, h = sizes[i]
        if x + w > width and x > 0:  # next shelf
            x, y, shelf = 0, y + shelf, 0
        if y + h > limit and members:  # next atlas
            atlases.append((members, corners, (used_w, y + shelf)))
            members, corners, x, y, shelf, used_w = [], [], 0, 0, 0, 0
        members.append(i)
        corners.append((x, y))
        x += w
        used_w, shelf = max(used_w, x), max(shelf, h)
    atlases.append((members, corners, (used_w, y + shelf)))
    return atlases


def _max_framebuffer_side() -> int:
    """The largest framebuffer side the current GL context supports (at most 8192: atlases
    larger than that only waste memory)."""
    from OpenGL import GL

    return int(min(GL.glGetIntegerv(GL.GL_MAX_RENDERBUFFER_SIZE), 8192))


def _mesh_bytes(mesh: Any) -> int:
    """Approximate memory of a pyrender mesh: its vertex and index arrays (textures are shared
    between meshes and kept apart, one per image)."""
    total = 0
    for prim in mesh.primitives:
        for name in ("positions", "normals", "tangents", "texcoord_0", "color_0", "indices"):
            arr = getattr(prim, name, None)
            total += int(getattr(arr, "nbytes", 0))
    return total


def _gl_string(GL: Any, name: int) -> str:
    try:
        v = GL.glGetString(name)
        return v.decode() if isinstance(v, bytes) else str(v)
    except Exception:
        return "unknown"


def _plain_visual(m: Any) -> Any:
    import trimesh

    uv = getattr(m.visual, "uv", None)
    return trimesh.visual.TextureVisuals(uv=uv) if uv is not None else trimesh.visual.ColorVisuals()
