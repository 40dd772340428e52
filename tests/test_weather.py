"""Weather, lighting, lens and sensor effects end to end: rendered values against the models."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from simgen.effects.color import decode
from simgen.effects.lidar_weather import BACKSCATTER_PER_EXTINCTION, fog_response
from simgen.effects.state import beta_from_visibility
from simgen.effects.wet import wet_albedo
from tests.conftest import run_frames, scene_from

pytestmark = pytest.mark.gl


def _by_sensor(frames, name):
    return [f for f in frames if f.sensor == name]


STREET = """
schema_version: 1
simulation: {duration: 0.25}
objects:
  - {name: road, class: road, kind: plane, size: [100, 100], material: {color: [0.3, 0.3, 0.3]}}
  - {name: car, class: car, kind: box, size: [4, 1.8, 1.5], pose: {position: [9, 1, 0.75]},
     velocity: {linear: [0, -2, 0]}, friction: 0, keypoints: {rear: [-2, 0, 0], rear_side: [-2, 0.5, 0.3]}}
  - {name: wall, class: wall, kind: box, size: [0.4, 30, 8], static: true, pose: {position: [25, 0, 4]}}
sensors:
  - {kind: camera, name: cam, resolution: [96, 64], rate_hz: 8, pose: {position: [0, 0, 1.4]},
     labels: [boxes, amodal, keypoints, panoptic, flow, normals] CAMERA}
  - {kind: lidar, name: lid, elevation_deg: [5, 0, -5, -10], columns: 360, rate_hz: 8,
     rotation_hz: 20, pose: {position: [0, 0, 1.8]}}
"""


def street(weather: str = "", camera: str = "") -> str:
    return STREET.replace(" CAMERA", camera) + weather


def test_clear_weather_leaves_every_sensor_array_unchanged(sim) -> None:
    _, _, plain = run_frames(sim, scene_from(street()), seed=2)
    _, _, clear = run_frames(sim, scene_from(street("weather: {preset: clear}")), seed=2)
    assert len(plain) == len(clear) > 2
    for a, b in zip(plain, clear, strict=True):
        assert a.sensor == b.sensor
        for key, arr in {**a.arrays, **a.ragged, **a.static}.items():
            other = getattr(b, key)
            assert arr.dtype == other.dtype and arr.tobytes() == other.tobytes(), key
        extra = set(b.arrays) - set(a.arrays)
        if a.sensor == "cam":
            assert extra == {
                "rgb_clean",
                "particle_mask",
                "fog_extinction_per_m",
                "rain_mm_h",
                "snow_mm_h",
            }
            assert np.array_equal(b.rgb_clean, b.rgb) and not b.particle_mask.any()
        else:
            assert extra == {"fog_extinction_per_m", "rain_mm_h", "snow_mm_h"}


WALL = """
schema_version: 1
simulation: {duration: 0.05}
lights: [{kind: ambient, intensity: 1.0}]
background: [0, 0, 0]
objects:
  - {name: wall, class: wall, kind: box, size: [0.2, 60, 60], static: true,
     pose: {position: [DIST, 0, 0]}, material: {color: [0.6, 0.6, 0.6]}}
sensors:
  - {kind: camera, name: cam, resolution: [65, 49], intrinsics: {fov_deg: 50}, rate_hz: 10,
     far: 500, pose: {position: [0, 0, 0]}, labels: []}
weather: {fog: {visibility_m: VIS, color: [0, 0, 0]}}
"""


@pytest.mark.parametrize("visibility", [20.0, 60.0])
def test_fog_contrast_falls_as_exp_minus_beta_d_at_every_pixel(sim, visibility) -> None:
    dist = 20.0
    scene = scene_from(WALL.replace("DIST", str(dist + 0.1)).replace("VIS", str(visibility)))
    _, _, frames = run_frames(sim, scene)
    f = frames[0]
    j, i = decode(f.rgb_clean), decode(f.rgb)  # black airlight: contrast = I / J
    assert j.min() > 0.5  # the wall fills the image
    k = f.K
    v, u = np.mgrid[0:49, 0:65]
    d = dist * np.sqrt(1 + ((u - k[0, 2]) / k[0, 0]) ** 2 + ((v - k[1, 2]) / k[1, 1]) ** 2)
    beta = -math.log(0.05) / visibility
    contrast = (i / j).mean(-1)
    assert np.abs(contrast - np.exp(-beta * d)).max() < 0.005
    if visibility == dist:  # the center pixel looks along the axis, 20 m away
        assert contrast[24, 32] == pytest.approx(0.05, abs=0.005)
        assert np.all(f.depth_m[24, 32] == pytest.approx(dist, rel=1e-5))


LIDAR_WALL = """
schema_version: 1
simulation: {duration: 0.1}
objects:
  - {name: wall, class: wall, kind: box, size: [400, 0.2, 6], static: true,
     pose: {position: [200, 4, 0]}, material: {reflectivity: 0.5}}
sensors:
  - {kind: lidar, name: lid, elevation_deg: [0], columns: 2000, rate_hz: 10, rotation_hz: 40,
     attenuation_per_m: 0, detection_threshold: 0.001, max_range: 300, pose: {position: [0, 0, 0]}}
"""


def test_lidar_fog_shortens_the_range_of_a_wall_as_the_model_predicts(sim) -> None:
    _, _, frames = run_frames(sim, scene_from(LIDAR_WALL))
    clear = frames[0]
    on_wall = clear.range_image[0] > 0
    r0 = clear.range_image[0].astype(np.float64)
    cos = np.zeros_like(r0)
    cos[clear.column.astype(int)] = clear.cos_incidence
    max_ranges, fog_points = [], []
    for alpha in (0.002, 0.01, 0.03, 0.06):
        scene = scene_from(LIDAR_WALL + f"weather: {{fog: {{extinction_per_m: {alpha}}}}}")
        _, _, frames = run_frames(sim, scene)
        f = frames[0]
        hard = np.where(on_wall, 0.5 * cos * (10.0 / np.where(on_wall, r0, 1)) ** 2, 0.0)
        hard *= np.exp(-2 * alpha * r0)
        hard = np.minimum(hard, 1.0)
        peak, _ = fog_response(alpha, np.where(on_wall, r0, np.inf))
        fog = math.pi * 100.0 * BACKSCATTER_PER_EXTINCTION * alpha * peak
        predicted = on_wall & (hard >= 1e-3) & (hard >= fog)
        seen = f.instance_image[0] == 1
        assert np.array_equal(seen, predicted), alpha
        np.testing.assert_allclose(f.range_image[0][seen], r0[seen], rtol=1e-6)
        max_ranges.append(r0[seen].max())
        weather_id = scene.class_table().index("weather")
        fog_points.append(int(np.sum(f.semantic == weather_id)))
        assert np.all(f.instance[f.semantic == weather_id] == 0)
    assert all(a > b for a, b in itertools.pairwise(max_ranges)), max_ranges
    assert all(a < b for a, b in itertools.pairwise(fog_points)), fog_points


def test_wet_ground_darkens_the_road_for_camera_and_lidar(sim) -> None:
    _, _, dry = run_frames(sim, scene_from(street("weather: {preset: clear}")), seed=1)
    _, _, wet = run_frames(sim, scene_from(street("weather: {wet_ground: 1.0}")), seed=1)
    ld, lw = _by_sensor(dry, "lid")[0], _by_sensor(wet, "lid")[0]
    assert np.array_equal(ld.instance, lw.instance)  # same returns, weaker on the road
    road = ld.instance == 1
    np.testing.assert_allclose(
        lw.intensity[road], ld.intensity[road] * wet_albedo(0.1, 1.0) / 0.1, rtol=1e-5
    )
    np.testing.assert_array_equal(lw.intensity[~road], ld.intensity[~road])
    cd, cw = _by_sensor(dry, "cam")[0], _by_sensor(wet, "cam")[0]
    on_road = cd.instance == 1
    assert decode(cw.rgb)[on_road].mean() < 0.8 * decode(cd.rgb)[on_road].mean()


def test_rain_and_snow_are_seeded_and_never_enter_the_labels(sim) -> None:
    def big(text: str) -> str:  # enough pixels for drops to be seen one by one
        return text.replace("resolution: [96, 64]", "resolution: [320, 240]")

    for preset in ("rain_heavy", "snow"):
        scene = scene_from(big(street(f"weather: {{preset: {preset}}}")))
        _, _, a = run_frames(sim, scene, seed=4)
        _, _, b = run_frames(sim, scene, seed=4)
        _, _, c = run_frames(sim, scene, seed=4, index=1)
        _, _, clear = run_frames(sim, scene_from(big(street("weather: {preset: clear}"))), seed=4)
        ca, cb, cc = (_by_sensor(x, "cam")[0] for x in (a, b, c))
        assert ca.particle_mask.any()
        assert np.array_equal(ca.particle_mask, cb.particle_mask)
        assert np.array_equal(ca.rgb, cb.rgb)
        assert not np.array_equal(ca.particle_mask, cc.particle_mask)
        cl = _by_sensor(clear, "cam")[0]
        for key in ("instance", "depth_m", "semantic", "box2d_tight", "panoptic"):
            assert np.array_equal(getattr(ca, key), getattr(cl, key)), key
        la, lb = _by_sensor(a, "lid")[0], _by_sensor(b, "lid")[0]
        assert np.array_equal(la.range_m, lb.range_m)
        assert np.all(la.instance[la.semantic == scene.class_table().index("weather")] == 0)


def test_lens_distortion_keeps_labels_exact(sim, tmp_path) -> None:
    import cv2

    from simgen.geometry import pose_matrix
    from simgen.io.verify import verify_dataset
    from simgen.run.batch import render_dataset

    dist = [-0.3, 0.09, 0.002, -0.001, -0.01]
    cam = ", distortion: {k1: -0.3, k2: 0.09, p1: 0.002, p2: -0.001, k3: -0.01}"
    scene = scene_from(street(camera=cam))
    _, _, frames = run_frames(sim, scene)
    cams = _by_sensor(frames, "cam")
    for f in cams:
        assert np.array_equal(f.dist_coeffs, dist)
        # the car's keypoints lie on its rear face, which faces the camera
        car = pose_matrix(f.box3d_center_w[1], f.box3d_quat_wxyz_w[1])
        pts_w = car @ np.array([[-2.0, 0.0, 0.0, 1.0], [-2.0, 0.5, 0.3, 1.0]]).T
        pts_c = (f.extrinsics_w2c @ pts_w)[:3].T
        uv, _ = cv2.projectPoints(pts_c, np.zeros(3), np.zeros(3), f.K, np.array(dist))
        uv = uv[:, 0]
        np.testing.assert_allclose(f.keypoints_uv, uv, atol=1e-3)
        for u_, v_ in uv:  # the distorted label map holds the car where OpenCV projects it
            assert f.instance[round(v_), round(u_)] == 2
        assert f.keypoints_visibility.tolist() == [2, 2]
    # every label map agrees with every other through the lens
    out = tmp_path / "d.h5"
    render_dataset(scene, out, episodes=[0], seed=0, simulator=sim)
    report = verify_dataset(out)
    assert report.ok, {c.name: (c.worst, c.where) for c in report.checks.values() if not c.ok}
    assert report.checks["keypoints"].items > 0 and report.checks["flow_poses"].items > 0


def test_a_fog_bank_can_roll_in_during_an_episode(sim) -> None:
    from simgen.random.sample import sample_episode
    from simgen.run.records import SensorFrame

    scene = scene_from(street("weather: {preset: clear}"))
    params = sample_episode(scene, 0, 0)

    def fog_bank(time, state):
        return state.with_(visibility_m=30.0) if time >= 0.12 else state

    frames = [r for r in sim.run(params, weather=fog_bank) if isinstance(r, SensorFrame)]
    cams = _by_sensor(frames, "cam")
    beta = beta_from_visibility(30.0)
    assert [float(f.fog_extinction_per_m) for f in cams] == pytest.approx([0.0, beta])
    assert np.array_equal(cams[0].rgb, cams[0].rgb_clean)
    assert not np.array_equal(cams[1].rgb, cams[1].rgb_clean)
    lid = _by_sensor(frames, "lid")
    assert float(lid[-1].fog_extinction_per_m) == pytest.approx(beta)


def test_sensor_effects_are_seeded_and_change_only_rgb(sim) -> None:
    cam = (
        ", effects: {motion_blur: true, vignetting: {}, chromatic_aberration: {shift_px: 1.5},"
        " noise: {full_well_e: 2000}, jpeg: {quality: 85}, exposure: {time_s: 0.02, auto: true}}"
    )
    scene = scene_from(street(camera=cam))
    _, _, a = run_frames(sim, scene, seed=3)
    _, _, b = run_frames(sim, scene, seed=3)
    _, _, plain = run_frames(sim, scene_from(street()), seed=3)
    fa, fb, fp = (_by_sensor(x, "cam")[0] for x in (a, b, plain))
    assert np.array_equal(fa.rgb, fb.rgb)
    assert np.array_equal(fa.rgb_clean, fp.rgb)
    assert not np.array_equal(fa.rgb, fa.rgb_clean)
    assert "particle_mask" not in fa.arrays  # no weather block: no particles
    for key in ("instance", "depth_m", "flow_fwd_px"):
        assert np.array_equal(getattr(fa, key), getattr(fp, key)), key


@pytest.mark.slow
def test_effects_benchmark_and_gallery_scripts_run(monkeypatch, capsys, tmp_path) -> None:
    import runpy
    import sys

    from tests.conftest import ROOT

    argv = ["bench_effects.py", "--width", "64", "--height", "48", "--columns", "64"]
    monkeypatch.setattr(sys, "argv", [*argv, "--repeat", "1"])
    runpy.run_path(str(ROOT / "benchmarks" / "bench_effects.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "full stack: fog + rain + sensor effects" in out and "snow" in out
    gallery = runpy.run_path(str(ROOT / "docs" / "gallery" / "make_gallery.py"))
    gallery["main"](["--out", str(tmp_path), "--presets", "fog_dense", "--scenes", "street"])
    assert (tmp_path / "street_fog_dense.png").stat().st_size > 1000
    assert "street_fog_dense.png" in (tmp_path / "README.md").read_text()


FOG_BANK = """
schema_version: 1
simulation: {duration: 0.6, timestep: 0.01, gravity: [0, 0, 0]}
weather: {preset: clear}
objects:
  - {name: wall, class: wall, kind: box, size: [0.2, 20, 10], static: true, pose: {position: [20, 0, 0]},
     material: {color: [0.9, 0.1, 0.1]}}
sensors:
  - {kind: camera, name: cam, resolution: [32, 24], rate_hz: 10, pose: {position: [0, 0, 0]}}
  - {kind: lidar, name: lid, pattern: grid, channels: 4, upper_fov_deg: 5, lower_fov_deg: -5,
     columns: 8, horizontal_fov_deg: 10, max_range: 60, rate_hz: 10, pose: {position: [0, 0, 0]},
     detection_threshold: 0.001}
scenarios:
  - name: fog
    probability: 1.0
    template: {fog_bank: {at: 0.2, density: 0.3, duration: 0.2}}
"""


@pytest.mark.gl
def test_scenario_fog_bank_changes_the_weather_of_every_sensor_while_it_lasts(sim) -> None:
    """The fog_bank template (issue 6) drives the weather state (issue 5) of camera and LiDAR:
    fog from 0.2 s for 0.2 s, then clear again."""
    from tests.conftest import run_frames, scene_from

    _, _, frames = run_frames(sim, scene_from(FOG_BANK))
    cams = {round(f.time, 2): f for f in frames if f.sensor == "cam"}
    lids = {round(f.time, 2): f for f in frames if f.sensor == "lid"}
    for t in (0.0, 0.1, 0.4, 0.5):
        assert float(cams[t].fog_extinction_per_m) == 0.0
        assert np.array_equal(cams[t].rgb, cams[t].rgb_clean)
        assert set(np.unique(lids[t].instance).tolist()) == {1}
    for t in (0.2, 0.3):
        assert float(cams[t].fog_extinction_per_m) == pytest.approx(0.3)
        # at 20 m, t = exp(-6): the wall is almost pure airlight
        wall = cams[t].instance == 1
        assert np.abs(cams[t].rgb[wall].astype(int) - cams[t].rgb_clean[wall]).mean() > 50
        # the LiDAR cannot see the wall through the fog any more
        assert 1 not in set(np.unique(lids[t].instance).tolist())
