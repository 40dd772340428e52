"""GL platform choice: EGL and OSMesa give the same labels; bad choices fail with a clear error."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from simgen.errors import RenderBackendError
from simgen.render.platform import probe, select_platform
from tests.conftest import ROOT

SCRIPT = """
import sys, numpy as np, simgen
from simgen.sensors.camera import scene_with_resolution
scene = scene_with_resolution(simgen.load_scene("scenes/tabletop.yaml"), 80, 60)
f = list(simgen.frames(scene, seed=3))[-1]
from simgen.render.platform import select_platform
np.savez(sys.argv[1], instance=f.instance, depth=f.depth_m, rgb=f.rgb, platform=select_platform())
"""


def test_unknown_platform_is_a_clear_error() -> None:
    with pytest.raises(RenderBackendError, match="unknown GL platform 'vulkan'"):
        select_platform("vulkan")


@pytest.mark.gl
@pytest.mark.skipif(
    probe("osmesa") is not None or probe("egl") is not None, reason="needs both EGL and OSMesa"
)
def test_egl_and_osmesa_render_identical_labels(tmp_path) -> None:
    out = {}
    for name in ("egl", "osmesa"):
        path = tmp_path / f"{name}.npz"
        r = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**__import__("os").environ, "SIMGEN_GL": name},
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        out[name] = np.load(path)
        assert str(out[name]["platform"]) == name
    assert np.array_equal(out["egl"]["instance"], out["osmesa"]["instance"])
    assert np.array_equal(out["egl"]["depth"], out["osmesa"]["depth"])
