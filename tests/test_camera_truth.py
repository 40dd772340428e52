"""Camera outputs against analytic ground truth: depth, projection, labels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from matplotlib.path import Path

from simgen.geometry import euler_deg_to_quat, invert_pose, pose_matrix, transform_points
from tests.conftest import run_frames, scene_from

pytestmark = pytest.mark.gl


def test_depth_of_a_plane_straight_down_is_exact(sim) -> None:
    scene = scene_from("""
schema_version: 1
simulation: {duration: 0.01, timestep: 0.005}
objects:
  - {name: ground, class: ground, kind: plane}
sensors:
  - {kind: camera, name: cam, resolution: [96, 72], intrinsics: {fov_deg: 60}, near: 0.1, far: 50,
     pose: {position: [0.3, -0.2, 2.5], orientation: {euler_deg: [0, 90, 0]}}}
""")
    _, _, frames = run_frames(sim, scene)
    depth = frames[0].depth_m
    assert depth.dtype == np.float32 and depth.shape == (72, 96)
    assert np.abs(depth - 2.5).max() < 1e-3


def test_depth_of_a_tilted_view_matches_ray_plane_intersection(sim) -> None:
    scene = scene_from("""
schema_version: 1
simulation: {duration: 0.01, timestep: 0.005}
objects:
  - {name: ground, class: ground, kind: plane, size: [200, 200]}
sensors:
  - {kind: camera, name: cam, resolution: [80, 60], intrinsics: {fx: 70, fy: 72, cx: 41.3, cy: 28.9},
     near: 0.05, far: 60, look_at: {eye: [0, 0, 1.7], target: [4, 1, 0]}}
""")
    _, _, frames = run_frames(sim, scene)
    f = frames[0]
    k, t_w_c = f.K, invert_pose(f.extrinsics_w2c)
    v, u = np.mgrid[0:60, 0:80]
    rays_c = np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3) @ np.linalg.inv(k).T  # z = 1
    dirs_w = rays_c @ t_w_c[:3, :3].T
    z_depth = -t_w_c[2, 3] / dirs_w[:, 2]  # ray hits z=0 at parameter t; t is the camera-z depth
    expected = np.where((dirs_w[:, 2] < 0) & (z_depth < 60), z_depth, 0.0).reshape(60, 80)
    hit = (expected > 0) & (expected < 40)
    assert hit.sum() > 1000
    assert np.abs(f.depth_m[hit] - expected[hit]).max() < 1e-3
    assert np.all(f.depth_m[expected == 0] == 0)  # sky: no surface, depth 0
    assert np.all(f.instance[expected == 0] == 0)


BOX_SCENE = """
schema_version: 1
simulation: {duration: 0.01, timestep: 0.005, gravity: [0, 0, 0]}
objects:
  - {name: crate, class: crate, kind: box, size: [0.6, 0.4, 0.3],
     pose: {position: [0.2, -0.1, 0.5], orientation: {euler_deg: [15, -25, 40]}}}
  - {name: ball, class: ball, kind: sphere, radius: 0.05, pose: {position: [0.5, -0.7, 0.15]}}
sensors:
  - {kind: camera, name: a, resolution: [160, 120], intrinsics: {fov_deg: 50},
     look_at: {eye: [2.2, -1.2, 1.4], target: [0, 0, 0.4]}}
  - {kind: camera, name: b, resolution: [128, 96], intrinsics: {fx: 150, fy: 150, cx: 60.0, cy: 50.5},
     look_at: {eye: [-1.5, -2.0, 0.9], target: [0.1, 0, 0.4]}}
"""


def _box_corners_w() -> np.ndarray:
    half = np.array([0.3, 0.2, 0.15])
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    return transform_points(
        pose_matrix([0.2, -0.1, 0.5], euler_deg_to_quat((15, -25, 40))), signs * half
    )


def test_box_mask_matches_projected_corners_from_stored_calibration(sim, tmp_path) -> None:
    from simgen.io.reader import Dataset
    from simgen.run.batch import render_dataset

    scene = scene_from(BOX_SCENE)
    out = tmp_path / "box.h5"
    render_dataset(scene, out, episodes=[0], seed=0, simulator=sim)
    corners = _box_corners_w()
    with Dataset(out) as ds:
        ep = ds.episode(0)
        crate = next(o["instance_id"] for o in ep.objects if o["name"] == "crate")
        for cam in ("a", "b"):
            f = ep.frame(cam, 0)
            ext = f["extrinsics_w2c"]
            rvec, _ = cv2.Rodrigues(ext[:3, :3])
            pts, _ = cv2.projectPoints(corners, rvec, ext[:3, 3], f["K"], None)
            hull = cv2.convexHull(pts.reshape(-1, 2).astype(np.float32)).reshape(-1, 2)
            h, w = f["instance"].shape
            # pixel (u, v) is covered when its center (u, v) lies in the hull (OpenCV pixel centers)
            v, u = np.mgrid[0:h, 0:w]
            predicted = (
                Path(hull).contains_points(np.stack([u.ravel(), v.ravel()], 1)).reshape(h, w)
            )
            mask = f["instance"] == crate
            iou = (mask & predicted).sum() / (mask | predicted).sum()
            assert iou >= 0.98, (cam, iou)


def test_projected_points_land_in_their_masks_and_ids_are_stable(sim) -> None:
    scene = scene_from(BOX_SCENE)
    header, _, frames = run_frames(sim, scene)
    ids = {o.name: o.instance_id for o in header.objects}
    assert ids == {"crate": 1, "ball": 2}
    center = np.array([[0.5, -0.7, 0.15]])
    for f in frames:
        ext = f.extrinsics_w2c
        uvw = (f.K @ transform_points(ext, center).T).T
        u, v = (uvw[0, :2] / uvw[0, 2]).round().astype(int)
        assert f.instance[v, u] == ids["ball"]
        # depth at the projected center is the distance to the sphere's front surface along z
        cam_center = transform_points(ext, center)[0]
        assert f.depth_m[v, u] == pytest.approx(
            cam_center[2] - 0.05 * cam_center[2] / np.linalg.norm(cam_center), abs=3e-3
        )


def test_semantic_equals_class_of_instance(sim) -> None:
    scene = scene_from("""
schema_version: 1
simulation: {duration: 0.3}
classes: [floor, thing, other]
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: a, class: thing, kind: box, size: [0.3, 0.3, 0.3], pose: {position: [0, 0, 0.6]}}
  - {name: b, class: other, kind: sphere, radius: 0.2, pose: {position: [0.5, 0.4, 0.9]}}
  - {name: c, class: thing, kind: cylinder, radius: 0.1, length: 0.4, pose: {position: [-0.4, -0.3, 0.5]}}
sensors:
  - {kind: camera, name: cam, resolution: [96, 72], rate_hz: 10, look_at: {eye: [2, -2, 2], target: [0, 0, 0.3]}}
""")
    header, _, frames = run_frames(sim, scene)
    assert header.class_table == ["background", "floor", "thing", "other"]
    lut = {o.instance_id: o.class_id for o in header.objects}
    assert lut == {1: 1, 2: 2, 3: 3, 4: 2}
    assert len(frames) == 3
    for f in frames:
        assert set(np.unique(f.instance)) <= {0, 1, 2, 3, 4}
        expected = np.vectorize(lambda i: lut.get(int(i), 0))(f.instance)
        assert np.array_equal(f.semantic, expected)
        assert set(np.unique(f.instance)) >= {1, 2, 3, 4}
