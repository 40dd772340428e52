"""Which EGL device renders on a given GPU (for workers that a scheduler pins to a GPU).

pyrender opens EGL device ``EGL_DEVICE_ID``, an index into EGL's device list, whose order need
not match CUDA's. NVIDIA's driver tells, for each EGL device, its CUDA device ordinal
(``EGL_NV_device_cuda``); the ordinals are relative to ``CUDA_VISIBLE_DEVICES``, so in a worker
that Ray restricted to its GPU, the EGL device with CUDA ordinal 0 is that GPU. Must run before
pyrender is imported (the platform module reads ``EGL_DEVICE_ID`` when it opens the display).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Sequence

EGL_CUDA_DEVICE_NV = 0x323A
MAX_DEVICES = 64


def egl_cuda_ordinals() -> list[int | None]:
    """The CUDA ordinal of each EGL device (None: not a CUDA device); [] without EGL devices."""
    try:
        egl = ctypes.CDLL(ctypes.util.find_library("EGL") or "libEGL.so.1")
    except OSError:
        return []
    egl.eglGetProcAddress.restype = ctypes.c_void_p
    egl.eglGetProcAddress.argtypes = [ctypes.c_char_p]
    query = egl.eglGetProcAddress(b"eglQueryDevicesEXT")
    attrib = egl.eglGetProcAddress(b"eglQueryDeviceAttribEXT")
    if not query:
        return []
    query_fn = ctypes.CFUNCTYPE(
        ctypes.c_uint, ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)
    )(query)
    devices = (ctypes.c_void_p * MAX_DEVICES)()
    n = ctypes.c_int(0)
    if not query_fn(MAX_DEVICES, devices, ctypes.byref(n)):
        return []
    out: list[int | None] = [None] * n.value
    if attrib:
        attrib_fn = ctypes.CFUNCTYPE(
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_ssize_t)
        )(attrib)
        for i in range(n.value):
            v = ctypes.c_ssize_t(-1)
            if attrib_fn(devices[i], EGL_CUDA_DEVICE_NV, ctypes.byref(v)) and v.value >= 0:
                out[i] = int(v.value)
    return out


def choose_egl_device(
    ordinals: Sequence[int | None], assigned_gpu_ids: Sequence[int], *, restricted: bool = True
) -> tuple[int | None, str]:
    """(EGL device index, how it was chosen) for a worker assigned ``assigned_gpu_ids``.

    The worker renders on its first assigned GPU. ``restricted``: ``CUDA_VISIBLE_DEVICES``
    lists the assigned GPUs (Ray sets it), so that GPU is CUDA ordinal 0; otherwise its ordinal
    is its id. When the driver reports no ordinals, fall back to the GPU's id as the EGL index
    (right on machines whose EGL order matches CUDA's)."""
    if not assigned_gpu_ids:
        return None, "no GPU assigned"
    first = int(assigned_gpu_ids[0])
    want = 0 if restricted else first
    for i, ordinal in enumerate(ordinals):
        if ordinal == want:
            return i, "EGL_NV_device_cuda"
    if first < len(ordinals):
        return first, "GPU id (the driver reports no CUDA ordinals)"
    return None, f"no EGL device for GPU {first} ({len(ordinals)} EGL devices)"


def pin_egl_device(assigned_gpu_ids: Sequence[int]) -> tuple[int | None, str]:
    """Set ``EGL_DEVICE_ID`` for this process (unless the user set it) from its assigned GPUs."""
    if "EGL_DEVICE_ID" in os.environ:
        return int(os.environ["EGL_DEVICE_ID"]), "EGL_DEVICE_ID set by the user"
    index, how = choose_egl_device(
        egl_cuda_ordinals() if assigned_gpu_ids else [],
        assigned_gpu_ids,
        restricted=bool(os.environ.get("CUDA_VISIBLE_DEVICES")),
    )
    if index is not None:
        os.environ["EGL_DEVICE_ID"] = str(index)
    return index, how
