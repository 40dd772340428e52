"""Camera ground truth against analytic values: boxes, amodal/visibility, flow, normals, keypoints."""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import pytest

from simgen.geometry import euler_deg_to_quat, pose_matrix, quat_to_matrix, transform_points
from simgen.labels.amodal import unpack_masks
from tests.conftest import ROOT, run_frames, scene_from

pytestmark = pytest.mark.gl

F60_128 = 64.0 / math.tan(math.radians(30.0))  # focal length of a 128 px, 60 degree camera

# A thin crate (top face at z = 0.2) under a camera 3 m above it, and a plate at z = 1 whose
# edge lies in the plane x = 0 through the camera: it hides exactly the crate's x < 0 half.
HALF_HIDDEN = """
schema_version: 1
simulation: {duration: 0.01, timestep: 0.005, gravity: [0, 0, 0]}
objects:
  - {name: crate, class: crate, kind: box, size: [0.8, 0.8, 0.02], static: true, pose: {position: [0, 0, 0.19]}}
  - {name: plate, class: plate, kind: box, size: [1.0, 1.2, 0.02], static: true, pose: {position: [-0.5, 0, 1.0]}}
sensors:
  - {kind: camera, name: top, resolution: [128, 128], intrinsics: {fov_deg: 60}, labels: [boxes, amodal],
     look_at: {eye: [0, 0, 3], target: [0, 0, 0], up: [0, 1, 0]}}
  - {kind: camera, name: edge, resolution: [128, 128], intrinsics: {fov_deg: 60}, labels: [boxes, amodal],
     look_at: {eye: [EYE_X, 0, 3], target: [EYE_X, 0, 0], up: [0, 1, 0]}}
""".replace("EYE_X", repr(64.0 / F60_128 * 2.8))  # the crate's center projects onto the left border


def _frame(frames, name):
    return next(f for f in frames if f.sensor == name)


def test_half_hidden_box_has_visibility_one_half_and_amodal_box_of_the_whole(sim) -> None:
    _, _, frames = run_frames(sim, scene_from(HALF_HIDDEN))
    f = _frame(frames, "top")
    half = F60_128 * 0.4 / 2.8  # the top face's half width in pixels; cx = cy = 63.5
    lo, hi = math.ceil(63.5 - half), math.floor(63.5 + half) + 1
    assert (lo, hi) == (48, 80)
    assert f.box2d_amodal[0].tolist() == [lo, lo, hi, hi]  # the whole face, as if unoccluded
    assert f.box2d_tight[0].tolist() == [64, lo, hi, hi]  # only x > 0 is visible
    assert f.visibility[0] == pytest.approx(0.5, abs=0.02)
    assert f.visible_pixels[0] == 16 * 32 and f.amodal_pixels[0] == 32 * 32
    assert f.truncation[0] == 0.0
    masks = unpack_masks(f.amodal_masks, f.box2d_amodal, f.amodal_pixels, 128, 128)
    expected = np.zeros((128, 128), bool)
    expected[lo:hi, lo:hi] = True
    assert np.array_equal(masks[1], expected)
    assert np.all(masks[1][f.instance == 1])  # visible pixels lie in the amodal mask
    assert f.visibility[1] == 1.0  # the plate hides nothing of itself
    assert np.array_equal(masks[2], f.instance == 2)


def test_box_cut_by_the_image_border_has_truncation_one_half(sim) -> None:
    _, _, frames = run_frames(sim, scene_from(HALF_HIDDEN))
    f = _frame(frames, "edge")
    assert f.truncation[0] == pytest.approx(0.5, abs=1e-9)  # 16 of 32 columns inside
    assert f.box2d_amodal[0].tolist() == [0, 48, 16, 80]
    assert f.visibility[0] == 1.0
    assert f.visible_pixels[1] == 0 and f.amodal_pixels[1] == 0  # the plate is out of view
    assert math.isnan(f.visibility[1])


MOVING = """
schema_version: 1
simulation: {duration: 0.3, gravity: [0, 0, 0]}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: mover, class: crate, kind: box, size: [0.4, 0.4, 0.02], pose: {position: [0, 0, 0.19]},
     velocity: {linear: [0.5, 0, 0]}}
  - {name: rig, class: rig, kind: sphere, radius: 0.01, pose: {position: [0, 0, 3.5]},
     velocity: {linear: [0, 0.5, 0]}}
sensors:
  - {kind: camera, name: still, resolution: [128, 96], intrinsics: {fov_deg: 60}, labels: [flow],
     look_at: {eye: [0, 0, 3], target: [0, 0, 0], up: [0, 1, 0]}}
  - {kind: camera, name: riding, resolution: [128, 96], intrinsics: {fov_deg: 60}, labels: [flow],
     attach_to: {object: rig}, look_at: {eye: [0, 0, -0.3], target: [0, 0, -1], up: [0, 1, 0]}}
"""


def test_flow_of_a_translating_object_equals_its_projected_displacement(sim) -> None:
    _, states, frames = run_frames(sim, scene_from(MOVING))
    still = [f for f in frames if f.sensor == "still"]
    assert [f.index for f in still] == [0, 1, 2]
    f_px = 48.0 / math.tan(math.radians(30.0))  # 96 px high, 60 degrees
    for a, b in itertools.pairwise(still):
        dx = states[b.tick].objects.position_w[1, 0] - states[a.tick].objects.position_w[1, 0]
        assert dx == pytest.approx(0.05, rel=1e-9)
        top = a.instance == 2
        # the mover's top face is 2.8 m from the camera: every pixel moves f dx / z to the right
        assert np.abs(a.flow_fwd_px[top] - [f_px * dx / 2.8, 0.0]).max() < 1e-4
        assert np.all(a.flow_fwd_status[top] == 1)
        back = b.instance == 2
        assert np.abs(b.flow_bwd_px[back] + [f_px * dx / 2.8, 0.0]).max() < 1e-4
        assert np.abs(a.scene_flow_fwd_w[top] - [dx, 0, 0]).max() < 1e-6
        floor = a.instance == 1
        assert np.abs(a.flow_fwd_px[floor]).max() < 1e-9
        assert np.abs(a.scene_flow_fwd_w[floor]).max() < 1e-9
        # floor pixels the mover covers in the next frame are occluded there, the rest visible
        covered = floor & (b.instance == 2)
        assert covered.sum() >= 10
        assert np.all(a.flow_fwd_status[covered] == 2)
        assert np.all(a.flow_fwd_status[floor & ~covered] == 1)
    assert np.all(still[0].flow_bwd_status == 0) and np.all(still[-1].flow_fwd_status == 0)


def test_flow_of_a_moving_camera_over_a_static_floor(sim) -> None:
    _, states, frames = run_frames(sim, scene_from(MOVING))
    riding = [f for f in frames if f.sensor == "riding"]
    f_px = 48.0 / math.tan(math.radians(30.0))
    for a, b in itertools.pairwise(riding):
        dy = states[b.tick].objects.position_w[2, 1] - states[a.tick].objects.position_w[2, 1]
        dx = states[b.tick].objects.position_w[1, 0] - states[a.tick].objects.position_w[1, 0]
        # the camera moves +y (image up): static points move down the image by f dy / z
        floor = (a.instance == 1) & (a.flow_fwd_status == 1)
        assert np.abs(a.flow_fwd_px[floor] - [0.0, f_px * dy / 3.2]).max() < 1e-4
        top = a.instance == 2
        assert np.abs(a.flow_fwd_px[top] - [f_px * dx / 3.0, f_px * dy / 3.0]).max() < 1e-4


def test_normals_of_a_plane_and_a_sphere(sim) -> None:
    scene = scene_from("""
schema_version: 1
simulation: {duration: 0.01, timestep: 0.005, gravity: [0, 0, 0]}
objects:
  - {name: ground, class: ground, kind: plane}
  - {name: ball, class: ball, kind: sphere, radius: 0.3, static: true, pose: {position: [0.2, 0.1, 0.3]}}
sensors:
  - {kind: camera, name: cam, resolution: [120, 90], labels: [normals], antialias: 1,
     look_at: {eye: [2, -1.5, 1.6], target: [0, 0, 0.2]}}
  - {kind: camera, name: aa, resolution: [120, 90], labels: [normals], antialias: 4,
     look_at: {eye: [2, -1.5, 1.6], target: [0, 0, 0.2]}}
""")
    _, _, frames = run_frames(sim, scene)
    for f in frames:  # one-pass (antialias 1) and separate label pass (antialias 4)
        t_c_w = f.extrinsics_w2c
        n = f.normals_c
        ground = f.instance == 1
        assert ground.sum() > 2000
        assert np.abs(n[ground] - t_c_w[:3, :3] @ [0, 0, 1]).max() < 1e-5
        assert np.all(n[f.instance == 0] == 0)
        ball = f.instance == 2
        v, u = np.nonzero(ball)
        z = f.depth_m[v, u]
        k_inv = np.linalg.inv(f.K)
        p_c = (np.stack([u, v, np.ones_like(u)], 1) @ k_inv.T) * z[:, None]
        center_c = transform_points(t_c_w, [[0.2, 0.1, 0.3]])[0]
        expected = (p_c - center_c) / np.linalg.norm(p_c - center_c, axis=1, keepdims=True)
        angle = np.degrees(np.arccos(np.clip(np.sum(n[v, u] * expected, 1), -1, 1)))
        assert np.median(angle) < 0.5 and angle.max() < 4.0  # a 48 x 48 faceted sphere


KEYPOINTS = """
schema_version: 1
simulation: {duration: 0.01, timestep: 0.005, gravity: [0, 0, 0]}
objects:
  - name: crate
    class: crate
    kind: box
    size: [0.6, 0.4, 0.3]
    static: true
    pose: {position: [0.2, -0.1, 0.5], orientation: {euler_deg: [15, -25, 40]}}
    keypoints: {near: [0.3, 0.2, 0.15], far: [-0.3, 0.2, 0.15], inside: [0, 0, 0], away: [0, 0, 9]}
sensors:
  - {kind: camera, name: cam, resolution: [160, 120], intrinsics: {fov_deg: 50}, labels: [boxes, keypoints],
     look_at: {eye: [2.2, 1.4, 1.4], target: [0, 0, 0.4]}}
"""


def test_keypoints_project_like_opencv_with_visibility_flags(sim) -> None:
    header, _, frames = run_frames(sim, scene_from(KEYPOINTS))
    f = frames[0]
    assert header.objects[0].keypoints == {
        "near": (0.3, 0.2, 0.15),
        "far": (-0.3, 0.2, 0.15),
        "inside": (0.0, 0.0, 0.0),
        "away": (0.0, 0.0, 9.0),
    }
    t_w_o = pose_matrix([0.2, -0.1, 0.5], euler_deg_to_quat((15, -25, 40)))
    pts_w = transform_points(t_w_o, [[0.3, 0.2, 0.15], [-0.3, 0.2, 0.15], [0, 0, 0], [0, 0, 9]])
    ext = f.extrinsics_w2c
    rvec, _ = cv2.Rodrigues(ext[:3, :3])
    expected, _ = cv2.projectPoints(pts_w, rvec, ext[:3, 3], f.K, None)
    assert np.abs(f.keypoints_uv - expected.reshape(-1, 2)).max() < 1e-3
    # the camera sees the crate's +x and -z faces: a corner on +x is seen; a corner on none of
    # them and the center are hidden by the crate itself; the point 9 m up is outside the image
    assert f.keypoints_visibility.tolist() == [2, 1, 1, 0]


def test_3d_boxes_in_world_and_camera_frames_and_projected_corners(sim) -> None:
    _, _, frames = run_frames(sim, scene_from(KEYPOINTS))
    f = frames[0]
    q = euler_deg_to_quat((15, -25, 40))
    assert np.allclose(f.box3d_size[0], [0.6, 0.4, 0.3], atol=1e-12)
    assert np.allclose(f.box3d_center_w[0], [0.2, -0.1, 0.5], atol=1e-9)
    assert np.allclose(quat_to_matrix(f.box3d_quat_wxyz_w[0]), quat_to_matrix(q), atol=1e-9)
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    corners_w = transform_points(pose_matrix([0.2, -0.1, 0.5], q), signs * [0.3, 0.2, 0.15])
    ext = f.extrinsics_w2c
    rvec, _ = cv2.Rodrigues(ext[:3, :3])
    expected, _ = cv2.projectPoints(corners_w, rvec, ext[:3, 3], f.K, None)
    assert np.abs(f.box3d_corners_uv[0] - expected.reshape(-1, 2)).max() < 1e-3
    assert np.allclose(f.box3d_center_c[0], transform_points(ext, [[0.2, -0.1, 0.5]])[0])
    # the tight box is the mask's extent, half-open
    v, u = np.nonzero(f.instance == 1)
    assert f.box2d_tight[0].tolist() == [u.min(), v.min(), u.max() + 1, v.max() + 1]
    assert f.visible_pixels[0] == len(u)


def test_articulated_object_box_bounds_every_link(sim) -> None:
    scene = scene_from(
        """
schema_version: 1
simulation: {duration: 0.01, timestep: 0.005, gravity: [0, 0, 0]}
objects:
  - {name: arm, class: robot, kind: urdf, asset: tests/assets/two_link.urdf, static: true,
     pose: {position: [0.5, 0.2, 0], orientation: {euler_deg: [0, 0, 30]}}}
sensors:
  - {kind: camera, name: cam, resolution: [64, 48], labels: [boxes], look_at: {eye: [2, -1, 1.5], target: [0.5, 0.2, 0.1]}}
""",
        ROOT,
    )
    _, _, frames = run_frames(sim, scene)
    f = frames[0]
    # base box x, y in [-0.1, 0.1], z in [0, 0.1]; arm sphere (r 0.06) at (0.3, 0, 0.25)
    size = f.box3d_size[0]
    assert size == pytest.approx([0.46, 0.2, 0.31], abs=2e-4)
    center_o = np.array([0.13, 0.0, 0.155])
    t_w_o = pose_matrix([0.5, 0.2, 0], euler_deg_to_quat((0, 0, 30)))
    assert f.box3d_center_w[0] == pytest.approx(transform_points(t_w_o, [center_o])[0], abs=2e-4)


def test_panoptic_marks_stuff_without_instances(sim, tmp_path) -> None:
    import h5py

    from simgen.run.batch import render_dataset

    text = """
schema_version: 1
simulation: {duration: 0.01, timestep: 0.005}
stuff: [wall]
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: wall, class: wall, kind: box, size: [0.1, 4, 2], static: true, pose: {position: [-1, 0, 1]}}
  - {name: cube, class: cube, kind: box, size: [0.3, 0.3, 0.3], static: true, pose: {position: [0, 0, 0.15]}}
sensors:
  - {kind: camera, name: cam, resolution: [64, 48], labels: [panoptic], look_at: {eye: [2, 0.5, 1], target: [-0.5, 0, 0.5]}}
"""
    scene = scene_from(text)
    assert scene.class_is_stuff() == [False, False, True, False]  # an explicit list wins
    _, _, frames = run_frames(sim, scene)
    p = frames[0].panoptic
    assert np.array_equal(p[..., 0], frames[0].semantic)
    assert set(np.unique(frames[0].instance).tolist()) == {0, 1, 2, 3}
    assert set(np.unique(p[..., 1]).tolist()) == {0, 1, 3}  # the wall is stuff, the rest things
    default = scene_from(text.replace("stuff: [wall]\n", ""))
    assert default.class_is_stuff() == [False, True, False, False]  # plane classes by default
    render_dataset(scene, tmp_path / "p.h5", episodes=[0], seed=0, simulator=sim)
    with h5py.File(tmp_path / "p.h5") as fh:
        assert fh["class_is_stuff"][()].tolist() == [False, False, True, False]


# Twelve objects of different sizes and shapes, none in front of another: every amodal mask
# (drawn into its own window of one shared framebuffer, an atlas) must equal the object's
# visible mask in the full frame, pixel for pixel.
MANY = """
schema_version: 1
simulation: {duration: 0.01, timestep: 0.005, gravity: [0, 0, 0]}
sensors:
  - {kind: camera, name: top, resolution: [160, 120], intrinsics: {fov_deg: 60}, labels: [boxes, amodal],
     look_at: {eye: [0, 0, 4], target: [0, 0, 0], up: [0, 1, 0]}}
objects:
""" + "".join(
    f"  - {{name: o{i}, class: c, kind: {'sphere, radius' if i % 2 else 'box, size'}: "
    f"{0.05 + 0.03 * i if i % 2 else [0.1 + 0.05 * i, 0.08 + 0.02 * i, 0.05]}, static: true, "
    f"pose: {{position: [{-1.8 + 0.9 * (i % 5)}, {-1.0 + 1.0 * (i // 5)}, 0.1], "
    f"orientation: {{euler_deg: [0, 0, {17 * i}]}}}}}}\n"
    for i in range(12)
)


def test_amodal_masks_of_unoccluded_objects_equal_their_visible_masks(sim) -> None:
    _, _, frames = run_frames(sim, scene_from(MANY))
    f = _frame(frames, "top")
    masks = unpack_masks(f.amodal_masks, f.box2d_amodal, f.amodal_pixels, 120, 160)
    seen = 0
    for inst in range(1, 13):
        visible = f.instance == inst
        if visible.any():
            seen += 1
            assert np.array_equal(masks[inst], visible), inst
            assert f.visibility[inst - 1] == 1.0
    assert seen == 12


def test_pack_windows_places_every_window_once_without_overlap() -> None:
    from simgen.render.renderer import pack_windows

    rng = np.random.default_rng(3)
    sizes = [(int(w), int(h)) for w, h in rng.integers(1, 90, size=(40, 2))] + [(300, 20)]
    atlases = pack_windows(sizes, 256)
    placed = sorted(i for members, _, _ in atlases for i in members)
    assert placed == list(range(len(sizes)))
    for members, corners, (aw, ah) in atlases:
        cover = np.zeros((ah, aw), np.int32)
        for i, (x, y) in zip(members, corners, strict=True):
            w, h = sizes[i]
            assert x >= 0 and y >= 0 and x + w <= aw and y + h <= ah
            cover[y : y + h, x : x + w] += 1
        assert cover.max() == 1
        assert ah <= 256 or len(members) == 1
