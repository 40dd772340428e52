"""pyrender's GL renderer with a configurable multisample count.

pyrender 0.1.45 always renders into a 4x multisampled framebuffer. On a software rasterizer
(Mesa llvmpipe) multisampling costs about 40% of the frame, and label passes don't need it, so
simgen renders single-sampled unless a camera asks for ``antialias: N``. This subclass is the
only place that reaches into pyrender's framebuffer handling.
"""

from __future__ import annotations

from typing import Any

from simgen.render.platform import import_pyrender


def make_gl_renderer(width: int, height: int, samples: int) -> Any:
    """A ``pyrender.Renderer`` whose main framebuffer has ``samples`` samples (1 = none)."""
    pyrender = import_pyrender()
    from OpenGL import GL

    class SampledRenderer(pyrender.Renderer):  # type: ignore[name-defined,misc]
        def __init__(self, w: int, h: int, n: int) -> None:
            super().__init__(w, h)
            self.samples = n

        def set_samples(self, n: int) -> None:
            if n != self.samples:
                self.samples = n
                self._delete_main_framebuffer()

        def _configure_main_framebuffer(self) -> None:
            self._main_fb: Any
            self._main_fb_dims: Any
            dims = (self.viewport_width, self.viewport_height)
            if self._main_fb is not None and dims != self._main_fb_dims:
                self._delete_main_framebuffer()
            if self._main_fb is not None:
                return
            w, h = dims
            self._main_cb, self._main_db = GL.glGenRenderbuffers(2)
            self._main_fb = _framebuffer(GL, self._main_cb, self._main_db, w, h, 0)
            self._main_cb_ms, self._main_db_ms = GL.glGenRenderbuffers(2)
            n = self.samples if self.samples > 1 else 0
            self._main_fb_ms = _framebuffer(GL, self._main_cb_ms, self._main_db_ms, w, h, n)
            self._main_fb_dims = dims

    return SampledRenderer(width, height, samples)


def _framebuffer(GL: Any, color: int, depth: int, w: int, h: int, samples: int) -> int:
    GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, color)
    GL.glRenderbufferStorageMultisample(GL.GL_RENDERBUFFER, samples, GL.GL_RGBA8, w, h)
    GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, depth)
    GL.glRenderbufferStorageMultisample(GL.GL_RENDERBUFFER, samples, GL.GL_DEPTH_COMPONENT24, w, h)
    fb = GL.glGenFramebuffers(1)
    GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, fb)
    GL.glFramebufferRenderbuffer(
        GL.GL_DRAW_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_RENDERBUFFER, color
    )
    GL.glFramebufferRenderbuffer(
        GL.GL_DRAW_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER, depth
    )
    return int(fb)
