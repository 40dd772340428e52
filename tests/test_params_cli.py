"""``simgen params`` lists what was sampled per episode and per parameter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simgen.cli import app
from tests.conftest import scene_from


def simgen(*args: str):
    return CliRunner().invoke(app, list(args))


pytestmark = pytest.mark.gl

SCENE = """
schema_version: 1
simulation: {duration: 0.2}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: cube, class: box, kind: box, size: [0.2, 0.2, 0.2], mass: {uniform: [1, 2]}, pose: {position: [0, 0, {uniform: [0.3, 0.6]}]}}
sensors:
  - {kind: camera, name: cam, resolution: [32, 24], rate_hz: 10, look_at: {eye: [1.5, 1, 1], target: [0, 0, 0.2]}}
scenarios:
  - {name: bump, quota: 0.5, events: [{name: kick, at: 0.1, action: {impulse: {object: cube, impulse: [1, 0, 0]}}}]}
"""


def test_params_tables_and_json(sim, tmp_path: Path) -> None:
    from simgen.run.batch import render_dataset

    out = tmp_path / "d.h5"
    render_dataset(scene_from(SCENE), out, episodes=range(4), seed=5, simulator=sim)
    r = simgen("params", str(out), "--json")
    assert r.exit_code == 0, r.output
    recs = json.loads(r.stdout)
    assert [x["episode"] for x in recs] == [0, 1, 2, 3]
    assert all(
        set(x["sampled"]) == {"objects[1].mass", "objects[1].pose.position[2]"} for x in recs
    )
    assert sum(x["scenarios"]["bump"] for x in recs) == 2  # quota 0.5 of 4
    assert all((x["events"] != []) == x["scenarios"]["bump"] for x in recs)
    assert all(x["dataset_size"] == 4 and x["tries"] == 1 for x in recs)
    r = simgen("params", str(out), "--episode", "2")
    assert r.exit_code == 0 and "episode 2" in r.stdout and "objects[1].mass" in r.stdout
    assert f"{recs[2]['sampled']['objects[1].mass']:.4g}" in r.stdout
    r = simgen("params", str(out), "--by", "parameter", "--param", "*mass")
    assert r.exit_code == 0 and "objects[1].mass" in r.stdout and "position" not in r.stdout
    masses = [x["sampled"]["objects[1].mass"] for x in recs]
    assert f"min {min(masses):.4g}" in r.stdout
    for bad in (["params", str(out), "--by", "nope"], ["params", str(out), "--episode", "9"]):
        r = simgen(*bad)
        assert r.exit_code == 2, r.output
        assert "error:" in r.output and "Traceback" not in r.output
