"""The deferred sweep cast equals casting every sector on its own against baked geometry."""

from __future__ import annotations

import numpy as np
import pytest

from simgen.geometry import euler_deg_to_quat, pose_matrix
from simgen.scene.sensors import LidarSensor
from simgen.sensors.lidar import lidar_model, ray_directions, sweep_timing
from simgen.sensors.raycast import RayCaster
from simgen.sensors.sweep_cast import cast_sweep, reachable_rays, sweep_pattern
from simgen.sim.visuals import Appearance, VisualPart, box_mesh, capsule_mesh, sphere_mesh


def random_pose(rng: np.random.Generator, spread: float, angle_deg: float) -> np.ndarray:
    return pose_matrix(
        rng.uniform(-spread, spread, 3), euler_deg_to_quat(rng.uniform(-angle_deg, angle_deg, 3))
    )


def world(rng: np.random.Generator, sectors: int):  # type: ignore[no-untyped-def]
    """Parts (a big box around the sensor, small ones nearby) and their poses per sector."""
    meshes = [
        box_mesh(np.array([1.0, 2.0, 0.5])),
        sphere_mesh(0.7),
        capsule_mesh(0.3, 1.0),
        box_mesh(np.array([0.3, 0.3, 3.0])),
        box_mesh(np.array([30.0, 30.0, 12.0])),  # a room around the sensor
    ]
    parts = [
        VisualPart(i + 1, -1, (m,), np.eye(4), Appearance(), key=f"sweep{i}")
        for i, m in enumerate(meshes)
    ]
    base = np.stack([random_pose(rng, 3.0, 180.0) for _ in parts[:-1]] + [np.eye(4)])
    drift = [np.stack([random_pose(rng, 0.4, 8.0) for _ in parts]) for _ in range(sectors)]
    poses = np.stack([base @ d for d in drift])  # (S, P, 4, 4)
    poses[:, -1] = np.eye(4)
    return parts, poses


@pytest.mark.parametrize("threads", [1, 2])
def test_sweep_cast_equals_per_sector_casts_on_baked_geometry(threads: int) -> None:
    rng = np.random.default_rng(5)
    spec = LidarSensor(
        name="l",
        pose={},
        channels=24,
        upper_fov_deg=40,
        lower_fov_deg=-60,
        columns=720,
        sectors=6,
        max_range=25.0,
    )
    model = lidar_model(spec)
    timing = sweep_timing(model, 1 / 240)
    pattern = sweep_pattern(
        ray_directions(model),
        model.elevation,
        model.azimuth,
        model.horizontal_fov,
        timing.column_sector,
        chunk_rays=2000,  # several chunks, not aligned with sectors
    )
    s = timing.sectors
    parts, poses = world(rng, s)
    sensor_w = np.stack([random_pose(rng, 0.5, 20.0) for _ in range(s)])
    caster = RayCaster(threads=threads)
    moving = caster.scene(parts, np.ones(len(parts), bool), poses[0])
    mixed = caster.scene(parts, np.arange(len(parts)) % 2 == 0, poses[0])
    for scene in (moving, mixed):
        parts_w = poses[:, scene.moving_parts]
        if scene is mixed:  # the static parts stay where they were baked
            poses_s = np.where(scene.movable[None, :, None, None], poses, poses[0][None])
        else:
            poses_s = poses
        got = cast_sweep(
            scene,
            pattern,
            sensor_w,
            parts_w,
            model.max_range,
            lambda ch: (ch.t.copy(), ch.part.copy(), ch.cos.copy()),
        )
        t, part, cos = (np.concatenate(x) for x in zip(*got, strict=True))
        small = 0
        for j in range(s):
            a, b = (
                pattern.sector_columns[j] * model.channels,
                pattern.sector_columns[j + 1] * model.channels,
            )
            baked = caster.scene(parts, np.zeros(len(parts), bool), poses_s[j])
            d_w = pattern.dirs_s[a:b].astype(np.float64) @ sensor_w[j, :3, :3].T
            ref = baked.cast(sensor_w[j, :3, 3], d_w, np.zeros((0, 4, 4)), model.max_range)
            assert np.array_equal(part[a:b], ref.part), j
            hit = ref.part >= 0
            assert hit.mean() > 0.9  # the room catches nearly every ray
            small += np.isin(ref.part, np.arange(len(parts) - 1)).sum()
            assert np.allclose(t[a:b][hit], ref.t[hit], atol=1e-4)
            assert np.allclose(cos[a:b][hit], ref.cos_incidence[hit], atol=1e-4)
            assert np.all(t[a:b][~hit] == model.max_range) and np.all(cos[a:b][~hit] == 0)
        assert small > 100, "the small parts, moving between sectors, are hit"
    caster.close()


def test_reachable_rays_cover_every_ray_that_meets_a_box() -> None:
    """Brute force: every ray whose line meets a part's bounding box (slab test) is reachable."""
    rng = np.random.default_rng(2)
    model = lidar_model(
        LidarSensor(
            name="l",
            pose={},
            channels=32,
            upper_fov_deg=30,
            lower_fov_deg=-70,
            columns=400,
            sectors=5,
        )
    )
    timing = sweep_timing(model, 1 / 240)
    pattern = sweep_pattern(
        ray_directions(model),
        model.elevation,
        model.azimuth,
        model.horizontal_fov,
        timing.column_sector,
    )
    lo = rng.uniform(-1.0, -0.1, (6, 3))
    hi = rng.uniform(0.1, 1.0, (6, 3))
    lo[0], hi[0] = -5.0, 5.0  # a box around the sensor: every ray
    to_part = np.stack(
        [np.stack([random_pose(rng, 4.0, 180.0) for _ in range(6)]) for _ in range(timing.sectors)]
    )
    to_part[:, 0] = np.eye(4)
    idx, sector, bounds = reachable_rays(pattern, lo, hi, to_part)
    ray_sector = np.repeat(timing.column_sector, model.channels)
    assert np.array_equal(sector, ray_sector[idx])
    met = 0
    for k in range(6):
        got = np.zeros(pattern.dirs_s.shape[0], bool)
        got[idx[bounds[k] : bounds[k + 1]]] = True
        r = to_part[ray_sector, k, :3, :3]
        d = np.einsum("nij,nj->ni", r, pattern.dirs_s.astype(np.float64))
        o = to_part[ray_sector, k, :3, 3]
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (lo[k] - o) / d, (hi[k] - o) / d
        near = np.nanmax(np.minimum(t1, t2), axis=1)
        far = np.nanmin(np.maximum(t1, t2), axis=1)
        meets = (near <= far) & (far >= 0)
        met += int(meets[got].sum()) if k else 0
        assert np.all(got[meets]), k
        if k == 0:
            assert got.all()
        else:  # and the bound is useful: far fewer rays than the sweep
            assert got.sum() < 0.5 * got.size
    assert met > 500, "the small boxes are in view"


MOVING = """
schema_version: 1
simulation: {duration: 0.25, gravity: [0, 0, 0]}
classes: [road, wall, car]
objects:
  - {name: ground, class: road, kind: plane, size: [200, 200]}
  - {name: wall, class: wall, kind: box, size: [0.4, 30, 6], static: true, pose: {position: [15, 0, 3]}}
  - {name: car, class: car, kind: box, size: [4, 1.8, 1.5], mass: 1000, friction: 0,
     pose: {position: [0, 0, 0.76], orientation: {euler_deg: [0, 0, 10]}},
     velocity: {linear: [9, 1.5, 0], angular_deg: [0, 0, 45]}}
  - {name: other, class: car, kind: box, size: [4, 1.8, 1.5], mass: 1000, friction: 0,
     pose: {position: [6, -5, 0.76]}, velocity: {linear: [-4, 6, 0]}}
sensors:
  - {kind: lidar, name: l, preset: vlp-16, columns: 1000, attach_to: {object: car},
     pose: {position: [0.5, 0, 1.2]},
     noise: {range_sigma_m: 0.05, dropout: 0.2, low_intensity_dropout: 0.5, range_resolution_m: 0.01}}
"""


def frames_with(threads: int):  # type: ignore[no-untyped-def]
    from simgen.run.episode import Simulator
    from simgen.run.records import SensorFrame
    from tests.conftest import scene_from

    with Simulator() as sim:
        sim._raycaster = RayCaster(threads=threads)
        return [r for r in sim.episode(scene_from(MOVING), 4, 0) if isinstance(r, SensorFrame)]


def test_a_frame_assembled_chunk_by_chunk_is_consistent() -> None:
    """Moving sensor (turning), moving object, every noise source: the point list, the range
    images, the noisy cloud and the de-skewed cloud agree with one another."""
    frames = frames_with(2)
    assert len(frames) == 2
    for f in frames:
        ring, col = f.ring.astype(int), f.column.astype(int)
        assert np.all(np.diff(col * 16 + ring) > 0), "firing order"
        assert np.array_equal(f.range_image[ring, col], f.range_m)
        assert np.count_nonzero(f.range_image) == f.range_m.size
        assert np.array_equal(f.intensity_image[ring, col], f.intensity)
        assert np.array_equal(f.instance_image[ring, col], f.instance)
        assert np.array_equal(f.semantic_image[ring, col], f.semantic)
        assert set(np.unique(f.instance)) == {1, 2, 3, 4}, (
            "ground, wall, its own roof, the other car"
        )
        assert np.array_equal(f.azimuth, f.column_azimuth[col].astype(np.float32))
        sector = f.column_sector[col]
        assert np.array_equal(f.time_offset, f.sector_time_offset[sector].astype(np.float32))
        el, az = f.ring_elevation[ring], f.column_azimuth[col]
        d = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=1)
        assert np.allclose(f.points_s, d * f.range_m[:, None], atol=2e-5)
        # de-skewed: inv(T_end) T_sector p
        p_w = np.einsum("nij,nj->ni", f.sector_poses_w[sector, :3, :3], f.points_s)
        p_w += f.sector_poses_w[sector, :3, 3]
        end = np.linalg.inv(f.pose_w)
        assert np.allclose(f.points_deskewed_s, p_w @ end[:3, :3].T + end[:3, 3], atol=1e-4)
        assert np.ptp(f.sector_poses_w[:, 0, 3]) > 0.5 and np.ptp(f.sector_poses_w[:, 0, 0]) > 0.01
        # noisy cloud: a subset of the clean returns, measured with noise
        k = f.noisy_index
        assert np.all(np.diff(k) > 0) and 0.6 < k.size / f.range_m.size < 0.85
        err = f.noisy_range_m - f.range_m[k]
        assert abs(err.std() - 0.05) < 0.01
        assert np.allclose(np.round(f.noisy_range_m / 0.01) * 0.01, f.noisy_range_m, atol=1e-5)
        assert np.allclose(f.noisy_points_s, d[k] * f.noisy_range_m[:, None], atol=2e-5)
        noisy_img = np.zeros_like(f.range_image)
        noisy_img[ring[k], col[k]] = f.noisy_range_m
        assert np.array_equal(f.range_image_noisy, noisy_img)
    a, b = (f.noisy_index[:100] for f in frames)
    assert not np.array_equal(a, b), "new draws per frame"


def test_frames_do_not_depend_on_the_number_of_threads() -> None:
    a, b = frames_with(1), frames_with(3)
    assert len(a) == len(b) == 2
    for fa, fb in zip(a, b, strict=True):
        for name in (*fa.arrays, *fa.ragged):
            assert np.array_equal(getattr(fa, name), getattr(fb, name)), name
