"""pyrender's GL renderer, adapted for exact labels and a configurable multisample count.

pyrender 0.1.45 renders every pass into one 4x multisampled RGBA8 framebuffer and recovers depth
from the 24-bit depth buffer. simgen changes three things, all in this module:

* the shaded RGB pass uses ``samples`` samples (1 = no multisampling; on a software rasterizer
  multisampling costs about 40% of the frame);
* the label pass renders into its own single-sampled float framebuffer with simgen's shaders
  (``shaders/label.*``): each pixel stores the id of the visual part (1-based; the caller maps
  parts to instances) and the camera-z depth interpolated in float32 from the same
  rasterization, so ids and depth always agree and depth keeps ~1e-7 relative precision instead
  of the depth buffer's z^2-growing error; on request a second float target holds the surface
  normal in the camera frame;
* all passes render to framebuffers, also on OSMesa (pyrender reads its window buffer there);
* :meth:`render_ids` renders chosen nodes alone into a viewport of any size (no occluders: the
  amodal masks), reading back only the id channel; with ``places`` each node is drawn into its
  own region of that viewport with its own projection (an atlas: every object's window in one
  pass and one read-back).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from simgen.render.platform import import_pyrender

SHADER_DIR = Path(__file__).resolve().parent / "shaders"
_OVERRIDES = {"segmentation.vert": "label.vert", "segmentation.frag": "label.frag"}


def labeled_mesh_frag() -> str:
    """pyrender's PBR fragment shader with two more outputs: (part id, camera-z depth) and the
    surface normal in the OpenCV camera frame (written only where a third target is bound).

    Written once per pyrender version into simgen's cache folder (shader programs are loaded
    from files). Used when one pass produces RGB and labels together (``antialias: 1``).
    """
    import hashlib
    import os

    import pyrender

    src_path = Path(pyrender.__file__).parent / "shaders" / "mesh.frag"
    src = src_path.read_text()
    head = "out vec4 frag_color;"
    tail = src.rstrip()
    if head not in src or not tail.endswith("}"):
        raise RuntimeError("unexpected pyrender mesh.frag; cannot add the label output")
    patched = src.replace(
        head,
        "layout(location = 0) out vec4 frag_color;\n"
        "layout(location = 1) out vec4 frag_label;\n"
        "layout(location = 2) out vec4 simgen_normal;\n"
        "uniform float simgen_id;\n"
        "uniform mat4 V;\n",
    ).rstrip()[:-1] + (
        "    // simgen: part id and camera-z depth, alpha 1 so blending leaves them exact\n"
        "    frag_label = vec4(simgen_id, -(V * vec4(frag_position, 1.0)).z, 0.0, 1.0);\n"
        "    // simgen: normal facing the camera (as in shaders/label.frag), OpenCV camera frame\n"
        "    vec3 simgen_g = normalize(cross(dFdx(frag_position), dFdy(frag_position)));\n"
        "#ifdef NORMAL_LOC\n"
        "    vec3 simgen_s = normalize(frag_normal);\n"
        "    simgen_g = dot(simgen_s, simgen_g) < 0.0 ? -simgen_s : simgen_s;\n"
        "#endif\n"
        "    vec3 simgen_v = mat3(V) * simgen_g;\n"
        "    simgen_normal = vec4(simgen_v.x, -simgen_v.y, -simgen_v.z, 1.0);\n}\n"
    )
    digest = hashlib.sha1(patched.encode()).hexdigest()[:12]
    cache = Path(os.environ.get("SIMGEN_CACHE", Path.home() / ".cache" / "simgen")) / "shaders"
    out = cache / f"mesh_label_{digest}.frag"
    if not out.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(patched)
        os.replace(tmp, out)
    return str(out)


def make_gl_renderer(width: int, height: int, samples: int) -> Any:
    """A ``pyrender.Renderer`` with simgen's framebuffers and label shaders."""
    pyrender = import_pyrender()
    from OpenGL import GL
    from pyrender.shader_program import ShaderProgramCache

    labeled_frag = labeled_mesh_frag()
    att = [GL.GL_COLOR_ATTACHMENT0, GL.GL_COLOR_ATTACHMENT1, GL.GL_COLOR_ATTACHMENT2]

    class LabelShaderCache(ShaderProgramCache):  # type: ignore[misc]
        labeled = False  # set while rendering RGB and labels in one pass

        def get_program(
            self,
            vertex_shader: str,
            fragment_shader: str,
            geometry_shader: Any = None,
            defines: Any = None,
        ) -> Any:
            vs = (
                str(SHADER_DIR / _OVERRIDES[vertex_shader])
                if vertex_shader in _OVERRIDES
                else vertex_shader
            )
            fs = (
                str(SHADER_DIR / _OVERRIDES[fragment_shader])
                if fragment_shader in _OVERRIDES
                else fragment_shader
            )
            if self.labeled and fragment_shader == "mesh.frag":
                fs = labeled_frag
            return super().get_program(vs, fs, geometry_shader, defines)

    class SimgenRenderer(pyrender.Renderer):  # type: ignore[name-defined,misc]
        def __init__(self, w: int, h: int, n: int) -> None:
            super().__init__(w, h)
            self._program_cache = LabelShaderCache()
            self.samples = n
            self._fbs: dict[str, tuple[Any, ...]] = {}
            self.label_ids: dict[Any, float] = {}  # node -> part id, for the one-pass mode
            self.one_pass = False
            self.normals = False  # also render and read the camera-frame normals
            self._only: list[Any] | None = None  # render_ids: draw only these nodes
            # render_ids with places: node -> ((x, y, w, h) GL viewport, 4x4 projection)
            self._places: dict[Any, tuple[tuple[int, int, int, int], np.ndarray]] | None = None
            self._node: Any = None  # the node being drawn (atlas mode)

        def render_labeled(self, scene: Any, label_ids: dict[Any, float], normals: bool) -> Any:
            """RGB, part ids, depth (and normals) from one shaded pass (single-sampled)."""
            self.label_ids = label_ids
            self.one_pass = True
            self.normals = normals
            self._program_cache.labeled = True
            try:
                return self.render(scene, pyrender.RenderFlags.OFFSCREEN)
            finally:
                self.one_pass = False
                self.normals = False
                self._program_cache.labeled = False

        def render_labels(self, scene: Any, seg_map: dict[Any, Any], normals: bool) -> Any:
            """Part ids, depth (and normals) from the label pass."""
            self.normals = normals
            try:
                flags = pyrender.RenderFlags.SEG | pyrender.RenderFlags.OFFSCREEN
                return self.render(scene, flags, seg_map)
            finally:
                self.normals = False

        def render_ids(
            self,
            scene: Any,
            seg_map: dict[Any, Any],
            places: dict[Any, tuple[tuple[int, int, int, int], np.ndarray]] | None = None,
        ) -> np.ndarray:
            """(h, w) float32 part ids of only the nodes in ``seg_map``, with no occluders, in
            the current viewport (which may be any size: a grow-only framebuffer holds it).
            ``places``: each node drawn only into its own viewport ``(x, y, w, h)`` (GL window
            coordinates, inside the current one) with its own projection matrix."""
            self._only = list(seg_map)
            self._places = places
            try:
                flags = pyrender.RenderFlags.SEG | pyrender.RenderFlags.OFFSCREEN
                return self.render(scene, flags, seg_map)  # type: ignore[no-any-return]
            finally:
                self._only = None
                self._places = None
                self._node = None

        def _walk(self, nodes: list[Any]) -> Any:
            for node in nodes:
                self._node = node  # pyrender draws each node's primitives before the next
                yield node

        def _bind_and_draw_primitive(
            self, primitive: Any, pose: Any, program: Any, flags: Any
        ) -> None:
            if self._places is not None:
                (x, y, w, h), proj = self._places[self._node]
                GL.glViewport(x, y, w, h)
                program.set_uniform("P", proj)
            super()._bind_and_draw_primitive(primitive, pose, program, flags)

        def _bind_lighting(self, scene: Any, program: Any, node: Any, flags: Any) -> None:
            super()._bind_lighting(scene, program, node, flags)
            if self.one_pass:
                program.set_uniform("simgen_id", float(self.label_ids.get(node, 0.0)))

        def _sorted_mesh_nodes(self, scene: Any) -> Any:
            """Opaque meshes front to back (pyrender draws them back to front), so the depth
            test rejects hidden fragments before they are shaded; transparent ones last, back
            to front. Key: the distance to the mesh's far side, so a ground plane that spans
            the view is drawn after the objects standing on it."""
            if self._only is not None:
                return self._only if self._places is None else self._walk(self._only)
            if self.one_pass:  # after pyrender's clear, which must not touch the label buffers
                k = 3 if self.normals else 2
                GL.glDrawBuffers(k, att[:k])
            cam = scene.get_pose(scene.main_camera_node)[:3, 3]
            solid: list[tuple[float, int, Any]] = []
            trans: list[tuple[float, int, Any]] = []
            for node in scene.mesh_nodes:
                pose = scene.get_pose(node)
                center = pose[:3, :3] @ node.mesh.centroid + pose[:3, 3]
                far = float(np.linalg.norm(center - cam)) + _radius(node.mesh)
                (trans if node.mesh.is_transparent else solid).append((far, id(node), node))
            solid.sort(key=lambda t: (t[0], t[1]))
            trans.sort(key=lambda t: (-t[0], t[1]))
            return [n for _, _, n in solid] + [n for _, _, n in trans]

        def set_samples(self, n: int) -> None:
            if n != self.samples:
                self.samples = n
                self._drop("rgb")

        def _drop(self, name: str) -> None:
            fb = self._fbs.pop(name, None)
            if fb is not None:
                GL.glDeleteFramebuffers(1, [fb[0]])
                GL.glDeleteRenderbuffers(len(fb) - 2, list(fb[1:-1]))

        def _fb(self, name: str) -> int:
            dims = (self.viewport_width, self.viewport_height)
            fb = self._fbs.get(name)
            if fb is not None and fb[-1] != dims:
                have = fb[-1]
                if name == "ids" and have[0] >= dims[0] and have[1] >= dims[1]:
                    return fb[0]  # grow-only: a smaller viewport draws into a corner
                self._drop(name)
                if name == "ids":
                    dims = (max(dims[0], have[0]), max(dims[1], have[1]))
                fb = None
            if fb is None:
                f32 = GL.GL_RGBA32F
                if name == "rgb":
                    n = self.samples if self.samples > 1 else 0
                    fb = _framebuffer(GL, GL.GL_RGBA8, dims, n)
                elif name == "resolve":
                    fb = _framebuffer(GL, GL.GL_RGBA8, dims, 0)
                elif name == "onepass":
                    fb = _framebuffer(GL, GL.GL_RGBA8, dims, 0, extra=(f32,))
                elif name == "onepass_n":
                    fb = _framebuffer(GL, GL.GL_RGBA8, dims, 0, extra=(f32, f32))
                elif name == "label_n":
                    fb = _framebuffer(GL, f32, dims, 0, extra=(f32,))
                elif name == "ids":
                    fb = _framebuffer(GL, GL.GL_R32F, dims, 0)
                else:
                    fb = _framebuffer(GL, f32, dims, 0)
                self._fbs[name] = fb
            return fb[0]

        def _target(self, flags: Any) -> str:
            if flags & pyrender.RenderFlags.SEG:
                if self._only is not None:
                    return "ids"
                return "label_n" if self.normals else "label"
            if self.one_pass:
                return "onepass_n" if self.normals else "onepass"
            return "rgb"

        def _configure_forward_pass_viewport(self, flags: Any) -> None:
            name = self._target(flags)
            GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, self._fb(name))
            w, h = self.viewport_width, self.viewport_height
            if self.one_pass:
                # clear the label buffers to 0: background, no depth, no normal; then hide them
                # from pyrender's clear (which uses the sky color); _sorted_mesh_nodes re-enables
                k = 3 if self.normals else 2
                GL.glDrawBuffers(k, att[:k])
                for i in range(1, k):
                    GL.glClearBufferfv(GL.GL_COLOR, i, np.zeros(4, np.float32))
                GL.glDrawBuffers(1, att[:1])
            elif name == "label_n":
                GL.glDrawBuffers(2, att[:2])
            elif name in ("label", "ids"):
                GL.glDrawBuffers(1, att[:1])
            if name == "ids":  # the viewport may be a corner of a larger buffer: clear only it
                GL.glEnable(GL.GL_SCISSOR_TEST)
                GL.glScissor(0, 0, w, h)
            else:
                GL.glDisable(GL.GL_SCISSOR_TEST)
            GL.glViewport(0, 0, w, h)
            GL.glEnable(GL.GL_DEPTH_TEST)
            GL.glDepthMask(GL.GL_TRUE)
            GL.glDepthFunc(GL.GL_LESS)
            GL.glDepthRange(0.0, 1.0)

        def _read_main_framebuffer(self, scene: Any, flags: Any) -> Any:
            w, h = self.viewport_width, self.viewport_height
            name = self._target(flags)
            if name == "ids":
                GL.glDisable(GL.GL_SCISSOR_TEST)
                GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self._fb("ids"))
                GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT0)
                return _read(GL, w, h, GL.GL_RED, 1)[..., 0]
            if self.one_pass:
                GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self._fb(name))
                GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT1)
                labels = _read(GL, w, h, GL.GL_RG, 2)
                normals = None
                if self.normals:
                    GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT2)
                    normals = np.ascontiguousarray(_read(GL, w, h, GL.GL_RGB, 3))
                GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT0)
                buf = GL.glReadPixels(0, 0, w, h, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE)
                rgb = np.flip(np.frombuffer(buf, np.uint8).reshape(h, w, 4), 0)[..., :3]
                return (
                    np.ascontiguousarray(rgb),
                    labels[..., 0].astype(np.uint32),
                    np.ascontiguousarray(labels[..., 1]),
                    normals,
                )
            if flags & pyrender.RenderFlags.SEG:
                GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self._fb(name))
                GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT0)
                data = _read(GL, w, h, GL.GL_RG, 2)
                normals = None
                if self.normals:
                    GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT1)
                    normals = np.ascontiguousarray(_read(GL, w, h, GL.GL_RGB, 3))
                    GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT0)
                return data[..., 0].astype(np.uint32), np.ascontiguousarray(data[..., 1]), normals
            source = self._fb("rgb")
            if self.samples > 1:
                GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, source)
                GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, self._fb("resolve"))
                GL.glBlitFramebuffer(0, 0, w, h, 0, 0, w, h, GL.GL_COLOR_BUFFER_BIT, GL.GL_NEAREST)
                source = self._fb("resolve")
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, source)
            buf = GL.glReadPixels(0, 0, w, h, GL.GL_RGB, GL.GL_UNSIGNED_BYTE)
            return np.ascontiguousarray(
                np.flip(np.frombuffer(buf, np.uint8).reshape(h, w, 3), 0)
            ), None

        def delete(self) -> None:
            for name in list(self._fbs):
                self._drop(name)
            super().delete()

    return SimgenRenderer(width, height, samples)


def _read(GL: Any, w: int, h: int, fmt: int, channels: int) -> np.ndarray:
    """(h, w, channels) float32 of the bound read buffer, row 0 at the top of the image."""
    import ctypes

    from OpenGL.raw.GL.VERSION.GL_1_0 import glReadPixels  # PyOpenGL 3.1.0 lacks GL_RG sizes

    GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 4)
    out = np.empty((h, w, channels), np.float32)
    glReadPixels(0, 0, w, h, fmt, GL.GL_FLOAT, out.ctypes.data_as(ctypes.c_void_p))
    return np.flip(out, 0)


def _framebuffer(
    GL: Any,
    color_format: int,
    dims: tuple[int, int],
    samples: int,
    extra: tuple[int, ...] = (),
) -> tuple[Any, ...]:
    """(framebuffer, renderbuffers..., dims): color 0, more colors (``extra``), depth."""
    w, h = dims
    formats = [color_format, *extra, GL.GL_DEPTH_COMPONENT24]
    rbs = [int(x) for x in np.atleast_1d(GL.glGenRenderbuffers(len(formats)))]
    fb = GL.glGenFramebuffers(1)
    GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, fb)
    for i, (rb, fmt) in enumerate(zip(rbs, formats, strict=True)):
        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, rb)
        GL.glRenderbufferStorageMultisample(GL.GL_RENDERBUFFER, samples, fmt, w, h)
        depth = fmt == GL.GL_DEPTH_COMPONENT24
        attach = GL.GL_DEPTH_ATTACHMENT if depth else GL.GL_COLOR_ATTACHMENT0 + i
        GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, attach, GL.GL_RENDERBUFFER, rb)
    status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
    if status != GL.GL_FRAMEBUFFER_COMPLETE:
        from simgen.errors import RenderBackendError

        raise RenderBackendError(f"OpenGL framebuffer incomplete (status {status:#x})")
    return (int(fb), *rbs, dims)


# --- GL contexts ---------------------------------------------------------------------------------

_OSMESA_FORMAT, _OSMESA_DEPTH_BITS, _OSMESA_PROFILE = 0x22, 0x30, 0x33
_OSMESA_CORE_PROFILE, _OSMESA_MAJOR, _OSMESA_MINOR = 0x34, 0x36, 0x37
_GL_RGBA, _GL_UNSIGNED_BYTE = 0x1908, 0x1401


class OSMesaCorePlatform:
    """An OSMesa OpenGL 3.3 core context, created through ctypes.

    pyrender's OSMesa platform needs ``OSMesaCreateContextAttribs`` from PyOpenGL >= 3.1.4, but
    pyrender 0.1.45 pins PyOpenGL 3.1.0; calling libOSMesa directly avoids the conflict.
    simgen renders into framebuffer objects, so the context's own buffer is tiny.
    """

    def __init__(self) -> None:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("OSMesa") or "libOSMesa.so.8"
        self._lib = ctypes.CDLL(name)
        create = self._lib.OSMesaCreateContextAttribs
        create.restype = ctypes.c_void_p
        create.argtypes = [ctypes.POINTER(ctypes.c_int), ctypes.c_void_p]
        attrs = (ctypes.c_int * 11)(
            _OSMESA_FORMAT,
            _GL_RGBA,
            _OSMESA_DEPTH_BITS,
            24,
            _OSMESA_PROFILE,
            _OSMESA_CORE_PROFILE,
            _OSMESA_MAJOR,
            3,
            _OSMESA_MINOR,
            3,
            0,
        )
        self._context = create(attrs, None)
        if not self._context:
            from simgen.errors import RenderBackendError

            raise RenderBackendError("OSMesa could not create an OpenGL 3.3 core context")
        self._buffer = (ctypes.c_ubyte * (16 * 16 * 4))()
        self._lib.OSMesaMakeCurrent.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_int,
        ]
        self._lib.OSMesaDestroyContext.argtypes = [ctypes.c_void_p]

    def make_current(self) -> None:
        if not self._lib.OSMesaMakeCurrent(self._context, self._buffer, _GL_UNSIGNED_BYTE, 16, 16):
            from simgen.errors import RenderBackendError

            raise RenderBackendError("OSMesaMakeCurrent failed")

    def make_uncurrent(self) -> None:
        pass

    def delete_context(self) -> None:
        if self._context:
            self._lib.OSMesaDestroyContext(self._context)
            self._context = None


class GLContext:
    """One OpenGL context and simgen's renderer in it (what an OffscreenRenderer holds)."""

    def __init__(self, width: int, height: int, samples: int) -> None:
        import os

        import_pyrender()
        platform = os.environ.get("PYOPENGL_PLATFORM", "egl")
        if platform == "egl":
            from pyrender.platforms import egl

            device = egl.get_device_by_index(int(os.environ.get("EGL_DEVICE_ID", "0")))
            self._platform: Any = egl.EGLPlatform(width, height, device=device)
            self._platform.init_context()
        else:
            self._platform = OSMesaCorePlatform()
        self._platform.make_current()
        self._renderer: Any = make_gl_renderer(width, height, samples)

    def delete(self) -> None:
        """Free the renderer and the context, without ``eglTerminate``.

        pyrender terminates the EGL display when it deletes a context; EGL displays are shared
        per device, so that would kill every other renderer of the process.
        """
        platform = self._platform
        if platform is None:
            return
        try:
            platform.make_current()
            self._renderer.delete()
        finally:
            display = getattr(platform, "_egl_display", None)
            if display is not None:
                from OpenGL.EGL import (
                    EGL_NO_CONTEXT,
                    EGL_NO_SURFACE,
                    eglDestroyContext,
                    eglMakeCurrent,
                )

                eglMakeCurrent(display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT)
                if platform._egl_context is not None:
                    eglDestroyContext(display, platform._egl_context)
                platform._egl_context = None
                platform._egl_display = None
            else:
                platform.delete_context()
            self._renderer = None
            self._platform = None


def _radius(mesh: Any) -> float:
    """Half the diagonal of a pyrender mesh's bounds (cached on the mesh)."""
    r = getattr(mesh, "_simgen_radius", None)
    if r is None:
        b = np.asarray(mesh.bounds)
        r = float(np.linalg.norm(b[1] - b[0]) / 2.0)
        mesh._simgen_radius = r
    return r
