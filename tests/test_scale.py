"""Parallel rendering into dataset directories: same content whatever the workers or backend,
kill -9 at random moments then --resume, failing episodes, lost workers, flat memory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from simgen.errors import SceneError
from simgen.io.digest import episode_digest
from simgen.io.integrity import episode_digests
from simgen.io.reader import Dataset
from simgen.io.store import read_records
from simgen.random.sample import sample_episode
from simgen.random.seeding import episode_seed
from simgen.run.scale import render_directory
from tests.conftest import ROOT, scene_from

pytestmark = pytest.mark.gl

SCENE = """
schema_version: 1
simulation: {duration: 0.3}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: cube, class: box, kind: box, size: [{uniform: [0.1, 0.3]}, 0.2, 0.2],
     pose: {position: [{uniform: [-0.2, 0.2]}, 0, 0.5]}}
  - {name: ball, class: ball, kind: sphere, radius: 0.08, pose: {position: [0.3, 0.2, 0.4]}}
sensors:
  - {kind: camera, name: cam, resolution: [48, 36], rate_hz: 10,
     look_at: {eye: [1.5, 1, 1], target: [0, 0, 0.2]}}
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory, sim) -> dict[int, str]:
    """Episodes 0..9 of SCENE, seed 11, rendered in this process into one file."""
    from simgen.run.batch import render_dataset

    out = tmp_path_factory.mktemp("ref") / "ref.h5"
    render_dataset(scene_from(SCENE), out, episodes=range(10), seed=11, simulator=sim)
    return episode_digests(out)


def check_committed_files(out: Path) -> dict[int, str]:
    """Every committed file opens and holds what its records say (checksums recomputed)."""
    found: dict[int, str] = {}
    for f in sorted([*(out / "parts").glob("*.h5"), *(out / "shards").glob("*.h5")]):
        with h5py.File(f, "r") as h:
            assert bool(h.attrs["complete"]), f
            for r in read_records(f):
                assert episode_digest(h["episodes"][f"{r.index:06d}"]) == r.sha256, (f, r.index)
                found[r.index] = r.sha256
    if (out / "manifest.json").exists():
        json.loads((out / "manifest.json").read_text())
    if (out / "index.h5").exists():
        with Dataset(out) as ds:
            for i in ds.episode_indices:
                assert episode_digest(ds.episode(i).g) == found[i]
    return found


def test_content_is_identical_for_1_and_2_workers_and_a_single_file(reference, tmp_path) -> None:
    scene = scene_from(SCENE)
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        s = render_directory(scene, out, episodes=range(10), seed=11, workers=workers)
        assert s.complete and s.rendered == 10 and not s.failed and s.workers == workers
        assert episode_digests(out) == reference
        manifest = json.loads((out / "manifest.json").read_text())
        assert {int(k): v["sha256"] for k, v in manifest["episodes"].items()} == reference
        assert manifest["complete"] and not list((out / "parts").iterdir())
        # one shard per worker; the seeds are the run's
        shards = sorted(p.name for p in (out / "shards").iterdir())
        assert len(shards) == workers, shards
        assert all(v["seed"] == episode_seed(11, int(k)) for k, v in manifest["episodes"].items())
    with Dataset(tmp_path / "w2") as ds, Dataset(tmp_path / "w1") as ds1:
        assert (
            ds.complete and len(ds) == 10 and ds.classes == ["background", "floor", "box", "ball"]
        )
        a, b = ds.episode(7).frame("cam", 2), ds1.episode(7).frame("cam", 2)
        # bytes, not values: float labels use NaN for "undefined"
        assert set(a) == set(b) and all(
            np.asarray(a[k]).tobytes() == np.asarray(b[k]).tobytes() for k in a
        )


def test_ray_local_instance_gives_the_same_content(reference, tmp_path) -> None:
    pytest.importorskip("ray")
    out = tmp_path / "ray"
    s = render_directory(
        scene_from(SCENE), out, episodes=range(10), seed=11, workers=2, backend="ray"
    )
    assert s.complete and s.backend == "ray" and s.rendered == 10
    assert episode_digests(out) == reference


def _failing_scene_and_seed():
    """A scene whose cube mass is normal(0.3, 0.3): invalid (<= 0) for some episodes."""
    scene = scene_from(SCENE.replace("radius: 0.08,", "radius: 0.08, mass: {normal: [0.3, 0.3]},"))
    for seed in range(100):
        bad = []
        for i in range(6):
            try:
                sample_episode(scene, seed, i)
            except SceneError:
                bad.append(i)
        if bad and 0 not in bad and len(bad) < 4:
            return scene, seed, bad
    raise AssertionError("no suitable seed")


def test_episodes_that_fail_are_reported_with_seed_and_error_and_the_rest_complete(
    tmp_path,
) -> None:
    scene, seed, bad = _failing_scene_and_seed()
    path = tmp_path / "fail.yaml"
    path.write_text(scene.source_text)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "simgen.cli",
        "render",
        str(path),
        "-o",
        str(out),
        "-n",
        "6",
        "-s",
        str(seed),
        "-j",
        "2",
        "--retries",
        "1",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 3, r.stderr
    for i in bad:
        assert f"failed episode {i} (seed {episode_seed(seed, i)}, 2 attempts)" in r.stdout
    assert "sampled value is invalid" in r.stdout and ".mass" in r.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(int(k) for k in manifest["failed"]) == bad
    assert sorted(int(k) for k in manifest["episodes"]) == sorted(set(range(6)) - set(bad))
    assert not manifest["complete"]
    with Dataset(out) as ds:
        assert ds.episode_indices == sorted(set(range(6)) - set(bad)) and not ds.complete
    # resuming retries only the failed ones (which fail again: the error is in the scene)
    r = subprocess.run(
        [*cmd, "--resume", "--log-json"], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 3 and events[0]["todo"] == len(bad)
    assert sorted(e["index"] for e in events if e["event"] == "failed") == bad
    # an error in episode 0 is the scene's: reported before any worker starts, nothing written
    first_bad = _seed_failing_first(scene)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "simgen.cli",
            "render",
            str(path),
            "-o",
            str(tmp_path / "o2"),
            "-s",
            str(first_bad),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert r.returncode == 2 and "sampled value is invalid" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "o2").exists()


def _seed_failing_first(scene) -> int:
    for seed in range(100):
        try:
            sample_episode(scene, seed, 0)
        except SceneError:
            return seed
    raise AssertionError("no seed fails episode 0")


def test_a_killed_worker_is_replaced_and_its_episode_redone(reference, tmp_path) -> None:
    killed: list[int] = []

    def on_event(e) -> None:
        if e.kind == "episode" and not killed:
            killed.append(e.data["pid"])
            os.kill(e.data["pid"], signal.SIGKILL)  # it has just been given its next episode

    out = tmp_path / "lost"
    s = render_directory(
        scene_from(SCENE), out, episodes=range(10), seed=11, workers=2, on_event=on_event
    )
    assert killed and s.lost_workers == 1 and s.complete and not s.failed
    assert episode_digests(out) == reference
    attempts = {
        json.loads((out / "manifest.json").read_text())["episodes"][k]["attempt"]
        for k in json.loads((out / "manifest.json").read_text())["episodes"]
    }
    assert len(attempts) >= 2  # the replacement worker has its own attempt number


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie has exited
        return f.read().split()[2] != "Z"


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_equals_an_uninterrupted_run(
    reference, tmp_path
) -> None:
    scene = tmp_path / "s.yaml"
    scene.write_text(SCENE)
    rng = np.random.default_rng(2026)
    for trial in range(3):
        out = tmp_path / f"trial{trial}"
        cmd = [
            sys.executable,
            "-m",
            "simgen.cli",
            "render",
            str(scene),
            "-o",
            str(out),
            "-n",
            "10",
            "-s",
            "11",
            "-j",
            "2",
            "--log-json",
        ]
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        lines: list[str] = []
        reader = threading.Thread(target=lines.extend, args=(proc.stdout,), daemon=True)
        reader.start()
        # wait for the first commit, then a random moment up to ~ the rest of the run
        deadline = time.time() + 120
        while not any('"episode"' in x for x in lines) and time.time() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.02)
        time.sleep(float(rng.uniform(0.0, 2.5)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join(5)
        pids = [json.loads(x)["pid"] for x in lines if '"worker_started"' in x]
        deadline = time.time() + 10
        while any(_pid_alive(p) for p in pids) and time.time() < deadline:
            time.sleep(0.05)
        assert not any(_pid_alive(p) for p in pids), "workers outlived the killed driver"
        committed = check_committed_files(out)  # nothing committed-looking is corrupt
        assert all(reference[i] == d for i, d in committed.items())
        r = subprocess.run(
            [*cmd, "--resume"], capture_output=True, text=True, timeout=300, cwd=ROOT
        )
        assert r.returncode == 0, r.stderr
        done = [json.loads(x) for x in r.stdout.splitlines() if '"episode"' in x]
        # finished episodes were kept: the resumed run rendered only the rest
        assert not {d["index"] for d in done} & set(committed)
        assert episode_digests(out) == reference
        assert check_committed_files(out) == reference
        assert not list(out.rglob("*.partial")) and not list((out / "parts").iterdir())


@pytest.mark.slow
def test_worker_memory_is_flat_over_200_episodes(tmp_path) -> None:
    """Resident memory of one worker after 200 episodes is within 10% of that after 20. The
    scene changes geometry every episode (sampled box size, sampled mesh scale), which is what
    would make caches grow."""
    scene = scene_from(
        """
schema_version: 1
simulation: {duration: 0.1}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: cube, class: box, kind: box, size: [{uniform: [0.1, 0.3]}, 0.2, 0.2],
     pose: {position: [0, 0, 0.5]}}
  - {name: duck, class: duck, kind: urdf, asset: 'pybullet:duck_vhacd.urdf',
     scale: {uniform: [0.8, 1.2]}, pose: {position: [0.3, 0, 0.3]}}
sensors:
  - {kind: camera, name: cam, resolution: [32, 24], rate_hz: 20,
     look_at: {eye: [1.5, 1, 1], target: [0, 0, 0.2]}}
"""
    )
    rss: dict[int, float] = {}
    s = render_directory(
        scene,
        tmp_path / "mem",
        episodes=range(200),
        seed=0,
        workers=1,
        merge_every=10_000,
        on_event=lambda e: (
            rss.__setitem__(e.data["done"], e.data["rss_mb"]) if e.kind == "episode" else None
        ),
    )
    assert s.complete and len(rss) == 200
    assert rss[200] <= 1.10 * rss[20], (rss[20], rss[100], rss[200])
