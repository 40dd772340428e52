"""A full disk or an unwritable output: the run stops with one clear message (exit 2), the
committed episodes stay readable, and ``--resume`` (once there is space) finishes a dataset equal
to an uninterrupted one. A worker's full disk must stop the run, not turn every remaining
episode into a retried-then-failed one."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import simgen.io.space as space
from simgen.cli import app
from simgen.errors import StorageError
from simgen.io.integrity import check_integrity, episode_digests
from simgen.io.space import output_errno
from tests.conftest import ROOT, scene_from

pytestmark = pytest.mark.gl

SCENE = """
schema_version: 1
simulation: {duration: 0.3}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: cube, class: box, kind: box, size: [{uniform: [0.1, 0.3]}, 0.2, 0.2],
     pose: {position: [{uniform: [-0.2, 0.2]}, 0, 0.5]}}
sensors:
  - {kind: camera, name: cam, resolution: [40, 30], rate_hz: 10,
     look_at: {eye: [1.5, 1, 1], target: [0, 0, 0.2]}}
"""
EPISODES = 8
SEED = 3


@pytest.fixture(scope="module")
def reference(tmp_path_factory, sim) -> dict[int, str]:
    from simgen.run.batch import render_dataset

    out = tmp_path_factory.mktemp("ref") / "ref.h5"
    render_dataset(scene_from(SCENE), out, episodes=range(EPISODES), seed=SEED, simulator=sim)
    return episode_digests(out)


def simgen_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "simgen.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def test_output_errors_are_recognized_by_errno_also_in_h5py_messages() -> None:
    assert output_errno(OSError(errno.ENOSPC, "No space left on device")) == errno.ENOSPC
    assert output_errno(OSError(errno.EDQUOT, "Disk quota exceeded")) == errno.EDQUOT
    assert output_errno(OSError(errno.ENOENT, "No such file")) is None
    # h5py's text for a failed write (seen under RLIMIT_FSIZE; ENOSPC reads the same with 28)
    h5 = RuntimeError(
        "Can't decrement id ref count (file write failed: time = Sun Dec  6 02:04:56 2026, "
        "filename = 'big.h5', file descriptor = 3, errno = 28, error message = 'No space left "
        "on device', buf = 0x55e430b6f1b8, total write size = 4016)"
    )
    assert output_errno(h5) == errno.ENOSPC
    assert output_errno(RuntimeError("errno = 2, no such file")) is None
    assert output_errno(ValueError("errno = 28")) is None


def test_a_full_disk_in_the_workers_stops_the_run_and_resume_completes_it(
    reference, tmp_path
) -> None:
    scene = tmp_path / "s.yaml"
    scene.write_text(SCENE)
    out = tmp_path / "out"
    budget = tmp_path / "budget"
    budget.write_text("10")  # frames: 3 per episode, so the disk fills in the 4th episode
    args = ["render", str(scene), "-o", str(out), "-n", str(EPISODES), "-s", str(SEED), "-j", "2"]
    inject = {
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "inject_faults"), str(ROOT)]),
        "SIMGEN_TEST_ENOSPC_BUDGET": str(budget),
    }
    r = simgen_process(*args, env=inject)
    assert r.returncode == 2, r.stderr
    err = " ".join(r.stderr.split())
    assert "Traceback" not in r.stderr and err.count("error:") == 1, r.stderr
    assert "no space left on the device (ENOSPC)" in err and "--resume" in err, err
    # stopped at once: no episode was retried or recorded as failed because of the disk
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["failed"] == {} and not manifest["complete"]
    committed = episode_digests(out)
    assert 1 <= len(committed) < EPISODES
    assert all(reference[i] == d for i, d in committed.items())
    assert check_integrity(out).ok
    assert not list(out.rglob("*.partial"))
    # space is back: resume renders only the rest, and the result equals an uninterrupted run
    r = simgen_process(*args, "--resume", "--log-json")
    assert r.returncode == 0, r.stderr
    done = {json.loads(x)["index"] for x in r.stdout.splitlines() if '"episode"' in x}
    assert not done & set(committed) and done | set(committed) == set(range(EPISODES))
    assert episode_digests(out) == reference
    assert check_integrity(out).ok


def _file_size_limit(limit: int):  # type: ignore[no-untyped-def]
    """preexec_fn: files of the process (and its workers) may not grow past ``limit`` bytes;
    writes beyond fail with EFBIG inside HDF5, as a full disk fails them with ENOSPC."""

    def apply() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_real_hdf5_write_failure_stops_the_run(reference, tmp_path) -> None:
    """Not injected: the kernel refuses the writes (RLIMIT_FSIZE) while HDF5 merges parts into
    a shard; h5py reports it with the errno only in its message."""
    scene = tmp_path / "s.yaml"
    scene.write_text(SCENE)
    out = tmp_path / "out"
    args = ["render", str(scene), "-o", str(out), "-n", str(EPISODES), "-s", str(SEED), "-j", "2"]
    r = subprocess.run(
        [sys.executable, "-m", "simgen.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        preexec_fn=_file_size_limit(700_000),  # a part (~0.4 MB) fits, a shard does not
    )
    err = " ".join(r.stderr.split())
    assert r.returncode == 2, r.stderr
    assert "error: cannot write" in err and "(EFBIG)" in err and "--resume" in err, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["failed"] == {}
    committed = episode_digests(out)
    assert committed and all(reference[i] == d for i, d in committed.items())
    assert check_integrity(out).ok
    r = simgen_process(*args, "--resume")
    assert r.returncode == 0, r.stderr
    assert episode_digests(out) == reference and not list((out / "parts").iterdir())


def test_a_full_disk_in_a_single_file_render_leaves_nothing(monkeypatch, tmp_path) -> None:
    import simgen.io.writer as writer

    original = writer._EpisodeWriter._frame
    calls = [0]

    def frame(self, f):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] > 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, f)

    monkeypatch.setattr(writer._EpisodeWriter, "_frame", frame)
    scene = tmp_path / "s.yaml"
    scene.write_text(SCENE)
    out = tmp_path / "x.h5"
    r = CliRunner().invoke(app, ["render", str(scene), "-o", str(out), "-n", "3"])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "cannot write" in r.output and "no space left on the device (ENOSPC)" in r.output
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def test_too_little_free_space_stops_before_anything_is_written(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(space, "free_bytes", lambda folder: 1_000_000)
    scene = tmp_path / "s.yaml"
    scene.write_text(SCENE)
    r = CliRunner().invoke(app, ["render", str(scene), "-o", str(tmp_path / "x.h5")])
    assert r.exit_code == 2 and "only 1.0 MB free" in " ".join(r.output.split()), r.output
    assert not list(tmp_path.glob("x.h5*"))
    from simgen.run.scale import render_directory

    with pytest.raises(StorageError, match=r"only 1\.0 MB free"):
        render_directory(scene_from(SCENE), tmp_path / "d", episodes=range(2), seed=0)


def test_an_unwritable_output_path_is_one_clear_error(tmp_path) -> None:
    scene = tmp_path / "s.yaml"
    scene.write_text(SCENE)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for target in (blocker / "out.h5", blocker / "out"):
        r = CliRunner().invoke(app, ["render", str(scene), "-o", str(target)])
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
        assert "cannot write" in r.output


def _chmod_binds(folder: Path) -> bool:
    """Whether permission bits stop this user (they do not stop root)."""
    probe = folder / "probe"
    try:
        probe.write_text("x")
    except PermissionError:
        return True
    probe.unlink()
    return False


def test_a_read_only_folder_is_one_clear_error(tmp_path) -> None:
    scene = tmp_path / "s.yaml"
    scene.write_text(SCENE)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if not _chmod_binds(ro):
            pytest.skip("permission bits do not bind this user (root)")
        for target in (ro / "out.h5", ro / "out"):
            r = CliRunner().invoke(app, ["render", str(scene), "-o", str(target)])
            assert r.exit_code == 2 and "Traceback" not in r.output, r.output
            assert "permission denied" in r.output.lower(), r.output
    finally:
        ro.chmod(0o755)
