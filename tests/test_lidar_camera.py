"""LiDAR and camera see the same geometry: points land on pixels with the same depth and id."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import run_frames, scene_from

pytestmark = pytest.mark.gl

SCENE = """
schema_version: 1
simulation: {duration: 0.15}
objects:
  - {name: ground, class: road, kind: plane, size: [200, 200]}
  - {name: crate, class: box, kind: box, size: [1, 1.5, 1.2], static: true, pose: {position: [6, 1.5, 0.6], orientation: {euler_deg: [0, 0, 25]}}}
  - {name: ball, class: ball, kind: sphere, radius: 0.6, static: true, pose: {position: [8, -2, 0.6]}}
  - {name: post, class: pole, kind: cylinder, radius: 0.2, length: 3, static: true, pose: {position: [4, -0.8, 1.5]}}
  - {name: wall, class: wall, kind: box, size: [0.3, 20, 4], static: true, pose: {position: [14, 0, 2]}}
  - {name: robot, class: robot, kind: urdf, asset: 'pybullet:r2d2.urdf', static: true, pose: {position: [5, 0.2, 0.45]}}
sensors:
  - {kind: camera, name: cam, resolution: [640, 480], intrinsics: {fov_deg: 50}, near: 0.05, far: 100,
     pose: {position: [0, 0, 1.0], orientation: {euler_deg: [0, 4, 0]}}}
  - {kind: lidar, name: lidar, elevation_deg: [18, 14, 10, 6, 3, 1, 0, -1, -3, -6, -10, -14, -18, -22],
     columns: 2880, detection_threshold: 0, max_range: 100,
     pose: {position: [0, 0, 1.0], orientation: {euler_deg: [0, 4, 0]}}}
"""


def test_lidar_points_agree_with_a_co_located_camera(sim) -> None:
    from simgen.sensors.camera import R_BODY_OPTICAL

    _, _, frames = run_frames(sim, scene_from(SCENE))
    cam = next(f for f in frames if f.sensor == "cam")
    lid = next(f for f in frames if f.sensor == "lidar")
    assert np.allclose(cam.pose_w[:3, 3], lid.pose_w[:3, 3])
    p_c = lid.points_s.astype(np.float64) @ R_BODY_OPTICAL  # body -> OpenCV optical frame
    k = cam.K
    z = p_c[:, 2]
    ahead = z > 0.1
    uf = k[0, 0] * p_c[:, 0] / np.where(ahead, z, 1) + k[0, 2]
    vf = k[1, 1] * p_c[:, 1] / np.where(ahead, z, 1) + k[1, 2]
    h, w = cam.depth_m.shape
    inside = ahead & (uf >= 0) & (uf <= w - 1) & (vf >= 0) & (vf <= h - 1)
    assert inside.sum() > 2000
    uf, vf, z, inst_l = uf[inside], vf[inside], z[inside], lid.instance[inside]
    u, v = np.rint(uf).astype(int), np.rint(vf).astype(int)
    inst_c = cam.instance[v, u]
    # depth at the point's sub-pixel position: inverse depth is bilinear on a planar triangle,
    # so interpolate 1/depth over the 2x2 pixel centers when they all show the same object
    u0, v0 = (
        np.minimum(np.floor(uf).astype(int), w - 2),
        np.minimum(np.floor(vf).astype(int), h - 2),
    )
    a, b = uf - u0, vf - v0
    corners = [
        (v0, u0, (1 - a) * (1 - b)),
        (v0, u0 + 1, a * (1 - b)),
        (v0 + 1, u0, (1 - a) * b),
        (v0 + 1, u0 + 1, a * b),
    ]
    same = np.all([cam.instance[r, c] == inst_c for r, c, _ in corners], axis=0)
    inv = sum(wgt / np.maximum(cam.depth_m[r, c], 1e-6) for r, c, wgt in corners)
    depth = np.where(same, 1.0 / inv, cam.depth_m[v, u])
    depth_ok = np.abs(depth - z) <= 0.01 * z
    same_id = inst_c == inst_l
    assert len(set(inst_l.tolist())) == 6, "every object is seen"
    assert depth_ok.mean() >= 0.99, depth_ok.mean()
    assert same_id.mean() >= 0.99, same_id.mean()
    both = depth_ok & same_id & same
    assert np.median(np.abs(depth[both] - z[both]) / z[both]) < 1e-3
