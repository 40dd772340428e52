"""Physics against closed forms, object and link poses, and many episodes without leaks."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from simgen.geometry import euler_deg_to_quat, pose_matrix, transform_points
from simgen.random.sample import sample_episode
from simgen.sim.assets import AssetResolver
from simgen.sim.visuals import MeshLibrary
from simgen.sim.world import PhysicsWorld
from tests.conftest import ROOT, run_frames, scene_from

DROP = """
schema_version: 1
simulation: {duration: 0.75, timestep: 0.004166666666666667}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: ball, class: ball, kind: sphere, radius: 0.1, mass: 1.0, pose: {position: [0, 0, 2.1]}}
"""


def _states(scene_text: str, steps: int):
    scene = scene_from(scene_text)
    params = sample_episode(scene, 0, 0)
    with PhysicsWorld(params, assets=AssetResolver.for_scene(ROOT), meshes=MeshLibrary()) as w:
        out = []
        for _ in range(steps):
            out.append((w.time, w.object_states(), w.contacts()))
            w.step()
        return out


def test_free_fall_follows_z0_minus_half_g_t2_until_contact() -> None:
    states = _states(DROP, 180)
    g, z0, dt = 9.81, 2.1, 1 / 240
    h = z0 - 0.1  # drop height until the sphere touches the floor
    contact_t = math.sqrt(2 * h / g)
    checked = 0
    for n, (t, st, contacts) in enumerate(states):
        if t >= contact_t - 2 * dt:
            break
        z = st.position_w[1, 2]
        analytic = z0 - 0.5 * g * t * t
        assert abs(z - analytic) <= 0.01 * h, (t, z, analytic)
        # pybullet integrates semi-implicitly: z_n = z0 - g dt^2 n (n + 1) / 2, exactly
        assert z == pytest.approx(z0 - g * dt * dt * n * (n + 1) / 2, abs=1e-6)
        assert len(contacts.instance_a) == 0
        checked += 1
    assert checked > 100
    # and it does land: a contact between the ball (2) and the floor (1) after contact_t
    landed = [c for t, _, c in states if t > contact_t + 0.02]
    assert landed and any(
        {1, 2} == {int(a), int(b)}
        for c in landed
        for a, b in zip(c.instance_a, c.instance_b, strict=False)
    )


def test_initial_velocity_and_zero_gravity_is_uniform_motion() -> None:
    states = _states(
        """
schema_version: 1
simulation: {duration: 0.5, gravity: [0, 0, 0]}
objects:
  - {name: puck, class: puck, kind: cylinder, radius: 0.1, length: 0.05, pose: {position: [1, 2, 3]},
     velocity: {linear: [0.5, -0.2, 0.1], angular_deg: [0, 0, 90]}}
""",
        121,
    )
    t, st, _ = states[120]
    assert t == pytest.approx(0.5)
    assert np.allclose(st.position_w[0], [1 + 0.25, 2 - 0.1, 3 + 0.05], atol=1e-9)
    assert np.allclose(st.angular_velocity_w[0], [0, 0, math.pi / 2], atol=1e-9)
    # yaw advanced by 45 degrees
    assert np.allclose(st.quat_wxyz_w[0], euler_deg_to_quat((0, 0, 45)), atol=1e-6)


def test_object_pose_is_the_urdf_link_frame_not_the_center_of_mass(tmp_path) -> None:
    scene = scene_from("""
schema_version: 1
simulation: {duration: 0.1, gravity: [0, 0, 0]}
objects:
  - {name: robot, class: robot, kind: urdf, asset: tests/assets/two_link.urdf, static: true,
     pose: {position: [1, 2, 0.5], orientation: {euler_deg: [0, 0, 30]}}}
""")
    params = sample_episode(scene, 0, 0)
    with PhysicsWorld(params, assets=AssetResolver.for_scene(ROOT), meshes=MeshLibrary()) as w:
        st = w.object_states()
        assert np.allclose(st.position_w[0], [1, 2, 0.5], atol=1e-9)
        assert np.allclose(st.quat_wxyz_w[0], euler_deg_to_quat((0, 0, 30)), atol=1e-9)
        body = w.bodies[0]
        w.client.resetJointState(body.body_id, 0, math.radians(60))
        poses = w.part_poses_w()
        base_t = pose_matrix([1, 2, 0.5], euler_deg_to_quat((0, 0, 30)))
        # base box visual: 5 cm above the link frame
        assert np.allclose(poses[0][:3, 3], transform_points(base_t, [[0, 0, 0.05]])[0], atol=1e-9)
        # arm sphere: joint 25 cm up, rotated 60 degrees more, sphere 30 cm along the arm
        arm = base_t @ pose_matrix([0, 0, 0.25], euler_deg_to_quat((0, 0, 60)))
        assert np.allclose(poses[1][:3, 3], transform_points(arm, [[0.3, 0, 0]])[0], atol=1e-6)


@pytest.mark.gl
def test_every_urdf_link_renders_at_its_simulated_pose(sim) -> None:
    from simgen.run.capture import CaptureContext
    from simgen.sensors.camera import intrinsics_matrix, optical_pose_w, sensor_pose_w

    scene = scene_from("""
schema_version: 1
simulation: {duration: 0.1, gravity: [0, 0, 0]}
objects:
  - {name: robot, class: robot, kind: urdf, asset: tests/assets/two_link.urdf, static: true,
     pose: {position: [0, 0, 0], orientation: {euler_deg: [0, 0, 0]}}}
sensors:
  - {kind: camera, name: top, resolution: [200, 200], intrinsics: {fov_deg: 40},
     pose: {position: [0, 0, 2], orientation: {euler_deg: [0, 90, 0]}}}
""")
    params = sample_episode(scene, 0, 0)
    cam = scene.sensors[0]
    with PhysicsWorld(params, assets=AssetResolver.for_scene(ROOT), meshes=sim.meshes) as w:
        r = sim.renderer()
        r.load(params.scene, w.visual_parts)
        for angle in (0, 90, 200):
            w.client.resetJointState(w.bodies[0].body_id, 0, math.radians(angle))
            CaptureContext(
                world=w, renderer_factory=lambda: r, semantic_lut=np.zeros(2, np.uint16)
            ).sync_renderer()
            k = intrinsics_matrix(cam)
            t_w_c = optical_pose_w(sensor_pose_w(cam, w.attachment_pose_w))
            img = r.render(k, (200, 200), 0.05, 10, t_w_c)
            sphere_w = [
                0.3 * math.cos(math.radians(angle)),
                0.3 * math.sin(math.radians(angle)),
                0.25,
            ]
            p_c = transform_points(np.linalg.inv(t_w_c), [sphere_w])[0]
            u, v = (k @ p_c)[:2] / p_c[2]
            assert img.instance[round(v), round(u)] == 1
            assert img.depth_m[round(v), round(u)] == pytest.approx(2 - 0.25 - 0.06, abs=2e-3)


@pytest.mark.gl
def test_urdf_masks_match_pybullet_tiny_renderer(sim) -> None:
    """Our masks of multi-link URDFs agree with pybullet's own renderer (same camera)."""
    from simgen.sim.quiet import import_pybullet

    pb = import_pybullet()
    scene = scene_from("""
schema_version: 1
simulation: {duration: 0.01, timestep: 0.005, gravity: [0, 0, 0]}
objects:
  - {name: car, class: car, kind: urdf, asset: 'pybullet:racecar/racecar.urdf', static: true, pose: {position: [0, 0, 0.1]}}
  - {name: duck, class: duck, kind: urdf, asset: 'pybullet:duck_vhacd.urdf', static: true, scale: 4, pose: {position: [0.1, 0.5, 0.1], orientation: {euler_deg: [90, 0, 0]}}}
  - {name: table, class: table, kind: urdf, asset: 'pybullet:table/table.urdf', static: true, scale: 0.5, pose: {position: [0.3, -0.6, 0]}}
sensors:
  - {kind: camera, name: cam, resolution: [240, 180], intrinsics: {fov_deg: 55}, near: 0.05, far: 20,
     look_at: {eye: [1.4, 0.4, 1.2], target: [0.0, 0.0, 0.15]}}
""")
    params = sample_episode(scene, 0, 0)
    _, _, frames = run_frames(sim, scene)
    ours = frames[0].instance
    with PhysicsWorld(params, assets=AssetResolver.for_scene(ROOT), meshes=sim.meshes) as w:
        view = pb.computeViewMatrix([1.4, 0.4, 1.2], [0.0, 0.0, 0.15], [0, 0, 1])
        proj = pb.computeProjectionMatrixFOV(55, 240 / 180, 0.05, 20)
        _, _, _, _, seg = w.client.getCameraImage(
            240, 180, view, proj, renderer=pb.ER_TINY_RENDERER
        )
        seg = np.asarray(seg).reshape(180, 240)
        by_body = {b.body_id: b.instance_id for b in w.bodies}
        theirs = np.vectorize(lambda s: by_body.get(int(s), 0) if s >= 0 else 0)(seg)
    for inst in (1, 2, 3):
        a, b = ours == inst, theirs == inst
        iou = (a & b).sum() / max((a | b).sum(), 1)
        assert a.sum() > 200 and iou > 0.9, (inst, iou, a.sum(), b.sum())


@pytest.mark.slow
def test_many_episodes_in_one_process_do_not_leak(sim) -> None:
    import gc
    import resource

    scene = scene_from((ROOT / "scenes" / "tabletop.yaml").read_text(), ROOT / "scenes")
    from simgen.sensors.camera import scene_with_resolution

    scene = scene_with_resolution(scene, 64, 48)
    scene = scene.model_copy(
        update={"simulation": scene.simulation.model_copy(update={"duration": 0.2})}
    )

    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 1e6

    for i in range(5):
        run_frames(sim, scene, index=i)
    gc.collect()
    fd0, rss0 = fds(), rss_mb()
    for i in range(5, 35):
        run_frames(sim, scene, index=i)
    gc.collect()
    assert fds() <= fd0
    assert rss_mb() - rss0 < 40, (rss0, rss_mb())
    # every physics client was closed: a fresh connection gets a low id again
    from simgen.sim.quiet import import_pybullet

    pb = import_pybullet()
    cid = pb.connect(pb.DIRECT)
    pb.disconnect(cid)
    assert cid < 3
