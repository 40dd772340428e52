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
