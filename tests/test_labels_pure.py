"""The pure label functions against brute force and closed forms (no OpenGL)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simgen.geometry import euler_deg_to_quat, matrix_to_quat, quat_to_matrix
from simgen.labels import flow as flow_module
from simgen.labels.amodal import amodal_window, clip_box_at_near, pack_masks, unpack_masks
from simgen.labels.boxes import box_corners, mask_boxes, matrices_to_quats, object_boxes
from simgen.labels.flow import OCCLUDED, OUTSIDE, VISIBLE, FlowView, rigid_flow
from simgen.labels.keypoints import keypoint_visibility
from simgen.labels.normals import normals_from_depth
from simgen.labels.occlusion import DepthTest, depth_visible, inside_image
from simgen.labels.panoptic import panoptic
from simgen.sensors.lens import distort_normalized, pixel_rays
from tests.conftest import scene_from


def test_mask_boxes_equal_brute_force() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        inst = np.zeros((23, 31), np.uint16)
        for i in range(1, 6):
            if rng.random() < 0.8:
                v0, u0 = rng.integers(0, 20), rng.integers(0, 28)
                inst[v0 : v0 + rng.integers(1, 6), u0 : u0 + rng.integers(1, 8)] = i
        boxes, counts = mask_boxes(inst, 6)
        for i in range(1, 7):
            v, u = np.nonzero(inst == i)
            assert counts[i - 1] == len(u)
            want = [u.min(), v.min(), u.max() + 1, v.max() + 1] if len(u) else [0, 0, 0, 0]
            assert boxes[i - 1].tolist() == want


def test_matrices_to_quats_match_the_scalar_version() -> None:
    rng = np.random.default_rng(3)
    eulers = rng.uniform(-180, 180, (200, 3))
    eulers[:4] = [[0, 0, 0], [180, 0, 0], [0, 180, 0], [0, 0, 180]]  # each Shepperd branch
    r = quat_to_matrix(np.stack([euler_deg_to_quat(e) for e in eulers]))
    q = matrices_to_quats(r)
    assert np.allclose(q, np.stack([matrix_to_quat(m) for m in r]), atol=1e-12)
    assert np.allclose(quat_to_matrix(q), r, atol=1e-12)


def test_object_boxes_bound_parts_placed_by_their_links() -> None:
    # object 0: two parts, one on a link turned 90 degrees about z and shifted along x
    pts = np.array([[-1, -0.5, 0], [1, 0.5, 0.2], [0, 0, 0], [0.3, 0.1, 0.05]], float)
    point_part = np.array([0, 0, 1, 1])
    part_object = np.array([0, 0])
    obj = np.eye(4)[None].repeat(1, 0)
    obj[0, :3, 3] = [5, 0, 0]
    parts = np.eye(4)[None].repeat(2, 0)
    parts[0, :3, 3] = [5, 0, 0]
    parts[1, :3, :3] = quat_to_matrix(euler_deg_to_quat((0, 0, 90)))
    parts[1, :3, 3] = [7, 0, 0]
    center, size = object_boxes(pts, point_part, part_object, parts, obj)
    # the second part's point (0.3, 0.1) lands at (2 - 0.1, 0.3) in the object frame
    assert size[0] == pytest.approx([2.0 + 1.0, 1.0, 0.2])
    assert center[0] == pytest.approx([0.5, 0.0, 0.1])


def test_amodal_masks_pack_and_unpack() -> None:
    rng = np.random.default_rng(0)
    masks = {1: rng.random((5, 7)) < 0.5, 3: rng.random((2, 9)) < 0.5}
    boxes = np.zeros((3, 4), np.int32)
    pixels = np.zeros(3, np.int32)
    boxes[0] = [1, 2, 8, 7]
    boxes[2] = [0, 0, 9, 2]
    pixels[0], pixels[2] = masks[1].sum(), masks[3].sum()
    packed = pack_masks([masks[1], masks[3]])
    out = unpack_masks(packed, boxes, pixels, 10, 12)
    assert set(out) == {1, 3}
    assert np.array_equal(out[1][2:7, 1:8], masks[1]) and out[1].sum() == masks[1].sum()
    assert np.array_equal(out[3][0:2, 0:9], masks[3])


def test_box_clipped_at_the_near_plane_and_its_window() -> None:
    corners = box_corners(np.array([0.0, 0.0, 1.0]), np.array([1.0, 1.0, 2.0]), np.eye(3))
    clipped = clip_box_at_near(corners, near=0.5)
    assert clipped[:, 2].min() == pytest.approx(0.5)
    assert np.abs(clipped[:, :2]).max() == pytest.approx(0.5)
    k = np.array([[100.0, 0, 49.5], [0, 100.0, 49.5], [0, 0, 1]])
    win, capped = amodal_window(corners, k, 0.5, 100, 100)
    assert capped  # the near face spans 200 px: capped at half an image beyond each side
    assert win == (-50, -50, 150, 150)
    far = box_corners(np.array([0.0, 0.0, 10.0]), np.array([1.0, 1.0, 1.0]), np.eye(3))
    win, capped = amodal_window(far, k, 0.5, 100, 100)
    # u in 49.5 +- 100 * 0.5 / 9.5 = [44.24, 54.76]: pixels 45..54, two of margin each side
    assert (win, capped) == ((43, 43, 57, 57), False)
    assert amodal_window(far - [0, 0, 20], k, 0.5, 100, 100) is None  # behind the camera


def test_depth_test_uses_the_pixels_around_the_point() -> None:
    depth = np.full((4, 4), 2.0, np.float32)
    depth[:, 2:] = 1.0  # a nearer surface on the right half
    uv = np.array([[1.0, 1.0], [1.5, 1.0], [2.0, 1.0], [1.0, 1.0]])
    z = np.array([2.0, 2.0, 2.0, 2.5])
    # on a left center: seen; between the halves: the far side is in the cell, seen; on a
    # right center: hidden by the near surface; behind the left surface: hidden
    assert depth_visible(uv[:, 0], uv[:, 1], z, depth).tolist() == [True, True, False, False]
    depth[0, 0] = 0  # no surface counts as infinitely far
    assert depth_visible(np.zeros(1), np.zeros(1), np.array([50.0]), depth).tolist() == [True]
    flags = keypoint_visibility(
        np.array([[1.0, 1.0], [2.0, 1.0], [9.0, 1.0]]), np.full(3, 2.0), depth, 0.1
    )
    assert flags.tolist() == [2, 1, 0]


def test_rigid_flow_of_a_rotation_about_the_optical_axis() -> None:
    k = np.array([[50.0, 0, 15.5], [0, 50.0, 15.5], [0, 0, 1]])
    depth = np.full((32, 32), 4.0, np.float32)
    part = np.ones((32, 32), np.uint32)
    turn = np.eye(4)
    turn[:3, :3] = quat_to_matrix(euler_deg_to_quat((0, 0, 10)))  # about the camera's z
    a = FlowView(part, depth, k, np.eye(4), np.eye(4)[None], 0.1)
    b = FlowView(part, depth, k, np.eye(4), turn[None], 0.1)
    flow = rigid_flow(a, b)
    v, u = np.mgrid[0:32, 0:32]
    x, y = u - 15.5, v - 15.5
    c, s = math.cos(math.radians(10)), math.sin(math.radians(10))
    expected = np.stack([c * x - s * y - x, s * x + c * y - y], -1)
    assert np.abs(flow.flow_px - expected).max() < 1e-4
    inside = (np.abs(c * x - s * y) < 15.9) & (np.abs(s * x + c * y) < 15.9)
    assert np.all(flow.status[inside] == VISIBLE)
    closer = FlowView(part, np.full((32, 32), 3.0, np.float32), k, np.eye(4), turn[None], 0.1)
    assert np.all(rigid_flow(a, closer).status[inside] == OCCLUDED)


def test_depth_test_at_the_image_border_and_on_centers() -> None:
    depth = np.array([[1.0, 5.0, 5.0], [5.0, 5.0, 5.0]], np.float32)
    # above the first row: only row 0's centers are around the point (row 1 is not)
    u, v, z = np.array([0.0, 0.0, 0.4]), np.array([-0.4, 0.0, -0.4]), np.full(3, 3.0)
    assert depth_visible(u, v, z, depth).tolist() == [False, False, True]
    on, seen = DepthTest(depth).test(u.astype(np.float32), v.astype(np.float32), z, 0.1)
    assert on.all() and seen.tolist() == [False, False, True]


def test_depth_test_maps_equal_the_direct_test() -> None:
    rng = np.random.default_rng(3)
    depth = rng.uniform(1.0, 3.0, (17, 23)).astype(np.float32)
    depth[rng.random(depth.shape) < 0.2] = 0.0  # no surface
    n = 4000
    u = rng.uniform(-1.0, 23.5, n).astype(np.float32)
    v = rng.uniform(-1.0, 17.5, n).astype(np.float32)
    u[:500], v[500:1000] = np.round(u[:500]), np.round(v[500:1000])  # on columns, rows
    u[1000:1200], v[1000:1200] = np.round(u[1000:1200]), np.round(v[1000:1200])  # on centers
    z = rng.uniform(0.5, 3.5, n).astype(np.float32)
    on, seen = DepthTest(depth).test(u, v, z, 0.6)
    expect_on = inside_image(u, v, 23, 17) & (z >= 0.6)
    assert np.array_equal(on, expect_on)
    expect_seen = depth_visible(u[on], v[on], z[on], depth)
    assert np.array_equal(seen[on], expect_seen) and 0.3 < expect_seen.mean() < 0.95


def _reference_flow(src: FlowView, dst: FlowView) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The documented definition, pixel by pixel in float64: (flow, status, scene flow)."""
    h, w = src.depth_m.shape
    flow, status, scene = np.zeros((h, w, 2)), np.zeros((h, w), np.uint8), np.zeros((h, w, 3))
    t_c1_w = np.linalg.inv(dst.pose_w_c)
    for v, u in zip(*np.nonzero(src.part), strict=True):
        i = src.part[v, u] - 1
        if src.rays is None:
            ray = np.linalg.inv(src.k) @ [u, v, 1.0]
        else:
            ray = np.array([*src.rays[v, u], 1.0])
        x_w0 = src.pose_w_c @ [*(src.depth_m[v, u] * ray), 1.0]
        x_w1 = dst.part_poses_w[i] @ np.linalg.inv(src.part_poses_w[i]) @ x_w0
        x_c1 = (t_c1_w @ x_w1)[:3]
        scene[v, u] = (x_w1 - x_w0)[:3]
        xn, yn = x_c1[:2] / x_c1[2]
        if dst.dist is not None:
            xn, yn = distort_normalized(xn, yn, dst.dist)
        u1 = dst.k[0, 0] * xn + dst.k[0, 1] * yn + dst.k[0, 2]
        v1 = dst.k[1, 1] * yn + dst.k[1, 2]
        if x_c1[2] > 0:
            flow[v, u] = u1 - u, v1 - v
        on = x_c1[2] >= dst.near and inside_image(np.array([u1]), np.array([v1]), w, h)[0]
        seen = on and depth_visible(np.array([u1]), np.array([v1]), x_c1[2:], dst.depth_m)[0]
        status[v, u] = (VISIBLE if seen else OCCLUDED) if on else OUTSIDE
    return flow, status, scene


@pytest.mark.parametrize("lens", [False, True])
@pytest.mark.parametrize("camera_moves", [False, True])
def test_rigid_flow_equals_the_definition_pixel_by_pixel(
    monkeypatch: pytest.MonkeyPatch, lens: bool, camera_moves: bool
) -> None:
    """A tilted floor (part 1, still), a box turning and sliding (part 2, in front of it), a
    far wall (part 3, still), sky; the camera still or moving and turning; pinhole or
    distorted. Whole-image blocks of 7 rows (not a divisor of the height)."""
    monkeypatch.setattr(flow_module, "BLOCK_PIXELS", 7 * 40)
    h, w = 30, 40
    k = np.array([[35.0, 0, 19.5], [0, 35.0, 14.5], [0, 0, 1]])
    v, u = np.mgrid[0:h, 0:w]
    depth = (4.0 + 0.05 * v + 0.01 * u).astype(np.float32)  # the floor
    part = np.ones((h, w), np.uint32)
    part[:6] = 0  # sky
    part[6:10], depth[6:10] = 3, 9.0
    box = (v >= 12) & (v < 22) & (u >= 10) & (u < 26)
    part[box], depth[box] = 2, (3.0 + 0.02 * u[box]).astype(np.float32)
    depth[part == 0] = 0.0
    poses0 = np.stack([np.eye(4)] * 3)
    poses1 = poses0.copy()
    poses1[1, :3, :3] = quat_to_matrix(euler_deg_to_quat((3, -2, 8)))
    poses1[1, :3, 3] = [0.3, -0.1, 0.2]
    cam0 = np.eye(4)
    cam1 = np.eye(4)
    if camera_moves:
        cam1[:3, :3] = quat_to_matrix(euler_deg_to_quat((1, 2, -1)))
        cam1[:3, 3] = [0.2, 0.1, 0.5]
    rays = dist = None
    if lens:
        dist = np.array([-0.08, 0.01, 0.001, -0.002, 0.0])
        rays = pixel_rays(k, dist, w, h)
    a = FlowView(part, depth, k, cam0, poses0, 0.1, rays, dist)
    b = FlowView(part, depth - 0.5, k, cam1, poses1, 0.1, rays, dist)  # nearer in frame 1
    flow = rigid_flow(a, b)
    ref_flow, ref_status, ref_scene = _reference_flow(a, b)
    assert np.abs(flow.flow_px - ref_flow).max() < 1e-4
    assert np.abs(flow.scene_flow_w - ref_scene).max() < 1e-6
    assert np.array_equal(flow.status, ref_status)
    assert {VISIBLE, OCCLUDED} <= set(np.unique(flow.status[part == 2]).tolist())
    if camera_moves:
        assert (flow.status == OUTSIDE).any()
    else:  # still parts keep their pixel: flow 0 and a comparison with the same pixel
        assert np.all(flow.flow_px[part == 1] == 0) and np.all(flow.status[part == 1] == OCCLUDED)
    assert np.all(flow.status[part == 0] == 0) and np.all(flow.flow_px[part == 0] == 0)
    no_scene = rigid_flow(a, b, scene_flow=False)
    assert np.array_equal(no_scene.flow_px, flow.flow_px) and not no_scene.scene_flow_w.any()


def test_panoptic_and_normals_from_depth() -> None:
    inst = np.array([[0, 1, 2], [2, 3, 3]], np.uint16)
    class_of = np.array([0, 1, 2, 2])
    stuff = np.array([False, True, False])
    p = panoptic(inst, class_of, stuff)
    assert p[..., 0].tolist() == [[0, 1, 2], [2, 2, 2]]
    assert p[..., 1].tolist() == [[0, 0, 2], [2, 3, 3]]
    # a plane z = 2 + 0.5 x seen by a camera: normal (-0.5, 0, 1) normalized, toward the camera
    k = np.array([[40.0, 0, 19.5], [0, 40.0, 14.5], [0, 0, 1]])
    _, u = np.mgrid[0:30, 0:40]
    x_over_z = (u - 19.5) / 40.0
    depth = (2.0 / (1 - 0.5 * x_over_z)).astype(np.float32)
    n = normals_from_depth(depth, k)
    want = np.array([0.5, 0, -1]) / np.linalg.norm([0.5, 0, -1])
    assert np.abs(n[1:-1, 1:-1] - want).max() < 1e-3
    assert np.all(n[0] == 0)


def test_schema_of_labels_stuff_and_keypoints() -> None:
    from simgen.errors import SceneError

    base = """
schema_version: 1
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: cube, class: box, kind: box, size: [1, 1, 1], keypoints: {tip: [0.5, 0.5, 0.5], mid: [0, 0, {uniform: [0, 1]}]}}
sensors:
  - {kind: camera, name: cam, resolution: [8, 8], look_at: {eye: [3, 0, 1], target: [0, 0, 0]}%s}
"""
    scene = scene_from(base % "")
    assert scene.sensors[0].labels == ["boxes", "keypoints", "panoptic"]
    assert list(scene.objects[1].keypoints) == ["tip", "mid"]
    for extra, where in (
        (", labels: [boxes, boxes]", "labels lists a value twice"),
        (", labels: [depth]", "sensors[0].labels[0]"),
    ):
        with pytest.raises(SceneError, match=re_escape(where)):
            scene_from(base % extra)
    with pytest.raises(SceneError, match=r"stuff\[0\]: class 'wall' is not in the class table"):
        scene_from("stuff: [wall]\n" + base % "")
    with pytest.raises(SceneError, match="keypoints"):
        scene_from(base.replace("tip:", "'bad name':") % "")


def re_escape(s: str) -> str:
    import re

    return re.escape(s)
