"""Scatter placement (no overlap, inside the region, settled at rest) and ``require``
constraints (rejection sampling, clear errors when they cannot be met)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from simgen.errors import SamplingError
from simgen.random.sample import sample_episode
from simgen.run.prepare import prepare_episode
from simgen.sim.assets import AssetResolver
from simgen.sim.visuals import MeshLibrary
from simgen.sim.world import PhysicsWorld
from tests.conftest import ROOT, scene_from

TABLE = """
schema_version: 1
simulation: {duration: 0.3, timestep: 0.005}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: table, class: table, kind: box, size: [0.8, 0.6, 0.7], static: true, pose: {position: [0, 0, 0.35]}}
sensors:
  - {kind: camera, name: cam, resolution: [64, 48], look_at: {eye: [1.5, 0, 1.5], target: [0, 0, 0.7]}}
scatter:
  - name: clutter
    count: {randint: [6, 9]}
    objects:
      - {class: cube, kind: box, size: [0.06, 0.06, 0.06], mass: 0.2}
      - {class: can, kind: cylinder, radius: 0.03, length: 0.1, mass: 0.2}
      - {class: ball, kind: sphere, radius: 0.035, mass: 0.1}
    region: {on_top_of: {object: table, margin: 0.02}}
    orientation: {axis_rotation: {axis: [0, 0, 1]}}
    min_gap: 0.01
    SETTLE
  - name: blobs
    count: 4
    class: blob
    assets: {files: {folder: 'pybullet:random_urdfs', pattern: '*/*.urdf', pool_size: 30}}
    unique: true
    region: {on_top_of: {object: table, margin: 0.02}}
    orientation: {uniform_rotation: {}}
    min_gap: 0.01
    SETTLE
"""


def world_of(params):
    return PhysicsWorld(params, assets=AssetResolver.for_scene(ROOT), meshes=MeshLibrary())


def scattered(params) -> list[str]:
    return [n for p in params.scatter for n in p.objects]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_placed_objects_do_not_overlap_and_lie_on_the_table(seed: int) -> None:
    scene = scene_from(TABLE.replace("SETTLE", "settle: false"))
    params = prepare_episode(scene, seed, 0)
    names = scattered(params)
    assert 10 <= len(names) <= 13
    assert params.placement["scatter"]["blobs"]["count"] == 4
    assert all(t >= 1 for s in params.placement["scatter"].values() for t in s["tries"])
    assets = [o.asset for o in params.scene.objects if o.name.startswith("blobs_")]
    assert len(set(assets)) == 4  # unique: no asset twice
    with world_of(params) as w:
        c = w.client
        ids = {n: w.body(n).body_id for n in names}
        for a, b in itertools.combinations(names, 2):  # min_gap between every pair
            pts = c.getClosestPoints(ids[a], ids[b], distance=0.05)
            assert all(p[8] >= 0.01 - 1e-6 for p in pts), (a, b, min(p[8] for p in pts))
        table = w.body("table").body_id
        for n in names:  # resting just above the top, inside it (margin included)
            lo, hi = c.getAABB(ids[n])
            assert lo[2] >= 0.7 - 1e-6 and lo[2] <= 0.7 + 0.006, (n, lo)
            assert -0.38 - 1e-6 <= lo[0] and hi[0] <= 0.38 + 1e-6, n
            assert -0.28 - 1e-6 <= lo[1] and hi[1] <= 0.28 + 1e-6, n
            assert not [p for p in c.getClosestPoints(ids[n], table, 0.0) if p[8] < -1e-4]


def test_settled_objects_are_at_rest_at_the_episode_start() -> None:
    primitives = TABLE.split("  - name: blobs")[0]  # (some random_urdfs rock for seconds)
    scene = scene_from(primitives.replace("SETTLE", "settle: true"))
    params = prepare_episode(scene, 5, 3)
    assert params.placement["at_rest"] is True
    assert 0 < params.placement["settle_steps"] * 0.005 <= 2.0 + 1e-9
    names = scattered(params)
    with world_of(params) as w:
        s0 = w.object_states()
        for _ in range(60):  # 0.3 s later they have not moved
            w.step()
        s1 = w.object_states()
        for n in names:
            i = w.body(n).instance_id - 1
            assert np.linalg.norm(s1.position_w[i] - s0.position_w[i]) < 0.01, n
            assert s0.position_w[i][2] > 0.7  # still on the table
    pose = params.sampled["scatter[0].instances[0].pose"]
    assert np.allclose(pose["position"], params.scene.objects[2].pose.position)


def test_same_seed_same_placement_and_different_seeds_differ() -> None:
    scene = scene_from(TABLE.replace("SETTLE", "settle: true"))
    a, b = prepare_episode(scene, 7, 1), prepare_episode(scene, 7, 1)
    assert a.to_json() == b.to_json()
    assert prepare_episode(scene, 8, 1).to_json() != a.to_json()


def test_a_region_too_small_fails_with_a_clear_error() -> None:
    text = TABLE.replace("count: {randint: [6, 9]}", "count: 60").replace("SETTLE", "max_tries: 20")
    with pytest.raises(
        SamplingError, match=r"scatter 'clutter': could not place clutter_\d+ .*20 tries"
    ):
        prepare_episode(scene_from(text), 0, 0)


def test_along_a_line_evenly() -> None:
    scene = scene_from(
        """
schema_version: 1
objects: [{name: floor, class: floor, kind: plane}]
scatter:
  - name: cones
    count: 5
    objects: [{class: cone, kind: cylinder, radius: 0.1, length: 0.4}]
    region: {along: {points: [[0, 0, 0.2], [4, 0, 0.2], [4, 4, 0.2]], even: true}}
    settle: false
"""
    )
    params = prepare_episode(scene, 0, 0)
    pos = np.array([o.pose.position for o in params.scene.objects[1:]])
    s = (np.arange(5) + 0.5) / 5 * 8  # arc length along the 8 m polyline
    want = np.array([[x, 0, 0.2] if x <= 4 else [4, x - 4, 0.2] for x in s])
    assert np.allclose(pos, want, atol=1e-9)


OCCLUDED = """
schema_version: 1
randomization: {max_tries: MAX}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: wall, class: wall, kind: box, size: [0.1, 2, 1], static: true, pose: {position: [1, 0, 0.5]}}
  - name: target
    class: target
    kind: box
    size: [0.2, 0.2, 0.2]
    static: true
    pose: {position: [{uniform: [-0.5, 2.5]}, {uniform: [-2, 2]}, 0.1]}
  - {name: other, class: target, kind: sphere, radius: 0.1, static: true, pose: {position: [0, 3, 0.1]}}
sensors:
  - {kind: camera, name: cam, resolution: [80, 60], intrinsics: {fov_deg: 70}, look_at: {eye: [3, 0, 0.4], target: [0, 0, 0.3]}}
require: REQUIRE
"""


def test_visibility_constraint_by_rejection_sampling() -> None:
    from simgen.sim.constraints import visible_fraction

    scene = scene_from(
        OCCLUDED.replace("MAX", "200").replace(
            "REQUIRE", "[{visible: {object: target, camera: cam, min_fraction: 0.5}}]"
        )
    )
    tries = []
    for i in range(6):
        params = prepare_episode(scene, 1, i)
        tries.append(params.attempt + 1)
        with world_of(params) as w:
            cam = params.scene.sensors[0]
            assert visible_fraction(w, cam, "target") >= 0.5
            x = params.scene.objects[2].pose.position[0]
            y = params.scene.objects[2].pose.position[1]
            # behind the wall (x < 1, |y| < 1) the target is hidden from a camera at x = 3
            assert not (x < 0.85 and abs(y) < 0.8), (x, y)
        assert params.to_json() == prepare_episode(scene, 1, i).to_json()
    assert max(tries) > 1, "some samples were rejected"


@pytest.mark.gl
def test_visible_objects_are_in_the_rendered_image(sim) -> None:
    scene = scene_from(
        OCCLUDED.replace("MAX", "200").replace(
            "REQUIRE", "[{visible: {object: target, camera: cam, min_fraction: 0.3}}]"
        )
    )
    from simgen.sim.constraints import visible_fraction

    for i in range(3):
        params = sim.prepare(scene, 2, i)
        frames = [r for r in sim.run(params) if hasattr(r, "arrays")]
        assert np.count_nonzero(frames[0].instance == 3) > 0  # the target (instance 3) shows
    # and where the rays say hidden (behind the wall), no pixel shows it
    hidden = scene_from(
        OCCLUDED.replace("MAX", "1")
        .replace("REQUIRE", "[]")
        .replace("[{uniform: [-0.5, 2.5]}, {uniform: [-2, 2]}, 0.1]", "[0.5, 0.1, 0.1]")
    )
    params = sim.prepare(hidden, 0, 0)
    with world_of(params) as w:
        assert visible_fraction(w, params.scene.sensors[0], "target") == 0.0
    frames = [r for r in sim.run(params) if hasattr(r, "arrays")]
    assert np.count_nonzero(frames[0].instance == 3) == 0


def test_impossible_constraints_name_the_constraint_and_the_acceptance_rate() -> None:
    scene = scene_from(
        OCCLUDED.replace("MAX", "8").replace(
            "REQUIRE",
            "[{distance: {a: wall, b: other, min: 10}}, {visible: {object: other, camera: cam}}]",
        )
    )
    with pytest.raises(SamplingError) as info:
        prepare_episode(scene, 0, 4)
    msg = str(info.value)
    assert "episode 4: no sample met the scene's constraints in 8 tries" in msg
    assert "acceptance rate 0/8" in msg
    assert "require[0] (distance: 'wall' to 'other' >= 10.0 m) held in 0 of 8 tries (0%)" in msg
    assert "require[1] (visible: object 'other' from camera 'cam'" in msg
    assert "most often failed: require[0]" in msg


def test_in_view_counts_a_scatter_group() -> None:
    text = TABLE.replace("SETTLE", "settle: true").replace(
        "scatter:",
        "require: [{in_view: {camera: cam, min: 5, group: clutter, min_fraction: 0.2}}]\nscatter:",
    )
    from simgen.sim.constraints import visible_fraction

    params = prepare_episode(scene_from(text), 3, 0)
    with world_of(params) as w:
        cam = params.scene.sensors[0]
        seen = [n for n in params.scatter[0].objects if visible_fraction(w, cam, n) >= 0.2]
        assert len(seen) >= 5


def test_sample_episode_alone_marks_scatter_unplaced(sim=None) -> None:
    scene = scene_from(TABLE.replace("SETTLE", "settle: false"))
    params = sample_episode(scene, 0, 0)
    assert not params.placed
    from simgen.run.episode import Simulator

    with pytest.raises(ValueError, match="not yet placed"):
        next(Simulator().run(params))


def test_spline_passes_through_its_points() -> None:
    from simgen.scene.placement import AlongRegion
    from simgen.sim.placement import _polyline, point_on_polyline

    pts = [[0, 0, 0], [1, 1, 0], [2, 0, 0], [3, 1, 0.5]]
    region = AlongRegion.model_validate({"along": {"points": pts, "spline": True}})
    line = _polyline(region)
    for p in pts:  # Catmull-Rom interpolates its control points
        assert np.min(np.linalg.norm(line - np.asarray(p, float), axis=1)) < 1e-12
    assert np.allclose(point_on_polyline(line, 0.0), pts[0])
    assert np.allclose(point_on_polyline(line, 1.0), pts[-1])
    seg = np.linalg.norm(np.diff(line, axis=0), axis=1)
    assert seg.max() < 0.1  # densely sampled: 32 pieces per segment
