"""Episode K rendered alone (``simgen render --episode K``) is byte-identical to episode K of a
full run, for a scene that uses every kind of randomness: scatter with settling, constraints,
schedules, quotas, probabilities, per-frame values, timeline events, triggers and faults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.gl

SCENE = """
schema_version: 1
simulation: {duration: 0.4, timestep: 0.005}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: table, class: table, kind: box, size: [0.8, 0.6, 0.7], static: true, pose: {position: [0, 0, 0.35]}}
  - name: mug
    class: mug
    kind: cylinder
    radius: 0.04
    length: 0.1
    pose: {position: [{uniform: [-0.1, 0.1]}, 0.1, 0.755], orientation: {axis_rotation: {}}}
    material: {color: {hsv: {hue_deg: [0, 60], saturation: [0.5, 1], value: [0.5, 1]}}}
    mass: {schedule: {start: [0.2, 0.3], end: [0.8, 1.0]}}
lights:
  - {kind: ambient, intensity: {per_frame: {uniform: [0.2, 0.5]}}}
  - {kind: directional, name: sun, intensity: {uniform: [1.5, 3]}}
sensors:
  - {kind: camera, name: cam, resolution: [48, 36], rate_hz: 10, look_at: {eye: [1.4, 0.4, 1.3], target: [0, 0, 0.7]}}
scatter:
  - name: clutter
    count: {randint: [2, 4]}
    objects:
      - {class: cube, kind: box, size: [0.05, 0.05, 0.05], material: {color: {hsv: {}}}}
      - {class: blob, kind: urdf, asset: {files: {folder: 'pybullet:random_urdfs', pattern: '*/*.urdf', pool_size: 10}}}
    region: {on_top_of: {object: table, margin: 0.03}}
    orientation: {axis_rotation: {}}
    min_gap: 0.01
require:
  - {in_view: {camera: cam, min: 2, group: clutter}}
scenarios:
  - name: falls
    quota: 0.5
    template: {fall_off_table: {object: mug, surface: table, at: {uniform: [0.05, 0.15]}}}
  - name: glitch
    probability: 0.5
    events:
      - {at: {uniform: [0.1, 0.3]}, duration: 0.1, action: {camera_fault: {camera: cam, kind: noise, std: 20}}}
      - {at: 0.2, duration: 0.1, action: {light: {light: sun, intensity: 0.5}}}
"""


def simgen(*args: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "simgen.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr


def contents(path: Path, group: str) -> dict:
    out = {}
    with h5py.File(path) as f:
        g = f[group]
        out["attrs"] = {k: v for k, v in g.attrs.items()}
        g.visititems(
            lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None
        )
    return out


def same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if k == "attrs":
            assert a[k].keys() == b[k].keys()
            for name in a[k]:
                assert np.array_equal(a[k][name], b[k][name]), name
        else:
            # bytes, not values: float labels use NaN for "undefined" and NaN != NaN
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
            assert np.array_equal(a[k], b[k]) or a[k].tobytes() == b[k].tobytes(), k


def test_episode_alone_is_byte_identical_to_the_same_episode_of_a_full_run(sim, tmp_path) -> None:
    from simgen.run.batch import render_dataset
    from tests.conftest import scene_from

    scene_file = tmp_path / "scene.yaml"
    scene_file.write_text(SCENE)
    render_dataset(
        scene_from(SCENE, tmp_path), tmp_path / "all.h5", episodes=range(4), seed=21, simulator=sim
    )
    with h5py.File(tmp_path / "all.h5") as f:
        happened = [bool(f[f"episodes/{i:06d}/scenarios/selected"][0]) for i in range(4)]
        kinds = {
            i: [
                x.decode() if isinstance(x, bytes) else x
                for x in f[f"episodes/{i:06d}/events/action"][()]
            ]
            for i in range(4)
        }
    assert sum(happened) == 2  # the quota: exactly half of the 4 episodes
    assert any("push_off" in k for k in kinds.values())
    for k in (1, 2):
        one = tmp_path / f"one{k}.h5"
        simgen(
            "render",
            str(scene_file),
            "-o",
            str(one),
            "--episode",
            str(k),
            "--episodes",
            "4",
            "--seed",
            "21",
        )
        same(contents(tmp_path / "all.h5", f"episodes/{k:06d}"), contents(one, f"episodes/{k:06d}"))
