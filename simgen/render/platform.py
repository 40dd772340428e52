"""The one place that chooses the OpenGL platform and imports pyrender.

PyOpenGL fixes its platform when first imported, so the choice is made here, once per process,
before pyrender is imported: ``egl`` (headless NVIDIA or Mesa, the default), else ``osmesa``
(Mesa's software rasterizer). Override with the ``SIMGEN_GL`` environment variable or the CLI's
``--gl`` flag (``egl``, ``osmesa`` or ``auto``). Each candidate is probed with ctypes before it is
chosen, so a broken EGL falls back to OSMesa instead of crashing later.

This module also holds the numpy-2 compatibility shim pyrender 0.1.45 needs (``np.infty``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from types import ModuleType

import numpy as np

from simgen.errors import RenderBackendError

ENV_VAR = "SIMGEN_GL"
PLATFORMS = ("egl", "osmesa")

INSTALL_HINT = (
    "install Mesa's headless GL libraries: on Debian/Ubuntu "
    "`sudo apt-get install libegl1 libgl1 libgles2 libegl-mesa0 libgl1-mesa-dri` (EGL) or "
    "`sudo apt-get install libosmesa6` (OSMesa); on NVIDIA machines the driver provides EGL"
)

_probe_cache: dict[str, str | None] = {}


def _probe_egl() -> str | None:
    """None if an EGL display can be initialized and an OpenGL context created, else why not."""
    name = ctypes.util.find_library("EGL") or "libEGL.so.1"
    try:
        egl = ctypes.CDLL(name)
    except OSError as e:
        return f"libEGL not found ({e})"
    egl.eglGetProcAddress.restype = ctypes.c_void_p
    egl.eglGetProcAddress.argtypes = [ctypes.c_char_p]
    egl.eglGetDisplay.restype = ctypes.c_void_p
    egl.eglGetDisplay.argtypes = [ctypes.c_void_p]
    egl.eglInitialize.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    egl.eglTerminate.argtypes = [ctypes.c_void_p]
    egl.eglBindAPI.argtypes = [ctypes.c_uint]
    display = None
    query = egl.eglGetProcAddress(b"eglQueryDevicesEXT")
    get_platform_display = egl.eglGetProcAddress(b"eglGetPlatformDisplayEXT")
    if query and get_platform_display:
        query_fn = ctypes.CFUNCTYPE(
            ctypes.c_uint, ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)
        )(query)
        n = ctypes.c_int(0)
        if query_fn(0, None, ctypes.byref(n)) and n.value > 0:
            devices = (ctypes.c_void_p * n.value)()
            query_fn(n.value, devices, ctypes.byref(n))
            index = int(os.environ.get("EGL_DEVICE_ID", "0"))
            if index >= n.value:
                return f"EGL_DEVICE_ID={index} but only {n.value} EGL devices exist"
            gpd = ctypes.CFUNCTYPE(
                ctypes.c_void_p, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p
            )(get_platform_display)
            display = gpd(0x313F, devices[index], None)  # EGL_PLATFORM_DEVICE_EXT
    if not display:
        return "no EGL device could be opened"
    major, minor = ctypes.c_int(), ctypes.c_int()
    if not egl.eglInitialize(display, ctypes.byref(major), ctypes.byref(minor)):
        return "eglInitialize failed"
    ok = egl.eglBindAPI(0x30A2)  # EGL_OPENGL_API
    egl.eglTerminate(display)
    return None if ok else "EGL cannot bind the desktop OpenGL API"


def _probe_osmesa() -> str | None:
    for name in (ctypes.util.find_library("OSMesa"), "libOSMesa.so.8", "libOSMesa.so.6"):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        return None if hasattr(lib, "OSMesaCreateContextAttribs") else "libOSMesa is too old"
    return "libOSMesa not found"


_PROBES = {"egl": _probe_egl, "osmesa": _probe_osmesa}


def probe(platform: str) -> str | None:
    """Why ``platform`` cannot be used (None if it can). Cached per process."""
    if platform not in _probe_cache:
        _probe_cache[platform] = _PROBES[platform]()
    return _probe_cache[platform]


def select_platform(requested: str | None = None) -> str:
    """Choose the GL platform for this process (idempotent) and set ``PYOPENGL_PLATFORM``."""
    want = (requested or os.environ.get(ENV_VAR) or "auto").lower()
    if want not in (*PLATFORMS, "auto"):
        raise RenderBackendError(f"unknown GL platform {want!r}; use one of egl, osmesa, auto")
    current = os.environ.get("PYOPENGL_PLATFORM")
    if "OpenGL" in sys.modules and current:
        if want not in ("auto", current):
            raise RenderBackendError(
                f"OpenGL is already loaded with platform {current!r} in this process; "
                f"set {ENV_VAR}={want} before starting simgen"
            )
        return current
    candidates = PLATFORMS if want == "auto" else (want,)
    reasons = []
    for name in candidates:
        why = probe(name)
        if why is None:
            os.environ["PYOPENGL_PLATFORM"] = name
            return name
        reasons.append(f"{name}: {why}")
    raise RenderBackendError(
        "no headless OpenGL platform works (" + "; ".join(reasons) + "); " + INSTALL_HINT
    )


def gl_available(requested: str | None = None) -> str | None:
    """None if rendering can work in this process, else the reason (for tests that skip)."""
    try:
        select_platform(requested)
    except RenderBackendError as e:
        return str(e)
    return None


def import_pyrender(requested: str | None = None) -> ModuleType:
    """Select the platform, apply the numpy-2 shim, and import pyrender."""
    select_platform(requested)
    if not hasattr(np, "infty"):
        np.infty = np.inf  # type: ignore[attr-defined]  # pyrender 0.1.45 uses np.infty
    try:
        import pyrender
    except Exception as e:  # PyOpenGL raises a variety of errors when a platform is broken
        raise RenderBackendError(f"pyrender could not be loaded ({e}); {INSTALL_HINT}") from None
    if os.environ.get("PYOPENGL_PLATFORM") == "osmesa":
        _patch_pyopengl_osmesa()
    return pyrender


def _patch_pyopengl_osmesa() -> None:
    """PyOpenGL 3.1.0 (pinned by pyrender) returns the current OSMesa context as an unhashable
    pointer object, which breaks its own per-context caches; return the address instead."""
    import OpenGL.platform as glp

    plat = glp.PLATFORM
    if getattr(plat, "_simgen_patched", False):
        return
    original = plat.GetCurrentContext

    def current_context() -> int | None:
        return ctypes.cast(original(), ctypes.c_void_p).value

    plat.GetCurrentContext = current_context
    glp.GetCurrentContext = current_context  # the module-level copy contextdata calls
    plat._simgen_patched = True
