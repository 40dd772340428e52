"""Object kinds, materials, lights and sensor rates render and simulate as specified."""

from __future__ import annotations

import numpy as np
import pytest

from simgen.errors import AssetError
from tests.conftest import run_frames, scene_from

pytestmark = pytest.mark.gl


def test_mesh_kinds_and_convex_decomposition_rest_on_the_floor(sim, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SIMGEN_CACHE", str(tmp_path))
    scene = scene_from("""
schema_version: 1
simulation: {duration: 1.5}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: bunny, class: bunny, kind: mesh, file: 'pybullet:bunny.obj', scale: 0.2, collision: convex_decomposition,
     pose: {position: [0, 0, 0.3]}}
  - {name: duck, class: duck, kind: mesh, file: 'pybullet:duck.obj', scale: 0.1, pose: {position: [0.4, 0, 0.3]}}
  - {name: wall, class: wall, kind: mesh, file: 'pybullet:cube.obj', scale: [0.1, 1, 0.5], static: true, collision: mesh,
     pose: {position: [-0.5, 0, 0.25]}}
sensors:
  - {kind: camera, name: cam, resolution: [96, 72], rate_hz: 2, look_at: {eye: [1.5, -1.2, 1.0], target: [0, 0, 0.1]}}
""")
    _header, states, frames = run_frames(sim, scene)
    assert list(tmp_path.glob("vhacd/*.obj")), "the decomposition is cached"
    last = states[-1].objects
    # both dynamic meshes fell and came to rest on the floor (not through it; a mesh's own
    # origin may sit slightly below its lowest vertex)
    for i in (1, 2):
        assert -0.05 < last.position_w[i, 2] < 0.25
        assert min(s.objects.position_w[i, 2] for s in states) > -0.05
    assert set(np.unique(frames[-1].instance)) == {0, 1, 2, 3, 4}


def test_texture_shows_in_rgb_and_labels_ignore_it(sim) -> None:
    text = """
schema_version: 1
simulation: {duration: 0.01, timestep: 0.005}
lights: [{kind: ambient, intensity: 1.0}]
objects:
  - {name: floor, class: floor, kind: plane, material: {MATERIAL}}
sensors:
  - {kind: camera, name: cam, resolution: [64, 64], intrinsics: {fov_deg: 60},
     pose: {position: [0.3, 0.3, 2.0], orientation: {euler_deg: [0, 90, 0]}}}
"""
    plain = run_frames(sim, scene_from(text.replace("MATERIAL", "color: [0.8, 0.8, 0.8]")))[2][0]
    textured = run_frames(
        sim, scene_from(text.replace("MATERIAL", "texture: 'simgen:textures/checker.png'"))
    )[2][0]
    assert plain.rgb.std() < 1.0  # uniform
    assert textured.rgb.std() > 20.0  # checker squares of 12.5 cm
    assert np.array_equal(plain.instance, textured.instance)
    assert np.array_equal(plain.depth_m, textured.depth_m)


def test_cameras_capture_at_their_own_rates(sim) -> None:
    scene = scene_from("""
schema_version: 1
simulation: {duration: 1.0}
objects: [{name: floor, class: floor, kind: plane}]
sensors:
  - {kind: camera, name: fast, resolution: [16, 12], rate_hz: 30, look_at: {eye: [1, 0, 1], target: [0, 0, 0]}}
  - {kind: camera, name: slow, resolution: [16, 12], rate_hz: 4, look_at: {eye: [0, 1, 1], target: [0, 0, 0]}}
""")
    _, states, frames = run_frames(sim, scene)
    fast = [f.time for f in frames if f.sensor == "fast"]
    slow = [f.time for f in frames if f.sensor == "slow"]
    assert len(fast) == 30 and len(slow) == 4
    assert np.allclose(slow, [0, 0.25, 0.5, 0.75])
    assert np.allclose(fast, np.round(np.arange(30) / 30 * 240) / 240)
    ticks = sorted({f.tick for f in frames})
    assert [s.tick for s in states] == ticks
    assert all(frames[i].time <= frames[i + 1].time for i in range(len(frames) - 1))


def test_attached_camera_and_spot_light_follow_their_object(sim) -> None:
    scene = scene_from("""
schema_version: 1
simulation: {duration: 1.0, gravity: [0, 0, 0]}
lights:
  - {kind: ambient, intensity: 0.0}
  - {kind: spot, position: [0, 0, 0], direction: [1, 0, 0], intensity: 30, inner_cone_deg: 10, outer_cone_deg: 20,
     attach_to: {object: cart}}
objects:
  - {name: wall, class: wall, kind: box, size: [0.1, 20, 4], static: true, pose: {position: [3, 0, 1]}}
  - {name: cart, class: cart, kind: box, size: [0.2, 0.2, 0.2], pose: {position: [0, -2, 1]},
     velocity: {linear: [0, 4, 0]}}
sensors:
  - {kind: camera, name: onboard, resolution: [32, 32], rate_hz: 2, attach_to: {object: cart},
     pose: {position: [0.2, 0, 0]}}
  - {kind: camera, name: fixed, resolution: [200, 40], rate_hz: 2, intrinsics: {fov_deg: 30},
     look_at: {eye: [0, 0, 1], target: [3, 0, 1]}}
""")
    _, _states, frames = run_frames(sim, scene)
    onboard = [f for f in frames if f.sensor == "onboard"]
    # the attached camera moved with the cart: 4 m/s along y for 0.5 s
    dy = onboard[1].pose_w[1, 3] - onboard[0].pose_w[1, 3]
    assert dy == pytest.approx(2.0, abs=1e-6)
    assert np.allclose(onboard[0].pose_w[:3, 3], [0.2, -2, 1])
    # it sees the wall 2.8 m ahead in both frames
    for f in onboard:
        assert f.instance[16, 16] == 1 and f.depth_m[16, 16] == pytest.approx(2.75, abs=1e-3)
    # the spot moved with the cart: the lit patch on the wall shifted toward +y (image left)
    fixed = [f for f in frames if f.sensor == "fixed"]
    cols = [np.argmax(f.rgb[20].astype(int).sum(-1)) for f in fixed]
    assert cols[1] < cols[0] - 20


def test_missing_asset_is_a_clear_error(sim) -> None:
    scene = scene_from("""
schema_version: 1
objects: [{name: thing, class: thing, kind: urdf, asset: 'pybullet:no_such_thing.urdf'}]
""")
    with pytest.raises(AssetError, match=r"no_such_thing\.urdf"):
        run_frames(sim, scene)
    scene = scene_from("""
schema_version: 1
objects: [{name: thing, class: thing, kind: mesh, file: '../../../../etc/passwd'}]
""")
    with pytest.raises(AssetError, match="outside the allowed folders"):
        run_frames(sim, scene)
