"""Label self-checks on write: an inconsistent label fails the episode loudly (the check, the
sensor, the frame, the value), and nothing of it is stored; in a parallel run it is a failed
episode with its seed and error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from simgen.errors import LabelCheckError
from simgen.io.reader import Dataset
from simgen.io.selfcheck import LabelChecker
from simgen.random.seeding import episode_seed
from simgen.run.records import SensorFrame
from tests.conftest import ROOT, scene_from


def frame(**arrays: np.ndarray) -> SensorFrame:
    return SensorFrame("cam", "camera", 4, 8, 16, 0.4, np.eye(4), arrays=dict(arrays))


def camera_arrays() -> dict[str, np.ndarray]:
    """A 6x4 image: object 1 in columns 1-2 of rows 0-1, object 2 in column 5 of row 3."""
    inst = np.zeros((4, 6), np.uint16)
    inst[0:2, 1:3] = 1
    inst[3, 5] = 2
    depth = np.where(inst > 0, 2.0, 0.0).astype(np.float32)
    boxes = np.array([[1, 0, 3, 2], [5, 3, 6, 4], [0, 0, 0, 0]], np.int32)
    return {
        "instance": inst,
        "depth_m": depth,
        "box2d_tight": boxes,
        "visible_pixels": np.array([4, 1, 0], np.int32),
    }


def test_consistent_labels_pass() -> None:
    LabelChecker([1, 2, 3]).check(frame(**camera_arrays()))
    # ids need not be 1..N: a lookup table is used then
    a = camera_arrays()
    a["instance"][a["instance"] == 2] = 7
    a["box2d_tight"] = a["box2d_tight"][:2]
    a["visible_pixels"] = a["visible_pixels"][:2]
    LabelChecker([1, 7]).check(frame(**a))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda a: a["instance"].__setitem__((2, 2), 4),
            "'instance_ids' .* holds id 4, which is not in the object table \\(ids 1..3\\)",
        ),
        (
            lambda a: a["box2d_tight"].__setitem__(1, [5, 3, 7, 4]),
            "'box2d_in_image' .* instance 2 is \\[5, 3, 7, 4\\], outside the 6x4 image",
        ),
        (
            lambda a: a["box2d_tight"].__setitem__(0, [3, 0, 1, 2]),
            "'box2d_in_image' .* instance 1 is \\[3, 0, 1, 2\\]",
        ),
        (
            lambda a: a["box2d_tight"].__setitem__(2, [-1, 0, 0, 0]),
            "'box2d_in_image' .* instance 3 is \\[-1, 0, 0, 0\\]",
        ),
        (
            lambda a: a["visible_pixels"].__setitem__(2, 5),
            "instance 3 has visible_pixels 5 but box2d_tight \\[0, 0, 0, 0\\]",
        ),
        (
            lambda a: a["depth_m"].__setitem__((1, 2), np.nan),
            "'depth_on_objects' .* depth_m is nan at pixel \\(u=2, v=1\\) of instance 1",
        ),
        (
            lambda a: a["depth_m"].__setitem__((3, 5), 0.0),
            "depth_m is 0.0 at pixel \\(u=5, v=3\\) of instance 2",
        ),
    ],
)
def test_each_inconsistency_is_named_with_sensor_frame_and_value(change, message) -> None:
    a = camera_arrays()
    change(a)
    with pytest.raises(LabelCheckError, match=message) as e:
        LabelChecker([1, 2, 3]).check(frame(**a))
    assert "sensor 'cam' frame 4 (t = 0.4000 s)" in str(e.value)


def test_lidar_instance_ids_are_checked() -> None:
    f = SensorFrame(
        "lidar", "lidar", 0, 0, 0, 0.0, np.eye(4), ragged={"instance": np.array([0, 1, 2, 9])}
    )
    with pytest.raises(LabelCheckError, match=r"'instance_ids' .* holds id 9"):
        LabelChecker([1, 2]).check(f)


SCENE = """
schema_version: 1
simulation: {duration: 0.3}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: cube, class: box, kind: box, size: [{uniform: [0.1, 0.3]}, 0.2, 0.2],
     pose: {position: [0, 0, 0.5]}}
sensors:
  - {kind: camera, name: cam, resolution: [40, 30], rate_hz: 10, labels: [boxes],
     look_at: {eye: [1.5, 1, 1], target: [0, 0, 0.2]}}
"""


@pytest.mark.gl
def test_an_inconsistent_label_fails_the_episode_and_nothing_is_stored(
    sim, monkeypatch, tmp_path
) -> None:
    import simgen.run.labeling as labeling
    from simgen.run.batch import render_dataset

    original = labeling.mask_boxes

    def shifted(instance, n):  # a labeling bug: boxes one image width to the right
        boxes, counts = original(instance, n)
        boxes[counts > 0] += np.array([instance.shape[1], 0, instance.shape[1], 0], np.int32)
        return boxes, counts

    monkeypatch.setattr(labeling, "mask_boxes", shifted)
    out = tmp_path / "x.h5"
    with pytest.raises(LabelCheckError, match="'box2d_in_image' failed: sensor 'cam' frame 0"):
        render_dataset(scene_from(SCENE), out, episodes=range(2), seed=0, simulator=sim)
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.gl
def test_in_a_parallel_run_it_is_a_failed_episode_with_seed_and_error(tmp_path) -> None:
    scene = tmp_path / "s.yaml"
    scene.write_text(SCENE)
    out = tmp_path / "out"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "inject_faults"), str(ROOT)]),
        "SIMGEN_TEST_BAD_LABEL_EPISODE": "2",
    }
    cmd = [sys.executable, "-m", "simgen.cli", "render", str(scene), "-o", str(out)]
    r = subprocess.run(
        [*cmd, "-n", "4", "-s", "7", "-j", "2", "--retries", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )
    assert r.returncode == 3, r.stderr
    text = " ".join(r.stdout.split())
    assert f"failed episode 2 (seed {episode_seed(7, 2)}, 2 attempts)" in text, text
    assert "LabelCheckError: label self-check 'instance_ids' failed: sensor 'cam' frame 0" in text
    assert "holds id 999" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["failed"]) == ["000002"]
    assert "instance_ids" in manifest["failed"]["000002"]["error"]
    with Dataset(out) as ds:
        assert ds.episode_indices == [0, 1, 3]
        for i in ds.episode_indices:  # what is stored is consistent
            inst = ds.episode(i).g["sensors/cam/instance"][()]
            assert int(inst.max()) <= len(ds.episode(i).objects)
    for f in [*Path(out).rglob("*.h5")]:  # nothing of episode 2 anywhere
        with h5py.File(f, "r") as h:
            assert "000002" not in h.get("episodes", {}), f
