"""Broken datasets: every command and the Python readers give one clear error (exit 2, no
traceback) or read what is intact and say what is missing; ``simgen verify --integrity`` finds
damaged episodes by their checksums; failed episodes are shown, never hidden."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from simgen.cli import app
from simgen.data import Dataset as Frames
from simgen.errors import DatasetError
from simgen.io.integrity import check_integrity
from simgen.io.reader import Dataset
from simgen.io.store import RECORDS_ATTR
from tests.conftest import scene_from

pytestmark = pytest.mark.gl

SCENE = """
schema_version: 1
simulation: {duration: 0.2}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: cube, class: box, kind: box, size: [{uniform: [0.1, 0.3]}, 0.2, 0.2],
     pose: {position: [0, 0, 0.4]}}
sensors:
  - {kind: camera, name: cam, resolution: [40, 30], rate_hz: 10, labels: [boxes],
     look_at: {eye: [1.5, 1, 1], target: [0, 0, 0.2]}}
"""

COMMANDS = {
    "inspect": ["inspect"],
    "stats": ["stats"],
    "verify": ["verify"],
    "integrity": ["verify", "--integrity"],
    "params": ["params"],
    "export": ["export", "-f", "coco", "-o", "{tmp}/export"],
    "report": ["report", "-o", "{tmp}/report.html"],
}


def simgen(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def run_command(name: str, dataset: Path, tmp: Path):
    args = [a.replace("{tmp}", str(tmp)) for a in COMMANDS[name]]
    return simgen(*args[:1], str(dataset), *args[1:])


def assert_clean_error(r, *needles: str) -> None:
    """Exit 2, one 'error:' message containing the needles, no traceback."""
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert "Traceback" not in r.output and r.output.count("error:") == 1, r.output
    text = " ".join(r.output.split())  # rich wraps long lines
    for n in needles:
        assert n in text, (n, r.output)


@pytest.fixture(scope="module")
def made(tmp_path_factory, sim) -> dict[str, Path]:
    """A single file (3 episodes) and a dataset directory (3 episodes, one worker)."""
    from simgen.run.batch import render_dataset
    from simgen.run.scale import render_directory

    root = tmp_path_factory.mktemp("made")
    scene = scene_from(SCENE)
    render_dataset(scene, root / "f.h5", episodes=range(3), seed=5, simulator=sim)
    s = render_directory(scene, root / "d", episodes=range(3), seed=5, workers=1)
    assert s.complete
    return {"file": root / "f.h5", "dir": root / "d"}


def _copy(src: Path, dst: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy(src, dst)
    return dst


def _broken_file(kind: str, good: Path, tmp: Path) -> Path:
    p = tmp / f"{kind}.h5"
    if kind == "truncated":
        p.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "not_hdf5":
        p.write_text("episode,frame\n0,0\n")
    elif kind == "foreign":
        with h5py.File(p, "w") as f:
            f["images"] = np.zeros((2, 4, 4), np.uint8)
    elif kind in ("newer", "older"):
        _copy(good, p)
        with h5py.File(p, "a") as f:
            f.attrs["format_version"] = 2 if kind == "newer" else 0
    elif kind == "lacks_objects":  # an episode as an incompatible writer would leave it
        _copy(good, p)
        with h5py.File(p, "a") as f:
            del f["episodes/000001/objects"]
    return p


FILE_CASES = {
    "truncated": "truncated file",
    "not_hdf5": "not a readable HDF5 file",
    "foreign": "not a simgen dataset",
    "newer": "dataset format 2 is newer than this simgen reads (1); upgrade simgen",
    "older": "unknown dataset format version 0",
    "lacks_objects": "episode 1 is damaged or from an incompatible simgen: it lacks objects",
}


@pytest.mark.parametrize("kind", sorted(FILE_CASES))
def test_broken_files_give_one_clear_error_in_every_command_and_reader(
    made, tmp_path, kind
) -> None:
    p = _broken_file(kind, made["file"], tmp_path)
    for name in COMMANDS:
        r = run_command(name, p, tmp_path)
        if kind == "lacks_objects" and name == "integrity":  # a per-episode finding
            assert r.exit_code == 1 and "2 ok, 1 unreadable" in r.output, r.output
            continue
        assert_clean_error(r, FILE_CASES[kind])
    assert not (tmp_path / "report.html").exists()
    with pytest.raises(DatasetError, match=re.escape(FILE_CASES[kind].split(":")[0])):
        with Dataset(p) as ds:
            for i in ds.episode_indices:
                ds.episode(i).objects  # noqa: B018
    with pytest.raises(DatasetError, match=re.escape(FILE_CASES[kind].split(":")[0])):
        Frames(p)


def _flip_chunk(shard: Path, dataset: str) -> None:
    """Invert 8 bytes in the middle of a compressed chunk (its data, not the file's header)."""
    with h5py.File(shard, "r") as f:
        info = f[dataset].id.get_chunk_info(1)
    with open(shard, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        b = fh.read(8)
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(bytes(x ^ 0xFF for x in b))


def _flip_contiguous(path: Path, dataset: str, offset: int = 8) -> None:
    """Change one value of an uncompressed array in place: the file stays readable."""
    with h5py.File(path, "r") as f:
        start = f[dataset].id.get_offset()
        assert start is not None
    with open(path, "r+b") as fh:
        fh.seek(start + offset)
        b = fh.read(1)
        fh.seek(start + offset)
        fh.write(bytes([b[0] ^ 0x40]))


def _shard(d: Path) -> Path:
    (shard,) = sorted((d / "shards").glob("*.h5"))
    return shard


def test_a_flipped_compressed_chunk_is_a_clear_error_and_integrity_names_the_episode(
    made, tmp_path
) -> None:
    d = _copy(made["dir"], tmp_path / "d")
    _flip_chunk(_shard(d), "episodes/000002/sensors/cam/rgb")
    for name in ("stats", "export"):
        assert_clean_error(run_command(name, d, tmp_path), "episode 2", "damaged")
    r = simgen("verify", "--integrity", d)
    assert r.exit_code == 1, r.output
    assert "unreadable" in r.output and "FAILED" in r.output and "2 ok, 1 unreadable" in r.output
    rep = check_integrity(d)
    assert [(e.index, e.status) for e in rep.bad] == [(2, "unreadable")]
    frames = Frames(d)  # the index is intact: the reader opens; the bad frame is an error
    with pytest.raises(DatasetError, match="episode 2, frame 1"):
        frames.get(2, 1)
    assert frames.get(1, 1)["rgb"].shape == (30, 40, 3)


def test_integrity_detects_changed_bytes_in_a_committed_shard(made, tmp_path) -> None:
    d = _copy(made["dir"], tmp_path / "d")
    assert simgen("verify", "--integrity", d).exit_code == 0
    _flip_contiguous(_shard(d), "episodes/000001/state/position_w")
    r = simgen("verify", "--integrity", d)
    assert r.exit_code == 1 and "mismatch" in r.output and "1 mismatch, 2 ok" in r.output
    rep = check_integrity(d)
    assert [(e.index, e.status) for e in rep.bad] == [(1, "mismatch")]
    assert rep.bad[0].file == f"shards/{_shard(d).name}"


def test_integrity_of_single_files(made, tmp_path) -> None:
    f = _copy(made["file"], tmp_path / "f.h5")
    with h5py.File(f, "r") as h:  # a rendered file carries its episodes' checksums
        assert [r["index"] for r in json.loads(h.attrs[RECORDS_ATTR])] == [0, 1, 2]
    r = simgen("verify", "--integrity", f)
    assert r.exit_code == 0 and "3 ok" in r.output, r.output
    _flip_contiguous(f, "episodes/000000/state/linear_velocity_w")
    r = simgen("verify", "--integrity", f)
    assert r.exit_code == 1 and "1 mismatch, 2 ok" in r.output, r.output
    old = _copy(made["file"], tmp_path / "old.h5")  # written before files carried checksums
    with h5py.File(old, "a") as h:
        del h.attrs[RECORDS_ATTR]
    r = simgen("verify", "--integrity", old)
    assert r.exit_code == 0 and "3 unchecked" in r.output and "carries no checksums" in r.output


def test_a_missing_or_corrupt_shard_reads_what_is_intact_and_says_what_is_missing(
    made, tmp_path
) -> None:
    for how in ("missing", "corrupt"):
        d = _copy(made["dir"], tmp_path / how)
        shard = _shard(d)
        if how == "missing":
            shard.unlink()
        else:
            shard.write_bytes(b"\0" * 4096)
        why = "is missing" if how == "missing" else "cannot be read"
        with Dataset(d) as ds:
            assert ds.episode_indices == [] and not ds.complete
            assert sorted(ds.unreadable()) == [0, 1, 2]
            assert all(why in v for v in ds.unreadable().values())
            with pytest.raises(DatasetError, match=f"episode 1: its file shards/.* {why}"):
                ds.episode(1)
        r = simgen("inspect", d)
        assert r.exit_code == 0 and "MISSING" in r.output and why in " ".join(r.output.split())
        r = simgen("stats", d)
        assert r.exit_code == 0 and "warning missing: episode 0: its file" in r.output
        r = simgen("params", d)
        assert r.exit_code == 0 and "warning missing: episode 2: its file" in r.output
        for name in ("export", "verify"):
            assert_clean_error(run_command(name, d, tmp_path), "incomplete", why)
        with pytest.raises(DatasetError, match="incomplete: episode 0"):
            Frames(d)
        r = simgen("verify", "--integrity", d)
        assert r.exit_code == 1 and ("3 missing" if how == "missing" else "3 unreadable") in (
            r.output
        )


def test_missing_index_and_unreadable_manifest(made, tmp_path) -> None:
    d = _copy(made["dir"], tmp_path / "noindex")
    (d / "index.h5").unlink()
    for name in ("inspect", "stats", "export", "params"):
        assert_clean_error(run_command(name, d, tmp_path), "no index.h5", "--resume")
    r = simgen("verify", "--integrity", d)  # the shards carry their records: still checkable
    assert r.exit_code == 1 and "3 ok" in r.output and "index.h5 is missing" in r.output
    for how in ("corrupt", "missing"):
        d = _copy(made["dir"], tmp_path / how)
        if how == "corrupt":
            (d / "manifest.json").write_text('{"format": "simgen-dataset-dir')
        else:
            (d / "manifest.json").unlink()
        with Dataset(d) as ds:  # episodes are intact; what the run recorded is unknown
            assert len(ds) == 3 and ds.failures() == []
            assert any("failed episodes of the run are unknown" in p for p in ds.problems())
        r = simgen("stats", d)
        assert r.exit_code == 0 and "failed episodes of the run are unknown" in " ".join(
            r.output.split()
        )
        r = simgen("verify", "--integrity", d)
        assert r.exit_code == 1 and "3 ok" in r.output and "manifest.json" in r.output


def test_failed_episodes_are_shown_by_inspect_stats_and_report(made, tmp_path) -> None:
    """A run that recorded failures (its manifest, as simgen.run.scale writes it)."""
    d = _copy(made["dir"], tmp_path / "d")
    m = json.loads((d / "manifest.json").read_text())
    m["requested"] = [[0, 6]]
    m["failed"] = {
        "000003": {"index": 3, "seed": 123456, "error": "SceneError: mass <= 0", "attempts": 3}
    }
    (d / "manifest.json").write_text(json.dumps(m))
    with Dataset(d) as ds:
        assert [f["index"] for f in ds.failures()] == [3]
        assert ds.problems() == [
            "2 requested episodes were not rendered (4-5): the run stopped early; "
            "'simgen render ... --resume' continues it"
        ]
    r = simgen("inspect", d)
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "failed 3" in text and "seed 123456" in text
    assert "mass <= 0" in text and "not rendered (4-5)" in text
    r = simgen("stats", d)
    text = " ".join(r.output.split())
    assert "1 episodes failed and are missing: episode 3 (seed 123456)" in text
    assert "not rendered (4-5)" in text
    r = simgen("params", d)
    assert "warning episode 3 failed (seed 123456): SceneError: mass <= 0" in r.output
    r = simgen("report", d, "-o", tmp_path / "r.html")
    assert r.exit_code == 0, r.output
    html = (tmp_path / "r.html").read_text()
    assert "Failed episodes (1)" in html and "123456" in html and "mass &lt;= 0" in html
    assert "not rendered (4-5)" in html
    r = simgen("verify", "--integrity", d)
    assert "episode 3 failed in the run (seed 123456" in " ".join(r.output.split())
