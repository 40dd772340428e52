"""Conventions written once and pinned: quaternion order, euler angles, frames, K, capture times."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simgen.geometry import (
    euler_deg_to_quat,
    invert_pose,
    look_at_cv,
    matrix_to_quat,
    pose_matrix,
    quat_to_matrix,
    wxyz_to_xyzw,
    xyzw_to_wxyz,
)
from simgen.random.seeding import episode_rng, episode_seed
from simgen.scene.sensors import CameraSensor
from simgen.sensors.camera import (
    R_BODY_OPTICAL,
    CaptureSchedule,
    camera_with_resolution,
    intrinsics_matrix,
    mount_in_parent,
    optical_pose_w,
)
from simgen.sim.quiet import import_pybullet

pb = import_pybullet()


@pytest.mark.parametrize(
    "rpy", [(0, 0, 0), (30, 0, 0), (0, 45, 0), (0, 0, 90), (10, -20, 130), (170, 80, -60)]
)
def test_euler_matches_pybullet(rpy: tuple[float, float, float]) -> None:
    ours = euler_deg_to_quat(rpy)
    theirs = xyzw_to_wxyz(pb.getQuaternionFromEuler(np.radians(rpy).tolist()))
    assert np.allclose(ours, theirs, atol=1e-12) or np.allclose(ours, -theirs, atol=1e-12)
    # R = Rz(yaw) Ry(pitch) Rx(roll)
    r, p, y = np.radians(rpy)
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    assert np.allclose(quat_to_matrix(ours), rz @ ry @ rx, atol=1e-12)


def test_quaternion_is_scalar_first_and_round_trips() -> None:
    q = euler_deg_to_quat((0, 0, 90))  # +90 degrees about z
    assert np.allclose(q, [math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)])
    assert np.allclose(quat_to_matrix(q) @ [1, 0, 0], [0, 1, 0])
    assert np.allclose(wxyz_to_xyzw(q), [0, 0, math.sin(math.pi / 4), math.cos(math.pi / 4)])
    rng = np.random.default_rng(3)
    for _ in range(50):
        qq = rng.normal(size=4)
        qq /= np.linalg.norm(qq)
        back = matrix_to_quat(quat_to_matrix(qq))
        assert np.allclose(back, qq) or np.allclose(back, -qq)


def test_pose_inverse() -> None:
    t = pose_matrix([1, 2, 3], euler_deg_to_quat((10, 20, 30)))
    assert np.allclose(invert_pose(t) @ t, np.eye(4))


def test_look_at_gives_opencv_axes() -> None:
    t = look_at_cv(eye=[0, 0, 0], target=[5, 0, 0], up=[0, 0, 1])
    x, y, z = t[:3, 0], t[:3, 1], t[:3, 2]
    assert np.allclose(z, [1, 0, 0])  # optical axis forward
    assert np.allclose(x, [0, -1, 0])  # image right = world -y when looking along +x
    assert np.allclose(y, [0, 0, -1])  # image down = world -z


def test_sensor_body_frame_identity_looks_along_x() -> None:
    cam = CameraSensor(name="c", resolution=(64, 48), pose={"position": (1, 2, 3)})
    t_w_c = optical_pose_w(mount_in_parent(cam))
    assert np.allclose(t_w_c[:3, 2], [1, 0, 0])
    assert np.allclose(t_w_c[:3, 1], [0, 0, -1])
    assert np.allclose(t_w_c[:3, 3], [1, 2, 3])
    assert np.allclose(R_BODY_OPTICAL @ [0, 0, 1], [1, 0, 0])
    # look_at and pose agree on the same mounting
    la = CameraSensor(
        name="c", resolution=(64, 48), look_at={"eye": (1, 2, 3), "target": (2, 2, 3)}
    )
    assert np.allclose(optical_pose_w(mount_in_parent(la)), t_w_c)


def test_intrinsics_from_fov_and_resolution_override() -> None:
    cam = CameraSensor(
        name="c",
        resolution=(640, 480),
        look_at={"eye": (1, 0, 0), "target": (0, 0, 0)},
        intrinsics={"fov_deg": 90},
    )
    k = intrinsics_matrix(cam)
    assert k[1, 1] == pytest.approx(240.0) and k[0, 0] == pytest.approx(240.0)
    assert (k[0, 2], k[1, 2]) == (319.5, 239.5)
    pin = CameraSensor(
        name="c",
        resolution=(640, 480),
        look_at={"eye": (1, 0, 0), "target": (0, 0, 0)},
        intrinsics={"fx": 500, "fy": 510, "cx": 319.5, "cy": 239.5},
    )
    half = intrinsics_matrix(camera_with_resolution(pin, 320, 240))
    assert np.allclose(half, [[250, 0, 159.5], [0, 255, 119.5], [0, 0, 1]])


def test_capture_schedule_is_half_open() -> None:
    s = CaptureSchedule.build(rate_hz=10, timestep=1 / 240, num_steps=240).steps
    assert s.tolist() == list(range(0, 240, 24))
    s = CaptureSchedule.build(rate_hz=240, timestep=1 / 240, num_steps=240).steps
    assert s.tolist() == list(range(240))
    s = CaptureSchedule.build(rate_hz=7, timestep=0.01, num_steps=100).steps  # t = k/7 snapped
    assert s.tolist() == [round(k / 7 / 0.01) for k in range(7)]
    with pytest.raises(ValueError, match="faster than the physics"):
        CaptureSchedule.build(rate_hz=500, timestep=1 / 240, num_steps=10)


def test_seeds_derive_from_base_seed_and_index_only() -> None:
    assert episode_seed(5, 3) == episode_seed(5, 3)
    assert len({episode_seed(5, i) for i in range(100)}) == 100
    assert episode_seed(5, 0) != episode_seed(6, 0)
    a = episode_rng(1, 2, "param", "objects[0].mass").random(4)
    b = episode_rng(1, 2, "param", "objects[0].mass").random(4)
    c = episode_rng(1, 2, "param", "objects[1].mass").random(4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
