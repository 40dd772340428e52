"""pyrender's GL renderer, adapted for exact labels and a configurable multisample count.

pyrender 0.1.45 renders every pass into one 4x multisampled RGBA8 framebuffer and recovers depth
from the 24-bit depth buffer. simgen changes three things, all in this module:

* the shaded RGB pass uses ``samples`` samples (1 = no multisampling; on a software rasterizer
  multisampling costs about 40% of the frame);
* the label pass renders into its own single-sampled float framebuffer with simgen's shaders
  (``shaders/label.*``): each pixel stores the instance id and the camera-z depth interpolated
  in float32 from the same rasterization, so ids and depth always agree and depth keeps ~1e-7
  relative precision instead of the depth buffer's z^2-growing error;
* all passes render to framebuffers, also on OSMesa (pyrender reads its window buffer there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from simgen.render.platform import import_pyrender

SHADER_DIR = Path(__file__).resolve().parent / "shaders"
_OVERRIDES = {"segmentation.vert": "label.vert", "segmentation.frag": "label.frag"}


def make_gl_renderer(width: int, height: int, samples: int) -> Any:
    """A ``pyrender.Renderer`` with simgen's framebuffers and label shaders."""
    pyrender = import_pyrender()
    from OpenGL import GL
    from pyrender.shader_program import ShaderProgramCache

    class LabelShaderCache(ShaderProgramCache):  # type: ignore[misc]
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
            return super().get_program(vs, fs, geometry_shader, defines)

    class SimgenRenderer(pyrender.Renderer):  # type: ignore[name-defined,misc]
        def __init__(self, w: int, h: int, n: int) -> None:
            super().__init__(w, h)
            self._program_cache = LabelShaderCache()
            self.samples = n
            self._fbs: dict[str, tuple[int, int, int, tuple[int, int]]] = {}

        def set_samples(self, n: int) -> None:
            if n != self.samples:
                self.samples = n
                self._drop("rgb")

        def _drop(self, name: str) -> None:
            fb = self._fbs.pop(name, None)
            if fb is not None:
                GL.glDeleteFramebuffers(1, [fb[0]])
                GL.glDeleteRenderbuffers(2, [fb[1], fb[2]])

        def _fb(self, name: str) -> int:
            dims = (self.viewport_width, self.viewport_height)
            fb = self._fbs.get(name)
            if fb is not None and fb[3] != dims:
                self._drop(name)
                fb = None
            if fb is None:
                if name == "rgb":
                    n = self.samples if self.samples > 1 else 0
                    fb = _framebuffer(GL, GL.GL_RGBA8, dims, n)
                elif name == "resolve":
                    fb = _framebuffer(GL, GL.GL_RGBA8, dims, 0)
                else:
                    fb = _framebuffer(GL, GL.GL_RGBA32F, dims, 0)
                self._fbs[name] = fb
            return fb[0]

        def _configure_forward_pass_viewport(self, flags: Any) -> None:
            name = "label" if flags & pyrender.RenderFlags.SEG else "rgb"
            GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, self._fb(name))
            GL.glViewport(0, 0, self.viewport_width, self.viewport_height)
            GL.glEnable(GL.GL_DEPTH_TEST)
            GL.glDepthMask(GL.GL_TRUE)
            GL.glDepthFunc(GL.GL_LESS)
            GL.glDepthRange(0.0, 1.0)

        def _read_main_framebuffer(self, scene: Any, flags: Any) -> Any:
            w, h = self.viewport_width, self.viewport_height
            if flags & pyrender.RenderFlags.SEG:
                GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self._fb("label"))
                raw = GL.glReadPixels(0, 0, w, h, GL.GL_RGBA, GL.GL_FLOAT)
                data = np.flip(np.frombuffer(raw, np.float32).reshape(h, w, 4), 0)
                return data[..., 0].astype(np.uint32), np.ascontiguousarray(data[..., 1])
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


def _framebuffer(
    GL: Any, color_format: int, dims: tuple[int, int], samples: int
) -> tuple[int, int, int, tuple[int, int]]:
    w, h = dims
    color, depth = GL.glGenRenderbuffers(2)
    GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, color)
    GL.glRenderbufferStorageMultisample(GL.GL_RENDERBUFFER, samples, color_format, w, h)
    GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, depth)
    GL.glRenderbufferStorageMultisample(GL.GL_RENDERBUFFER, samples, GL.GL_DEPTH_COMPONENT24, w, h)
    fb = GL.glGenFramebuffers(1)
    GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, fb)
    GL.glFramebufferRenderbuffer(
        GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_RENDERBUFFER, color
    )
    GL.glFramebufferRenderbuffer(
        GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER, depth
    )
    status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
    if status != GL.GL_FRAMEBUFFER_COMPLETE:
        from simgen.errors import RenderBackendError

        raise RenderBackendError(f"OpenGL framebuffer incomplete (status {status:#x})")
    return int(fb), int(color), int(depth), dims
