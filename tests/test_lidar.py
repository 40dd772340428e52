"""LiDAR: pattern, presets, spec errors, and ray-cast values against analytic ground truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simgen.errors import SceneFileError
from simgen.run.records import SensorFrame
from simgen.scene.sensors import LidarSensor
from simgen.sensors.lidar import (
    apply_noise,
    intensity,
    lidar_model,
    ray_directions,
    sweep_timing,
)
from tests.conftest import scene_from

DT = 1.0 / 240.0


def lidar(**kw) -> LidarSensor:
    return LidarSensor(name="l", pose={}, **kw)


def lidar_frames(text: str, seed: int = 0) -> list[SensorFrame]:
    from simgen.run.episode import Simulator

    with Simulator() as sim:
        return [r for r in sim.episode(scene_from(text), seed, 0) if isinstance(r, SensorFrame)]


# -- presets and pattern (pure) ---------------------------------------------------------------

PUBLISHED = {
    "vlp-16": [-15 + 2 * k for k in range(16)],
    # HDL-32E manual: -30.67 to +10.67 deg in steps of 1.33 deg
    "hdl-32e": [-30.67, -29.33, -28.00, -26.67, -25.33, -24.00, -22.67, -21.33, -20.00, -18.67,
                -17.33, -16.00, -14.67, -13.33, -12.00, -10.67, -9.33, -8.00, -6.67, -5.33, -4.00,
                -2.67, -1.33, 0.00, 1.33, 2.67, 4.00, 5.33, 6.67, 8.00, 9.33, 10.67],
    # HDL-64E S2 manual: +2..-8.33 at 1/3 deg, -8.83..-24.33 at 1/2 deg
    "hdl-64e": [2 - k / 3 for k in range(32)] + [-8.83 - 0.5 * k for k in range(32)],
    # Ouster OS1-64 gen 1: 33.2 deg, uniform, +16.611 .. -16.611
    "os1-64": list(np.linspace(16.611, -16.611, 64)),
    "carla-default": list(np.linspace(10, -30, 32)),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_presets_equal_the_published_tables(name: str) -> None:
    m = lidar_model(lidar(preset=name))
    want = np.sort(np.array(PUBLISHED[name], float))[::-1]
    assert m.channels == len(want)
    assert np.allclose(np.degrees(m.elevation), want, atol=0.006)  # tables give 2-3 decimals
    assert np.all(np.diff(m.elevation) < 0), "ring 0 is the top beam"


def test_preset_defaults_and_overrides() -> None:
    m = lidar_model(lidar(preset="hdl-64e"))
    assert (m.columns, m.min_range, m.max_range, m.sweep_s) == (2083, 0.9, 120.0, 0.1)
    m = lidar_model(lidar(preset="carla-default"))
    assert (m.channels, m.columns, m.max_range) == (32, 175, 10.0)  # 56000 pts/s at 10 Hz
    m = lidar_model(lidar(preset="vlp-16", columns=900, max_range=50.0, rate_hz=5.0))
    assert (m.columns, m.max_range, m.sweep_s) == (900, 50.0, 0.2)


def test_ray_pattern_is_a_pure_function_of_the_spec() -> None:
    spec = lidar(channels=3, upper_fov_deg=10, lower_fov_deg=-20, horizontal_resolution_deg=90)
    m = lidar_model(spec)
    assert np.allclose(np.degrees(m.elevation), [10, -5, -20])
    assert np.allclose(np.degrees(m.azimuth), [135, 45, -45, -135])  # left to right, from behind
    d = ray_directions(m)
    assert d.shape == (3, 4, 3) and np.allclose(np.linalg.norm(d, axis=-1), 1)
    assert np.allclose(
        d[1, 1], [math.cos(math.radians(-5)) * math.sqrt(0.5)] * 2 + [math.sin(math.radians(-5))]
    )
    assert np.array_equal(ray_directions(lidar_model(spec)), d)
    # a 90 deg front sensor: columns fire during the first quarter of the rotation
    m = lidar_model(lidar(elevation_deg=[0], columns=10, horizontal_fov_deg=90, rate_hz=10))
    assert np.allclose(np.degrees(m.azimuth[[0, -1]]), [40.5, -40.5])
    assert np.allclose(m.column_time, (np.arange(10) + 0.5) / 10 * 0.025)


def test_sweep_timing_sectors() -> None:
    m = lidar_model(lidar(elevation_deg=[0], columns=2400, rate_hz=10))
    t = sweep_timing(m, DT)  # default: each column at its nearest step
    assert t.end_step == 24 and t.sectors == 25
    assert np.array_equal(t.sector_step, np.arange(25))
    nearest = np.floor(m.column_time / DT + 0.5)
    assert np.array_equal(t.sector_step[t.column_sector], nearest)
    t4 = sweep_timing(lidar_model(lidar(elevation_deg=[0], columns=2400, sectors=4)), DT)
    assert np.array_equal(t4.sector_step, [3, 9, 15, 21])  # middles of quarter sweeps
    assert np.array_equal(np.bincount(t4.column_sector), [600] * 4)
    t1 = sweep_timing(lidar_model(lidar(elevation_deg=[0], columns=2400, sectors=1)), DT)
    assert np.array_equal(t1.sector_step, [12])
    g = sweep_timing(lidar_model(lidar(elevation_deg=[0], columns=8, pattern="grid")), DT)
    assert (g.end_step, g.sectors) == (0, 1)


def test_intensity_model() -> None:
    i = intensity(
        np.array([0.5, 0.5, 1.0]),
        np.array([1.0, 0.5, 1.0]),
        np.array([20.0, 20.0, 1.0]),
        0.01,
        10.0,
    )
    assert np.allclose(i, [0.5 * math.exp(-0.4) / 4, 0.25 * math.exp(-0.4) / 4, 1.0], rtol=1e-6)


def test_noise_is_seeded_and_has_the_requested_statistics() -> None:
    from simgen.random.seeding import episode_rng

    m = lidar_model(
        lidar(
            elevation_deg=[0],
            columns=8,
            max_range=200,
            noise={"range_sigma_m": 0.05, "dropout": 0.2, "range_resolution_m": 0.01},
        )
    )
    r = np.full(200_000, 50.0, np.float32)
    inten = np.full(r.shape, 0.5, np.float32)

    def rngs():
        return {k: episode_rng(3, 0, "lidar", k) for k in ("dropout", "weak", "range")}

    a, b = apply_noise(m, r, inten, rngs()), apply_noise(m, r, inten, rngs())
    assert np.array_equal(a.keep, b.keep) and np.array_equal(a.range_m, b.range_m)
    assert abs(a.keep.mean() - 0.8) < 0.005
    err = a.range_m.astype(np.float64) - 50.0
    assert abs(err.std() - 0.05) < 0.001 and abs(err.mean()) < 0.001
    assert np.allclose(np.round(a.range_m / 0.01) * 0.01, a.range_m, atol=1e-5)
    weak = lidar_model(
        lidar(
            elevation_deg=[0],
            columns=8,
            noise={"low_intensity_dropout": 1.0, "low_intensity_limit": 0.1},
        )
    )
    w = apply_noise(weak, r[:4], np.array([0.0, 0.05, 0.1, 0.9], np.float32), rngs())
    assert not w.keep[0] and w.keep[2] and w.keep[3]


# -- spec errors ------------------------------------------------------------------------------


def problems(text: str) -> dict[str, object]:
    with pytest.raises(SceneFileError) as e:
        scene_from(text)
    return {p.field: p for p in e.value.problems}


def test_bad_specs_give_clear_errors_with_lines() -> None:
    ps = problems(
        """
schema_version: 1
sensors:
  - kind: lidar
    name: a
    channels: 0
    upper_fov_deg: 10
    lower_fov_deg: -10
    columns: 100
    pose: {}
  - kind: lidar
    name: b
    preset: hdl-64e
    min_range: 5
    max_range: 2
    pose: {}
  - kind: lidar
    name: c
    preset: velodyne-99
    pose: {}
  - kind: lidar
    name: d
    preset: vlp-16
    channels: 16
    pose: {}
"""
    )
    p = ps["sensors[0].channels"]
    assert p.line == 6 and "out of range" in p.message and "1" in p.allowed
    p = ps["sensors[1].min_range"]
    assert p.line == 14 and "min_range (5.0 m) must be below max_range (2.0 m)" in p.message
    p = ps["sensors[2].preset"]
    assert p.line == 19 and "'velodyne-99' is not allowed" in p.message
    assert all(n in p.allowed for n in ("vlp-16", "hdl-32e", "hdl-64e", "os1-64", "carla-default"))
    p = ps["sensors[3].channels"]
    assert p.line == 24 and "fixes the beam table" in p.message
    ps = problems(
        "schema_version: 1\nsensors:\n  - {kind: lidar, name: a, channels: 4, pose: {}}\n"
    )
    assert "upper_fov_deg" in ps["sensors[0]"].message and ps["sensors[0]"].line == 3
    ps = problems(
        "schema_version: 1\nsensors:\n  - {kind: lidar, name: a, preset: vlp-16, rate_hz: 20, rotation_hz: 10, pose: {}}\n"
    )
    assert "overlap" in ps["sensors[0].rate_hz"].message


# -- ray casting against analytic geometry ----------------------------------------------------

EXACT = "detection_threshold: 0, attenuation_per_m: 0"


def test_ground_plane_ranges() -> None:
    h = 1.7
    els = [8.0, -1.0, -3.0, -7.5, -15.0, -30.0, -60.0, -89.0]
    (f,) = lidar_frames(
        f"""
schema_version: 1
simulation: {{duration: 0.15}}
objects:
  - {{name: ground, class: road, kind: plane, size: [1000, 1000]}}
sensors:
  - {{kind: lidar, name: l, elevation_deg: {els}, columns: 720, max_range: 200, {EXACT},
     pose: {{position: [3, -2, {h}], orientation: {{euler_deg: [0, 0, 30]}}}}}}
"""
    )
    el = f.ring_elevation[f.ring]
    assert np.all(el < 0), "upward beams miss"
    assert f.points_s.shape[0] == 7 * 720, "every downward beam returns"
    assert np.abs(f.range_m - h / np.sin(-el)).max() < 1e-3
    assert np.abs(f.points_s[:, 2] + h).max() < 1e-3
    assert np.all(f.instance == 1) and np.all(f.semantic == 1)
    assert np.all(f.range_image[0] == 0) and np.all(f.instance_image[0] == 0)  # the 8 deg ring
    assert np.allclose(f.cos_incidence, np.sin(-el), atol=1e-5)


def test_wall_range_instance_and_class_are_exact_and_far_points_absent() -> None:
    (f,) = lidar_frames(
        f"""
schema_version: 1
simulation: {{duration: 0.15, gravity: [0, 0, 0]}}
classes: [wall, box]
objects:
  - {{name: wall, class: wall, kind: box, size: [0.4, 30, 10], static: true, pose: {{position: [8.2, 0, 0]}}}}
  - {{name: far, class: box, kind: box, size: [0.4, 30, 10], static: true, pose: {{position: [-60, 0, 0]}}}}
sensors:
  - {{kind: lidar, name: l, elevation_deg: [10, 0, -10], columns: 360, max_range: 50, {EXACT}, pose: {{}}}}
"""
    )
    el, az = f.ring_elevation[f.ring], f.azimuth
    assert np.all(np.cos(az) > 0), "the wall behind, beyond max range, gives no point"
    want = 8.0 / (np.cos(el) * np.cos(az))
    assert np.abs(f.range_m - want).max() < 1e-3
    assert np.all(f.instance == 1) and np.all(f.semantic == 1)
    # exactly the rays whose line meets the wall face within its extent return
    d = ray_directions(lidar_model(lidar(elevation_deg=[10, 0, -10], columns=360)))
    t = 8.0 / d[..., 0]
    hits = (d[..., 0] > 0) & (np.abs(t * d[..., 1]) < 15) & (np.abs(t * d[..., 2]) < 5)
    assert np.array_equal(f.range_image > 0, hits)


def test_moving_wall_is_displaced_by_v_t_per_point_timestamp() -> None:
    v, x0 = 6.0, 5.0
    frames = lidar_frames(
        f"""
schema_version: 1
simulation: {{duration: 0.35, gravity: [0, 0, 0]}}
objects:
  - {{name: wall, class: wall, kind: box, size: [0.2, 40, 6], mass: 10, friction: 0,
     pose: {{position: [{x0 + 0.1}, 0, 0]}}, velocity: {{linear: [{v}, 0, 0]}}}}
sensors:
  - {{kind: lidar, name: l, elevation_deg: [5, 0, -5], columns: 720, max_range: 60, {EXACT}, pose: {{}}}}
"""
    )
    assert len(frames) == 3
    for f in frames:
        t = f.sweep_start_time + f.time_offset.astype(np.float64)
        assert np.abs(f.points_s[:, 0] - (x0 + v * t)).max() < 1e-3
        spread = np.ptp(f.points_s[:, 0])
        assert spread > 0.5 * v * 0.1 * np.ptp(f.azimuth) / (2 * np.pi), "the sweep smears"


def test_moving_sensor_cloud_is_deskewed_to_the_sweep_end() -> None:
    v = 8.0
    (f,) = lidar_frames(
        f"""
schema_version: 1
simulation: {{duration: 0.15, gravity: [0, 0, 0]}}
objects:
  - {{name: wall, class: wall, kind: box, size: [0.2, 60, 20], static: true, pose: {{position: [20.1, 0, 0]}}}}
  - {{name: car, class: car, kind: box, size: [0.5, 0.5, 0.5], mass: 1, friction: 0,
     pose: {{position: [0, 0, -3]}}, velocity: {{linear: [{v}, 0, 0]}}}}
sensors:
  - {{kind: lidar, name: l, elevation_deg: [3, -3], columns: 360, max_range: 80, {EXACT},
     attach_to: {{object: car}}, pose: {{position: [0, 0, 3]}}}}
"""
    )
    w = f.instance == 1
    t = f.sweep_start_time + f.time_offset[w].astype(np.float64)
    assert np.abs(f.points_s[w, 0] - (20.0 - v * t)).max() < 1e-3  # measured: smeared
    x_end = f.pose_w[0, 3]
    assert abs(x_end - v * f.time) < 1e-6
    assert np.abs(f.points_deskewed_s[w, 0] - (20.0 - x_end)).max() < 1e-3  # one plane
    assert f.sector_poses_w.shape[0] == 25
    assert np.allclose(f.sector_poses_w[:, 0, 3], v * (f.sweep_start_time + f.sector_time_offset))


STATIC = """
schema_version: 1
simulation: {duration: 0.15}
objects:
  - {name: ground, class: road, kind: plane}
  - {name: post, class: pole, kind: cylinder, radius: 0.3, length: 4, static: true, pose: {position: [4, 1, 2]}}
  - {name: ball, class: ball, kind: sphere, radius: 0.5, static: true, pose: {position: [-3, -3, 0.5]}}
  - {name: robot, class: robot, kind: urdf, asset: 'pybullet:r2d2.urdf', static: true, pose: {position: [0, 4, 0.5]}}
sensors:
  - {kind: lidar, name: l, preset: vlp-16, columns: 900, SECTORS pose: {position: [0, 0, 1.2]}}
"""


def test_static_scene_gives_the_same_cloud_with_and_without_sectors() -> None:
    (a,) = lidar_frames(STATIC.replace("SECTORS", ""))
    (b,) = lidar_frames(STATIC.replace("SECTORS", "sectors: 1,"))
    assert a.sector_poses_w.shape[0] == 25 and b.sector_poses_w.shape[0] == 1
    assert len(np.unique(a.instance)) == 4
    for key in ("points_s", "points_deskewed_s", "range_m", "intensity", "instance", "ring"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key
    assert np.array_equal(a.range_image, b.range_image)


def test_intensity_detection_threshold_and_material_reflectivity() -> None:
    (f,) = lidar_frames(
        """
schema_version: 1
simulation: {duration: 0.15, gravity: [0, 0, 0]}
objects:
  - {name: dark, class: wall, kind: box, size: [0.2, 4, 4], static: true, pose: {position: [10.1, 0, 0]}, material: {reflectivity: 0.05}}
  - {name: bright, class: wall, kind: box, size: [0.2, 4, 4], static: true, pose: {position: [-10.1, 0, 0]}, material: {reflectivity: 0.9}}
sensors:
  - {kind: lidar, name: l, elevation_deg: [0], columns: 3600, attenuation_per_m: 0.01, reference_range_m: 10,
     detection_threshold: 0.04, pose: {}}
"""
    )
    rho = np.where(f.instance == 1, 0.05, 0.9)
    want = rho * f.cos_incidence * np.exp(-0.02 * f.range_m) * (10.0 / f.range_m) ** 2
    assert np.allclose(f.intensity, want, rtol=1e-5)
    assert np.all(f.intensity >= 0.04)
    # the dark wall at 10 m has I = 0.05 * cos * e^-0.2 (< 0.041): only near-normal rays return
    assert 0 < np.sum(f.instance == 1) < np.sum(f.instance == 2)
    assert np.all(
        np.abs(f.azimuth[f.instance == 1]) < np.arccos(0.04 / (0.05 * np.exp(-0.2))) + 0.01
    )


def test_noisy_cloud_is_seeded_and_derived_from_the_clean_one() -> None:
    text = """
schema_version: 1
simulation: {duration: 0.15}
objects:
  - {name: ground, class: road, kind: plane}
sensors:
  - {kind: lidar, name: l, elevation_deg: [-10, -20], columns: 2000, detection_threshold: 0,
     noise: {range_sigma_m: 0.02, dropout: 0.1}, pose: {position: [0, 0, 2]}}
"""
    (a,), (b,), (c,) = lidar_frames(text, 1), lidar_frames(text, 1), lidar_frames(text, 2)
    assert np.array_equal(a.noisy_range_m, b.noisy_range_m)
    assert not np.array_equal(a.noisy_index, c.noisy_index)
    assert np.array_equal(a.range_m, c.range_m), "the clean cloud does not depend on the seed"
    err = a.noisy_range_m - a.range_m[a.noisy_index]
    assert abs(err.std() - 0.02) < 0.003 and 0.85 < len(a.noisy_index) / len(a.range_m) < 0.95
    direction = a.points_s[a.noisy_index] / a.range_m[a.noisy_index, None]
    assert np.allclose(a.noisy_points_s, direction * a.noisy_range_m[:, None], atol=1e-4)
    assert np.count_nonzero(a.range_image_noisy) == len(a.noisy_index)


def test_moving_parts_cast_like_baked_geometry() -> None:
    """The instancing path (rays moved into each part's frame) equals world-baked triangles."""
    from simgen.geometry import euler_deg_to_quat, pose_matrix
    from simgen.sensors.raycast import RayCaster
    from simgen.sim.visuals import Appearance, VisualPart, box_mesh, capsule_mesh, sphere_mesh

    rng = np.random.default_rng(0)
    meshes = [box_mesh(np.array([1.0, 2.0, 0.5])), sphere_mesh(0.7), capsule_mesh(0.3, 1.0)]
    parts = [
        VisualPart(i + 1, -1, (m,), np.eye(4), Appearance(), key=f"k{i}")
        for i, m in enumerate(meshes)
    ]
    poses = np.stack(
        [
            pose_matrix(rng.uniform(-2, 2, 3), euler_deg_to_quat(rng.uniform(-180, 180, 3)))
            for _ in parts
        ]
    )
    caster = RayCaster()
    moving = caster.scene(parts, np.ones(3, bool), poses)
    baked = caster.scene(parts, np.zeros(3, bool), poses)
    d = rng.normal(size=(20000, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    o = np.array([0.3, -0.2, 0.1])
    a, b = moving.cast(o, d, poses, 50.0), baked.cast(o, d, poses, 50.0)
    assert np.array_equal(a.part, b.part) and (a.part >= 0).sum() > 1000
    hit = a.part >= 0
    assert np.allclose(a.t[hit], b.t[hit], atol=1e-5)
    assert np.allclose(a.cos_incidence[hit], b.cos_incidence[hit], atol=1e-4)
    assert np.all(a.cos_incidence[~hit] == 0) and np.all(np.isinf(a.t[~hit]))
    builds = caster.builds
    caster.scene(parts, np.ones(3, bool), poses)
    assert caster.builds == builds, "moving geometry is cached by key across episodes"


def test_lidar_dataset_reads_back_and_inspect_draws_it(tmp_path) -> None:
    from simgen.io.inspect import summarize, write_frame_images
    from simgen.io.reader import Dataset
    from simgen.run.batch import render_dataset
    from simgen.run.episode import Simulator

    scene = scene_from(STATIC.replace("SECTORS", ""))
    with Simulator() as sim:
        render_dataset(scene, tmp_path / "l.h5", episodes=[0], seed=0, simulator=sim)
        (f,) = [r for r in sim.episode(scene, 0, 0) if isinstance(r, SensorFrame)]
    with Dataset(tmp_path / "l.h5") as ds:
        stored = ds.episode(0).frame("l", 0)
    assert np.array_equal(stored["points_s"], f.points_s)
    assert np.array_equal(stored["instance_image"], f.instance_image)
    assert "sensor l" in dict(summarize(tmp_path / "l.h5")["rows"])
    paths = write_frame_images(
        tmp_path / "l.h5", tmp_path / "img", episode=None, sensor=None, frame=0
    )
    assert sorted(p.name for p in paths) == ["ep000000_l_0000_bev.png", "ep000000_l_0000_range.png"]
    import cv2

    bev = cv2.imread(str(paths[0]))
    assert bev.shape == (800, 800, 3) and np.count_nonzero(bev.sum(axis=2)) > 2000


@pytest.mark.slow
def test_lidar_benchmark_runs(monkeypatch, capsys) -> None:
    import runpy
    import sys

    from tests.conftest import ROOT

    monkeypatch.setattr(sys, "argv", ["bench_lidar.py", "--columns", "64", "--repeats", "1"])
    runpy.run_path(str(ROOT / "benchmarks" / "bench_lidar.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "ratio simgen (sectors) / pybullet" in out
    same = float(out.split("range within 1 cm), %")[1].split()[0])
    assert same > 98.0


SPAWN_REMOVE = """
schema_version: 1
simulation: {duration: 0.6, timestep: 0.01, gravity: [0, 0, 0]}
objects:
  - {name: wall_a, class: wall, kind: box, size: [0.2, 4, 3], static: true, pose: {position: [5, 0, 0]}}
sensors:
  - {kind: lidar, name: lid, pattern: grid, channels: 8, upper_fov_deg: 10, lower_fov_deg: -10,
     columns: 16, horizontal_fov_deg: 20, max_range: 50, rate_hz: 10, pose: {position: [0, 0, 0]}}
scenarios:
  - name: swap
    probability: 1.0
    events:
      - {name: out, at: 0.2, action: {remove: {object: wall_a}}}
      - name: in
        at: 0.4
        action:
          spawn:
            object: {name: wall_b, class: crate, kind: box, size: [0.2, 4, 3], static: true,
                     pose: {position: [8, 0, 0]}}
"""


@pytest.mark.gl
def test_lidar_follows_objects_that_scenarios_spawn_and_remove(sim) -> None:
    """Removed objects stop returning points; spawned ones appear from their spawn time."""
    from tests.conftest import run_frames, scene_from

    header, _, frames = run_frames(sim, scene_from(SPAWN_REMOVE))
    ids = {o.name: o.instance_id for o in header.objects}
    by_time = {round(f.time, 3): f for f in frames if f.sensor == "lid"}
    assert set(by_time) >= {0.0, 0.1, 0.2, 0.3, 0.4, 0.5}
    for t, f in sorted(by_time.items()):
        got = set(np.unique(f.instance).tolist())
        if t < 0.2:
            assert got == {ids["wall_a"]} and np.allclose(f.range_m, 4.9 / np.cos(0), rtol=0.05)
        elif t < 0.4:
            assert len(f.range_m) == 0, (t, got)
        else:
            assert got == {ids["wall_b"]}, (t, got)
            assert np.all(f.range_m > 7.8)
