"""The Python API: scenes built in Python equal scene files, an explicit registry of custom
samplers and actions (no global state), callbacks on step, frame and event, and the examples."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import simgen
from simgen import dist
from simgen.errors import SamplingError
from simgen.random.sample import sample_episode
from simgen.registry import Registry
from simgen.run.records import EpisodeEvents, SensorFrame
from tests.conftest import ROOT, scene_from

YAML = """
schema_version: 1
simulation: {duration: 0.3, timestep: 0.01}
objects:
  - {name: floor, class: floor, kind: plane}
  - name: ball
    class: ball
    kind: sphere
    radius: {uniform: [0.05, 0.1]}
    pose: {position: {in_box: {center: [0, 0, 1], size: [1, 1, 0]}}, orientation: {uniform_rotation: {}}}
    material: {color: {hsv: {hue_deg: [0, 90]}}}
scatter:
  - name: pebbles
    count: {randint: [1, 3]}
    objects: [{class: pebble, kind: box, size: [0.05, 0.05, 0.05]}]
    region: {box: {center: [0, 0, 0.5], size: [2, 2, 0]}}
    settle: false
scenarios:
  - name: kick
    probability: 0.5
    events: [{at: {uniform: [0.1, 0.2]}, action: {impulse: {object: ball, impulse: [0, 0, 1]}}}]
"""


def python_scene() -> simgen.Scene:
    return simgen.Scene(
        schema_version=1,
        simulation=simgen.Simulation(duration=0.3, timestep=0.01),
        objects=[
            simgen.Plane(name="floor", class_name="floor"),
            simgen.Sphere(
                name="ball",
                class_name="ball",
                radius=dist.uniform(0.05, 0.1),
                pose=simgen.Pose(
                    position=dist.in_box((0, 0, 1), (1, 1, 0)), orientation=dist.uniform_rotation()
                ),
                material=simgen.Material(color=dist.hsv(hue_deg=(0, 90))),
            ),
        ],
        scatter=[
            simgen.Scatter(
                name="pebbles",
                count=dist.randint(1, 3),
                objects=[simgen.Box(name="t", class_name="pebble", size=(0.05, 0.05, 0.05))],
                region={"box": {"center": (0, 0, 0.5), "size": (2, 2, 0)}},
                settle=False,
            )
        ],
        scenarios=[
            simgen.Scenario(
                name="kick",
                probability=0.5,
                events=[
                    simgen.Event(
                        at=dist.uniform(0.1, 0.2),
                        action={"impulse": {"object": "ball", "impulse": (0, 0, 1)}},
                    )
                ],
            )
        ],
    )


def test_a_scene_built_in_python_samples_like_its_file() -> None:
    a, b = scene_from(YAML), python_scene()
    for i in range(5):
        pa, pb = sample_episode(a, 3, i), sample_episode(b, 3, i)
        assert pa.sampled == pb.sampled
        assert pa.scenarios == pb.scenarios


SAMPLER_SCENE = """
schema_version: 1
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: box, class: box, kind: box, size: [0.1, 0.1, 0.1], pose: {position: {custom: {name: slot, args: {row: 2}}}}}
"""


def test_custom_samplers_come_from_an_explicit_registry() -> None:
    scene = scene_from(SAMPLER_SCENE)
    reg = Registry().add_sampler(
        "slot", lambda rng, row: [0.4 * int(rng.integers(4)), 0.0, 0.3 * row]
    )
    p = sample_episode(scene, 0, 0, registry=reg)
    x, y, z = p.scene.objects[1].pose.position
    assert x in (0.0, 0.4, 0.8, 1.2) and z == pytest.approx(0.6)
    assert p.sampled["objects[1].pose.position"] == [x, y, z]
    xs = {
        sample_episode(scene, 0, i, registry=reg).scene.objects[1].pose.position[0]
        for i in range(30)
    }
    assert len(xs) == 4  # seeded from the episode's stream: all slots over 30 episodes
    assert (
        sample_episode(scene, 0, 7, registry=reg).to_json()
        == sample_episode(scene, 0, 7, registry=reg).to_json()
    )
    # another registry with another function of the same name: independent, nothing global
    other = Registry().add_sampler("slot", lambda rng, row: [9.0, 9.0, 9.0])
    assert sample_episode(scene, 0, 0, registry=other).scene.objects[1].pose.position == (
        9.0,
        9.0,
        9.0,
    )
    assert sample_episode(scene, 0, 0, registry=reg).scene.objects[1].pose.position == (x, y, z)
    with pytest.raises(
        SamplingError, match="no sampler named 'slot' in the registry; registered: other"
    ):
        sample_episode(scene, 0, 0, registry=Registry().add_sampler("other", lambda rng: 0))
    with pytest.raises(SamplingError, match="needs a registry"):
        sample_episode(scene, 0, 0)
    with pytest.raises(ValueError, match="already registered"):
        reg.add_sampler("slot", lambda rng: 0)


@pytest.mark.gl
def test_callbacks_see_every_step_frame_and_event(sim) -> None:
    scene = scene_from(
        YAML.replace("probability: 0.5", "probability: 1.0")
        + "sensors:\n  - {kind: camera, name: cam, resolution: [32, 24], rate_hz: 20, look_at: {eye: [2, 0, 1], target: [0, 0, 0.5]}}\n"
    )
    steps, frames, events = [], [], []
    cb = simgen.Callbacks(
        on_step=lambda ctx: steps.append((ctx.step, ctx.time)),
        on_frame=frames.append,
        on_event=lambda ev, ctx: events.append((ev.name, ctx.step)),
    )
    records = list(sim.episode(scene, 0, 0, callbacks=cb))
    assert [s for s, _ in steps] == list(range(30))
    assert np.allclose([t for _, t in steps], np.arange(30) * 0.01)
    yielded = [r for r in records if isinstance(r, SensorFrame)]
    assert frames == yielded and len(frames) == 6
    labels = records[-1]
    assert isinstance(labels, EpisodeEvents)
    assert events == [("impulse", int(labels.start_step[0]))]
    # interactive iteration gives the same frames
    again = list(sim.frames(scene, 0, 0))
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(again, yielded, strict=True))


def run_example(*args: str) -> str:
    r = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.gl
def test_randomized_tabletop_example(tmp_path) -> None:
    out = tmp_path / "dr.h5"
    text = run_example(
        "examples/randomized_tabletop.py",
        "--episodes",
        "2",
        "--out",
        str(out),
        "--resolution",
        "48x36",
        "--duration",
        "0.2",
    )
    assert "wrote" in text and text.count("toys") == 2
    with simgen.open_dataset(out) as ds:
        assert len(ds) == 2
        for ep in ds:
            names = [o["name"] for o in ep.objects]
            assert sum(n.startswith("toy_") for n in names) >= 4
            assert ep.params["placement"]["scatter"]["toy"]["count"] >= 4


@pytest.mark.gl
def test_near_miss_example(tmp_path) -> None:
    out = tmp_path / "nm.h5"
    text = run_example(
        "examples/near_miss.py", "--episodes", "2", "--resolution", "32x24", "--out", str(out)
    )
    assert "pedestrian_appears" in text and "closest approach" in text
    with simgen.open_dataset(out) as ds:
        for ep in ds:
            names = [e["name"] for e in ep.events()]
            assert names[0] == "pedestrian_appears" and "brake" in names


def test_modify_a_loaded_scene_in_python() -> None:
    from pydantic import ValidationError

    from simgen.scene.loader import load_scene

    scene = load_scene(ROOT / "scenes" / "tabletop.yaml")
    cube = simgen.Box(
        name="extra",
        class_name="cube",
        size=(0.05, 0.05, 0.05),
        pose=simgen.Pose(position=dist.in_box((0, 0, 1), (0.4, 0.4, 0))),
    )
    more = scene.replace(objects=[*scene.objects, cube])
    assert more.base_dir == scene.base_dir and more.objects[-1].name == "extra"
    p = sample_episode(more, 0, 0)
    assert "objects[10].pose.position" in p.sampled
    with pytest.raises(ValidationError, match="duplicate object name"):  # validated
        scene.replace(objects=[*scene.objects, cube, cube])


def test_a_step_callback_can_fire_scene_actions() -> None:
    from simgen.scenario.spec import Force

    scene = scene_from(
        """
schema_version: 1
simulation: {duration: 0.5, timestep: 0.01, gravity: [0, 0, 0]}
objects: [{name: a, class: thing, kind: box, size: [0.2, 0.2, 0.2], mass: 2.0, pose: {position: [0, 0, 5]}}]
"""
    )
    vel = []

    def step(ctx) -> None:
        if ctx.step == 10:
            ctx.fire("push", Force(force={"object": "a", "force": (4.0, 0.0, 0.0)}), duration=0.1)
        vel.append(ctx.world.object_states().linear_velocity_w[0][0])

    records = list(simgen.episode(scene, 0, 0, callbacks=simgen.Callbacks(on_step=step)))
    labels = records[-1]
    assert isinstance(labels, EpisodeEvents)
    assert len(vel) == 50  # a step callback runs the whole episode
    assert vel[10] == 0 and np.isclose(vel[11], 0.02) and np.isclose(vel[20], 0.2)
    assert np.isclose(vel[49], 0.2)  # 10 steps of 4 N on 2 kg: 0.2 m/s
    assert labels.name == ["push"] and labels.source == ["python"] and labels.scenario == ["python"]
    assert labels.start_step.tolist() == [10] and labels.end_step.tolist() == [20]
