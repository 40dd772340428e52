"""Scenario events fire at their exact step, triggers fire when and only when their condition
starts to hold, probabilities and quotas hold over the dataset, labels are stored."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from simgen.errors import SamplingError
from simgen.random.sample import sample_episode
from simgen.run.episode import Callbacks, Simulator
from simgen.run.records import EpisodeEvents, SensorFrame, StateRecord
from tests.conftest import scene_from

FLOAT = """
schema_version: 1
simulation: {duration: 1.0, timestep: 0.01, gravity: [0, 0, 0]}
objects:
  - {name: a, class: thing, kind: box, size: [0.2, 0.2, 0.2], mass: 2.0, pose: {position: [0, 0, 5]}}
  - {name: b, class: thing, kind: sphere, radius: 0.1, mass: 0.5, pose: {position: [3, 0, 5]}}
scenarios:
  - name: s
    events: EVENTS
    triggers: TRIGGERS
"""


def run_steps(text: str, seed: int = 0, index: int = 0, registry=None):
    """States of every step (via the step callback) and the episode's event labels."""
    scene = scene_from(text)
    states: list = []
    labels = None
    with Simulator(registry=registry) as sim:
        cb = Callbacks(on_step=lambda ctx: states.append(ctx.world.object_states()))
        for rec in sim.episode(scene, seed, index, num_episodes=index + 1, callbacks=cb):
            if isinstance(rec, EpisodeEvents):
                labels = rec
    return states, labels


def scenario(events: str = "[]", triggers: str = "[]") -> str:
    return FLOAT.replace("EVENTS", events).replace("TRIGGERS", triggers)


def test_events_fire_at_their_exact_step() -> None:
    states, ev = run_steps(
        scenario(
            """
      - {at: 0.254, action: {set_velocity: {object: a, linear: [1, 0, 0]}}}
      - {at: 0.5, action: {teleport: {object: b, pose: {position: [0, 2, 1]}}}}
      - {at: 0.6, action: {impulse: {object: b, impulse: [0, 0, 0.25]}}}
      - {at: 0.7, duration: 0.1, action: {force: {object: a, force: [0, 4, 0]}}}
      - {at: 1.5, action: {remove: {object: a}}}"""
        )
    )
    assert len(states) == 100
    va = np.array([s.linear_velocity_w[0] for s in states])
    xa = np.array([s.position_w[0] for s in states])
    # set_velocity at round(0.254 / 0.01) = step 25: visible in the state at step 25
    assert np.all(va[:25] == 0) and np.allclose(va[25], [1, 0, 0])
    assert xa[24][0] == 0 and np.isclose(xa[30][0], 0.05)
    # teleport at step 50: the state at 50 is at the new pose, at rest
    xb = np.array([s.position_w[1] for s in states])
    assert np.allclose(xb[49], [3, 0, 5]) and np.allclose(xb[50], [0, 2, 1])
    # impulse at step 60 changes the velocity between steps 60 and 61 by J / m exactly
    vb = np.array([s.linear_velocity_w[1] for s in states])
    assert np.allclose(vb[60], 0) and np.allclose(vb[61], [0, 0, 0.25 / 0.5], atol=1e-9)
    # force F for 10 steps from step 70: velocity grows by F/m dt per step, then stays
    dv = 4 / 2.0 * 0.01
    assert np.isclose(va[70][1], 0) and np.isclose(va[71][1], dv) and np.isclose(va[80][1], 10 * dv)
    assert np.isclose(va[99][1], 10 * dv)
    # labels: fired events with their steps; the one after the end never fired
    assert ev.name == ["set_velocity", "teleport", "impulse", "force"]
    assert ev.start_step.tolist() == [25, 50, 60, 70]
    assert ev.end_step.tolist() == [26, 51, 61, 80]
    assert np.allclose(ev.start_time, [0.25, 0.5, 0.6, 0.7])
    assert ev.source == ["timeline"] * 4 and ev.scenario == ["s"] * 4


def test_spawn_and_remove() -> None:
    states, ev = run_steps(
        scenario(
            """
      - {at: 0.3, action: {remove: {object: b}}}
      - {at: 0.4, action: {spawn: {object: {name: c, class: thing, kind: sphere, radius: 0.1, pose: {position: [1, 0, 0]}, velocity: {linear: [0, 1, 0]}}, relative_to: a}}}"""
        )
    )
    pos = np.array([s.position_w for s in states])
    assert pos.shape == (100, 3, 3)  # a, b, then the spawnable c
    assert np.all(np.isfinite(pos[:30, 1])) and np.all(np.isnan(pos[30:, 1]))
    assert np.all(np.isnan(pos[:40, 2])) and np.allclose(
        pos[40, 2], [1, 0, 5]
    )  # a's frame + [1, 0, 0]
    assert np.isclose(pos[50, 2][1], 0.1)  # moving at 1 m/s along a's y axis
    assert ev.action == ["remove", "spawn"]


def falling_ball(trigger: str) -> str:
    return """
schema_version: 1
simulation: {duration: 0.8, timestep: 0.004166666666666667}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: ball, class: ball, kind: sphere, radius: 0.1, mass: 1.0, pose: {position: [0, 0, 2.1]}}
scenarios:
  - name: watch
    triggers: [TRIGGER]
""".replace("TRIGGER", trigger)


def test_trigger_below_z_fires_at_the_first_step_below() -> None:
    states, ev = run_steps(
        falling_ball("{name: low, when: {below_z: {object: ball, z: 1.5}}, action: {mark: {}}}")
    )
    g, dt, z0 = 9.81, 1 / 240, 2.1
    # pybullet: z_n = z0 - g dt^2 n (n + 1) / 2
    n = next(n for n in range(1000) if z0 - g * dt * dt * n * (n + 1) / 2 < 1.5)
    z = np.array([s.position_w[1][2] for s in states])
    assert z[n] < 1.5 <= z[n - 1]
    assert ev.name == ["low"] and ev.start_step.tolist() == [n] and ev.source == ["trigger"]


def test_trigger_contact_fires_exactly_when_the_contact_starts() -> None:
    scene = scene_from(
        falling_ball("{name: touch, when: {contact: {a: ball, b: floor}}, action: {mark: {}}}")
    )
    touching = []
    labels = None
    with Simulator() as sim:
        cb = Callbacks(
            on_step=lambda ctx: touching.append(len(ctx.world.contacts().instance_a) > 0)
        )
        for rec in sim.episode(scene, 0, 0, callbacks=cb):
            if isinstance(rec, EpisodeEvents):
                labels = rec
    first = touching.index(True)
    assert labels.start_step.tolist() == [first]
    t_contact = math.sqrt(2 * 2.0 / 9.81)
    assert abs(first / 240 - t_contact) < 0.02


def test_triggers_fire_when_and_only_when_the_condition_starts_to_hold() -> None:
    # a moves at 1 m/s along x; at 0.45 s it is teleported back to x = 0: it enters the region
    # x in [0.2, 0.4] twice. 'every' fires on both entries, 'first' once, 'late' 0.1 s later.
    text = scenario(
        """
      - {at: 0, action: {set_velocity: {object: a, linear: [1, 0, 0]}}}
      - {at: 0.45, action: {teleport: {object: a, pose: {position: [0, 0, 5]}, keep_velocity: true}}}""",
        """
      - {name: every, once: false, when: {in_region: {object: a, box: {center: [0.3, 0, 5], size: [0.2, 1, 1]}}}, action: {mark: {}}}
      - {name: first, when: {in_region: {object: a, box: {center: [0.3, 0, 5], size: [0.2, 1, 1]}}}, action: {mark: {}}}
      - {name: late, delay: 0.1, when: {in_region: {object: a, box: {center: [0.3, 0, 5], size: [0.2, 1, 1]}}}, action: {mark: {}}}
      - {name: near, when: {distance_below: {a: a, b: b, distance: 2.75}}, action: {mark: {}}}""",
    )
    states, ev = run_steps(text)
    x = np.array([s.position_w[0][0] for s in states])
    inside = (x >= 0.2 - 1e-12) & (x <= 0.4 + 1e-12)
    edges = [s for s in range(len(x)) if inside[s] and (s == 0 or not inside[s - 1])]
    assert len(edges) == 2
    fired = {}
    for name, step in zip(ev.name, ev.start_step.tolist(), strict=True):
        fired.setdefault(name, []).append(step)
    assert fired["every"] == edges
    assert fired["first"] == edges[:1]
    assert fired["late"] == [edges[0] + 10]
    d = np.array([np.linalg.norm(s.position_w[0] - s.position_w[1]) for s in states])
    assert fired["near"] == [int(np.argmax(d < 2.75))]


def test_scenario_probability_over_200_episodes() -> None:
    scene = scene_from(
        scenario("[{at: 0.1, action: {mark: {}}}]").replace(
            "name: s\n", "name: s\n    probability: 0.3\n"
        )
    )
    hits = sum(sample_episode(scene, 11, i).scenarios["s"] for i in range(200))
    lo, hi = stats.binom.interval(0.999, 200, 0.3)
    assert lo <= hits <= hi
    assert stats.binomtest(hits, 200, 0.3).pvalue > 0.001


def test_quotas_are_exact_and_the_same_for_an_episode_alone() -> None:
    text = scenario("[{at: 0.1, action: {mark: {}}}]").replace(
        "name: s\n", "name: s\n    quota: 0.2\n"
    )
    scene = scene_from(text)
    for n in (50, 37, 200):
        chosen = [i for i in range(n) if sample_episode(scene, 3, i, num_episodes=n).scenarios["s"]]
        assert len(chosen) == round(0.2 * n)
    chosen = {i for i in range(50) if sample_episode(scene, 3, i, num_episodes=50).scenarios["s"]}
    other = {i for i in range(50) if sample_episode(scene, 4, i, num_episodes=50).scenarios["s"]}
    assert chosen != other  # a seeded permutation, not the first 20%
    with pytest.raises(SamplingError, match="quota"):
        sample_episode(scene, 3, 0)


def test_fall_off_table_template_pushes_it_off() -> None:
    text = """
schema_version: 1
simulation: {duration: 1.5, timestep: 0.005}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: table, class: table, kind: box, size: [1.2, 0.8, 0.7], static: true, pose: {position: [0, 0, 0.35]}}
  - {name: mug, class: mug, kind: cylinder, radius: 0.04, length: 0.1, mass: 0.3, pose: {position: [0.1, 0.05, 0.75]}}
scenarios:
  - name: falls
    template: {fall_off_table: {object: mug, surface: table, at: 0.2}}
"""
    states, ev = run_steps(text)
    assert ev.name == ["push", "fell"] and ev.start_step[0] == 40
    z = np.array([s.position_w[2][2] for s in states])
    assert z[-1] < 0.2  # on the floor
    assert np.all(z[: ev.start_step[1]] >= 0.7 - 0.1) and z[ev.start_step[1]] < 0.6


def test_pedestrian_crossing_template() -> None:
    text = """
schema_version: 1
simulation: {duration: 2.0, timestep: 0.01}
objects:
  - {name: road, class: road, kind: plane}
  - {name: car, class: vehicle, kind: box, size: [4, 1.8, 1.4], mass: 1500, friction: 0, pose: {position: [0, 0, 0.7], orientation: {euler_deg: [0, 0, 30]}}, velocity: {linear: [6.928, 4, 0]}}
scenarios:
  - name: ped
    template: {pedestrian_crossing: {vehicle: car, at: 0.3, ahead: 10, lateral: 3, speed: 2, near_miss: 4}}
"""
    states, ev = run_steps(text)
    pos = np.array([s.position_w for s in states])
    assert pos.shape[1] == 3 and np.all(np.isnan(pos[:30, 2]))
    yaw = math.radians(30)
    r = np.array([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
    want = pos[30, 1, :2] + r @ [10, 3]
    assert np.allclose(pos[30, 2, :2], want, atol=1e-6)
    assert math.isclose(pos[30, 2, 2], 0.85 + 0.002, abs_tol=1e-3)  # standing on the road
    assert ev.name[0] == "pedestrian_appears" and "near_miss" in ev.name


def test_templates_expand_into_events() -> None:
    scene = scene_from(
        """
schema_version: 1
simulation: {duration: 2.0}
objects: [{name: floor, class: floor, kind: plane}]
sensors:
  - {kind: camera, name: cam, resolution: [32, 24], look_at: {eye: [2, 0, 1], target: [0, 0, 0]}}
scenarios:
  - {name: fog, template: {fog_bank: {at: 0.5, density: 0.1}}}
  - {name: dirt, template: {lens_occlusion: {camera: cam, at: {uniform: [0.1, 0.2]}, duration: 0.3}}}
  - {name: drop, template: {sensor_dropout: {sensor: cam, at: 1.0, duration: 0.2}}}
"""
    )
    p = sample_episode(scene, 0, 0)
    fog, dirt, drop = p.scene.scenarios
    assert fog.events[0].action.weather == {"fog_density": 0.1} and fog.events[0].duration == 1.5
    assert dirt.events[0].action.camera_fault.kind == "occlusion"
    assert (
        0.1 <= dirt.events[0].at <= 0.2 and "scenarios[1].template.lens_occlusion.at" in p.sampled
    )
    assert drop.events[0].action.camera_fault.kind == "blackout"


def test_custom_actions_and_weather_hook_from_the_registry() -> None:
    from simgen.registry import Registry

    calls = []
    reg = Registry()
    reg.add_action("kick", lambda ctx, dv: ctx.set_velocity("a", linear=[dv, 0, 0]))
    reg.weather = lambda ctx, **p: calls.append((ctx.step, p))
    text = scenario(
        """
      - {at: 0.2, action: {call: {name: kick, args: {dv: 2.0}}}}
      - {at: 0.3, action: {weather: {fog_density: 0.05}}}"""
    )
    states, ev = run_steps(text, registry=reg)
    assert np.allclose(states[20].linear_velocity_w[0], [2, 0, 0]) and np.allclose(
        states[19].linear_velocity_w[0], 0
    )
    assert calls == [(30, {"fog_density": 0.05})]
    assert ev.action == ["call", "weather"]
    from simgen.errors import SimulationError

    with pytest.raises(SimulationError, match="no action named 'kick'"):
        run_steps(text, registry=Registry())


def test_references_are_checked_at_load(tmp_path) -> None:
    from simgen.errors import SceneFileError
    from simgen.scene.loader import load_scene

    f = tmp_path / "s.yaml"
    f.write_text(scenario("[{at: 0.1, action: {impulse: {object: ghost, impulse: [0, 0, 1]}}}]"))
    with pytest.raises(SceneFileError) as info:
        load_scene(f)
    (p,) = info.value.problems
    assert p.field == "scenarios[0].events[0].action.impulse.object" and p.line == 9
    assert "no object named 'ghost'" in p.message
    f.write_text(
        scenario("[{at: 0.1, action: {camera_fault: {camera: c, kind: blackout, std: 3}}}]")
    )
    with pytest.raises(SceneFileError, match=r"no camera named 'c'|takes no"):
        load_scene(f)


CAMERA = """
schema_version: 1
simulation: {duration: 0.5, timestep: 0.01}
background: [0.5, 0.6, 0.8]
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: cube, class: cube, kind: box, size: [0.4, 0.4, 0.4], static: true, pose: {position: [0, 0, 0.2]}}
lights:
  - {kind: ambient, intensity: {per_frame: {uniform: [0.1, 0.9]}}}
  - {kind: directional, name: sun, intensity: 2}
sensors:
  - {kind: camera, name: cam, resolution: [40, 30], rate_hz: 20, look_at: {eye: [2, 1, 1.5], target: [0, 0, 0.2]}}
scenarios:
  - name: faults
    events: EVENTS
"""


def render(sim, text: str, seed: int = 0):
    scene = scene_from(text)
    frames, labels, states = [], None, []
    for rec in sim.episode(scene, seed, 0):
        if isinstance(rec, SensorFrame):
            frames.append(rec)
        elif isinstance(rec, EpisodeEvents):
            labels = rec
        elif isinstance(rec, StateRecord):
            states.append(rec)
    return frames, labels, states


@pytest.mark.gl
def test_camera_faults_corrupt_rgb_only_while_active(sim) -> None:
    clean, _, _ = render(sim, CAMERA.replace("EVENTS", "[{at: 0.45, action: {mark: {}}}]"))
    text = CAMERA.replace(
        "EVENTS",
        """
      - {at: 0.1, duration: 0.1, action: {camera_fault: {camera: cam, kind: blackout}}}
      - {at: 0.25, duration: 0.05, action: {camera_fault: {camera: cam, kind: occlusion, center: [0.5, 0.5], radius: 0.3, opacity: 1.0, softness: 0}}}
      - {at: 0.35, duration: 0.05, action: {camera_fault: {camera: cam, kind: dead_pixels, fraction: 0.1, value: 255}}}""",
    )
    frames, ev, _ = render(sim, text)
    assert [f.step for f in frames] == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45]
    for f, c in zip(frames, clean, strict=True):
        assert np.array_equal(f.instance, c.instance) and np.array_equal(f.depth_m, c.depth_m)
        if f.step in (10, 15):
            assert not f.rgb.any()
        elif f.step == 25:
            yy, xx = np.mgrid[0:30, 0:40]
            blob = np.hypot(xx - 19.5, yy - 14.5) < 0.3 * 30 - 1
            assert np.all(np.abs(f.rgb[blob].astype(int) - [15, 13, 10]) <= 1)
            assert np.array_equal(
                f.rgb[~np.hypot(xx - 19.5, yy - 14.5).__le__(9)],
                c.rgb[~np.hypot(xx - 19.5, yy - 14.5).__le__(9)],
            )
        elif f.step == 35:
            changed = np.any(f.rgb != c.rgb, axis=-1)
            assert np.all(f.rgb[changed] == 255) and changed.sum() <= 120
            assert np.sum(np.all(f.rgb == 255, axis=-1)) >= 120  # round(0.1 * 40 * 30) dead
        else:
            assert np.array_equal(f.rgb, c.rgb), f.step
    active = ev.active
    assert active.shape == (11, 3) or active.shape[1] == 3
    ticks = [f.step for f in frames]
    assert [bool(active[i, 0]) for i in range(len(ticks))] == [s in (10, 15) for s in ticks]


@pytest.mark.gl
def test_per_frame_light_and_light_events_change_the_image(sim) -> None:
    frames, ev, _ = render(
        sim,
        CAMERA.replace(
            "EVENTS", "[{at: 0.2, duration: 0.1, action: {light: {light: sun, intensity: 0}}}]"
        ),
    )
    values = ev.per_frame_values[:, 0]
    assert ev.per_frame_names == ["lights[0].intensity"] and len(set(values.tolist())) == len(
        values
    )
    assert np.all((values >= 0.1) & (values <= 0.9))
    means = np.array([f.rgb[f.instance == 2].mean() for f in frames])  # the cube's pixels
    lit = [i for i, f in enumerate(frames) if not 20 <= f.step < 30]
    # with the sun fixed, brighter ambient means a brighter cube
    assert stats.spearmanr(values[lit], means[lit]).statistic > 0.9
    dark = [i for i, f in enumerate(frames) if 20 <= f.step < 30]
    assert all(means[i] < means[j] for i in dark for j in lit if abs(values[i] - values[j]) < 0.2)


@pytest.mark.gl
def test_spawned_objects_are_invisible_before_they_spawn(sim) -> None:
    text = CAMERA.replace(
        "EVENTS",
        "[{at: 0.2, action: {spawn: {object: {name: ball, class: ball, kind: sphere, radius: 0.2, static: true, pose: {position: [0.6, 0.3, 0.2]}}}}}, {at: 0.35, action: {remove: {object: cube}}}]",
    )
    frames, _, _ = render(sim, text)
    for f in frames:
        ids = set(np.unique(f.instance).tolist())
        assert (3 in ids) == (f.step >= 20), f.step
        assert (2 in ids) == (f.step < 35), f.step


@pytest.mark.gl
def test_per_frame_background(sim) -> None:
    text = CAMERA.replace(
        "background: [0.5, 0.6, 0.8]", "background: {per_frame: {choice: [[1, 0, 0], [0, 0, 1]]}}"
    ).replace("EVENTS", "[{at: 0.45, action: {mark: {}}}]")
    frames, ev, _ = render(sim, text)
    assert ev.per_frame_names == [
        "background[0]",
        "background[1]",
        "background[2]",
        "lights[0].intensity",
    ]
    col = {n: i for i, n in enumerate(ev.per_frame_names)}
    for t, f in enumerate(frames):
        sky = f.rgb[f.instance == 0].astype(int)
        red = ev.per_frame_values[t, col["background[0]"]] == 1
        assert len(sky) > 0
        assert np.all(sky[:, 0] > sky[:, 2]) if red else np.all(sky[:, 2] > sky[:, 0])


def test_errors_in_scatter_scenarios_and_require_point_at_their_lines(tmp_path) -> None:
    from simgen.errors import SceneFileError
    from simgen.scene.loader import load_scene

    f = tmp_path / "bad.yaml"
    f.write_text(
        """schema_version: 1
objects:
  - {name: a, class: c, kind: box, size: [1, 1, 1]}
scatter:
  - name: s
    count: 2
    objects: [{kind: box, class: c, size: [1, 1, 1]}]
    region: {on_top_of: {objec: a}}
scenarios:
  - name: x
    events:
      - {at: 1, action: {force: {objct: a, force: [0, 0, 1]}}}
      - {at: 1, action: {impuls: {object: a, impulse: [0, 0, 1]}}}
    triggers:
      - {when: {below_z: {object: a, zz: 1}}, action: {mark: {}}}
require:
  - {visble: {object: a, camera: c}}
"""
    )
    with pytest.raises(SceneFileError) as info:
        load_scene(f)
    by = {p.field: p for p in info.value.problems}
    assert by["scatter[0].region.on_top_of.objec"].line == 8
    assert "did you mean 'object'" in by["scatter[0].region.on_top_of.objec"].message
    p = by["scenarios[0].events[0].action.force.objct"]
    assert p.line == 12 and "did you mean 'object'" in p.message and "force" in p.allowed
    p = by["scenarios[0].events[1].action"]
    assert p.line == 13 and "{impulse: ...}" in p.allowed
    assert by["scenarios[0].triggers[0].when.below_z.zz"].line == 15
    p = by["require[0]"]
    assert p.line == 17 and "{visible: ...}" in p.allowed
