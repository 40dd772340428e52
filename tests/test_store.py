"""Dataset directories without rendering: commit protocol, resume scan, checksums, names."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import h5py
import numpy as np
import pytest

from simgen.errors import DatasetError, OutputError
from simgen.io.digest import episode_digest
from simgen.io.reader import Dataset
from simgen.io.store import (
    INDEX,
    MANIFEST,
    RECORDS_ATTR,
    DatasetDirectory,
    EpisodeRecord,
    index_ranges,
)
from simgen.io.writer import DatasetWriter
from simgen.random.sample import sample_episode
from simgen.random.seeding import episode_seed
from simgen.render.egl_devices import choose_egl_device
from simgen.run.records import EpisodeHeader
from simgen.run.worker import merge_parts
from tests.conftest import scene_from

SCENE = """
schema_version: 1
simulation: {duration: 0.1}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: cube, class: box, kind: box, size: [0.2, 0.2, 0.2], mass: {uniform: [1, 2]}}
"""


def _records(n_objects: int = 0):
    yield EpisodeHeader([], ["background", "floor", "box"], 24, 1 / 240, np.array([0]), {})


def write_part(
    root: Path, scene, seed: int, index: int, worker: int, attempt: int
) -> EpisodeRecord:
    """A committed part file the way a worker writes one (a header-only episode)."""
    name = DatasetDirectory.part_name(index, worker, attempt)
    with DatasetWriter(root / name, scene, seed, durable=True) as w:
        w.write_episode(sample_episode(scene, seed, index), _records())
        digest = episode_digest(w.file["episodes"][f"{index:06d}"])
        rec = EpisodeRecord(
            index, episode_seed(seed, index), digest, 0, 0.1, 0.1, 0.0, worker, attempt, name
        )
        w.set_attr(RECORDS_ATTR, json.dumps([asdict(rec)]))
    return rec


def test_index_ranges() -> None:
    assert index_ranges({5, 0, 1, 2, 7, 6}) == [[0, 3], [5, 8]]
    assert index_ranges([]) == []


def test_digest_depends_on_values_not_on_storage(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (3, 8, 10, 3), dtype=np.uint8)
    depth = rng.random((3, 8, 10), dtype=np.float32)
    digests = []
    for i, opts in enumerate(
        ({}, {"compression": "gzip", "shuffle": True}, {"chunks": (1, 4, 5, 3)})
    ):
        with h5py.File(tmp_path / f"{i}.h5", "w") as f:
            g = f.create_group("ep")
            g.attrs["episode_index"] = 3
            g.create_dataset("cam/rgb", data=rgb, **opts)
            g.create_dataset("cam/depth_m", data=depth)
            g.create_dataset(
                "objects/name", data=np.array(["a", "bb"], dtype=object), dtype=h5py.string_dtype()
            )
            digests.append(episode_digest(g))
    assert digests[0] == digests[1] == digests[2]
    with h5py.File(tmp_path / "0.h5", "a") as f:
        f["ep/cam/rgb"][1, 2, 3, 0] ^= 1  # one bit of one pixel
        assert episode_digest(f["ep"]) != digests[0]
        f["ep/cam/rgb"][1, 2, 3, 0] ^= 1
        f["ep"].attrs["episode_index"] = 4
        assert episode_digest(f["ep"]) != digests[0]


def test_resume_scan_adopts_committed_files_and_drops_leftovers(tmp_path: Path) -> None:
    scene = scene_from(SCENE)
    out = tmp_path / "ds"
    with DatasetDirectory.open(out, scene, 7, resume=False, overwrite=False) as d:
        d.begin_session(list(range(4)), {})
        a = d.allocate_attempt()
        r0 = write_part(out, scene, 7, 0, 0, a)
        d.commit(r0)
        d.checkpoint(scene, force=True)  # the manifest knows episode 0 only
        r1 = write_part(out, scene, 7, 1, 0, a)  # committed after the last checkpoint
        r2 = write_part(out, scene, 7, 2, 1, a + 1)
        merged = merge_parts(out, [r2], DatasetDirectory.shard_name(1, a + 1, 0), scene, 7)
        # killed here: a shard holds episode 2, its part is still there, a write was underway
        (out / "parts" / "000003.w001-a002.h5.partial").write_bytes(b"half an HDF5 file")
        dup = write_part(out, scene, 7, 1, 1, a + 1)  # a retried duplicate of episode 1
    with DatasetDirectory.open(out, scene, 7, resume=True, overwrite=False) as d:
        eps = d.manifest.episodes
        assert sorted(eps) == [0, 1, 2]
        assert eps[2].file == merged[0].file and eps[2].file.startswith("shards/")
        assert eps[1].file in (r1.file, dup.file)
        assert {eps[i].sha256 for i in (0, 1, 2)} == {r0.sha256, r1.sha256, r2.sha256}
        left = sorted(p.name for p in (out / "parts").iterdir())
        assert left == sorted([Path(r0.file).name, Path(eps[1].file).name])  # no partial, no dup
        assert d.next_attempt > a + 1  # never reuses a number found on disk
        d.checkpoint(scene, force=True)
    with Dataset(out) as ds:
        assert ds.episode_indices == [0, 1, 2] and not ds.complete
        for i in (0, 1, 2):
            assert episode_digest(ds.episode(i).g) == eps[i].sha256
            assert ds.episode(i).seed == episode_seed(7, i)


def test_opening_rules(tmp_path: Path) -> None:
    scene = scene_from(SCENE)
    out = tmp_path / "ds"
    with DatasetDirectory.open(out, scene, 1, resume=False, overwrite=False) as d:
        d.checkpoint(scene, force=True)
        with pytest.raises(OutputError, match="another simgen run"):
            DatasetDirectory.open(out, scene, 1, resume=True, overwrite=False)
    with pytest.raises(OutputError, match="--resume"):
        DatasetDirectory.open(out, scene, 1, resume=False, overwrite=False)
    with pytest.raises(OutputError, match="--seed 1"):
        DatasetDirectory.open(out, scene, 2, resume=True, overwrite=False)
    other = scene_from(SCENE.replace("[1, 2]", "[1, 3]"))
    with pytest.raises(OutputError, match="different scene"):
        DatasetDirectory.open(out, other, 1, resume=True, overwrite=False)
    DatasetDirectory.open(out, other, 1, resume=False, overwrite=True).close()
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"")
    with pytest.raises(OutputError, match="not a simgen dataset directory"):
        DatasetDirectory.open(foreign, scene, 1, resume=False, overwrite=True)
    assert (foreign / "cat.jpg").exists()


def test_reader_explains_a_directory_without_index(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="not a simgen dataset directory"):
        Dataset(tmp_path / "empty")
    (tmp_path / "empty" / MANIFEST).write_text("{}")
    with pytest.raises(DatasetError, match="--resume"):
        Dataset(tmp_path / "empty")
    assert not (tmp_path / "empty" / INDEX).exists()


def test_egl_device_for_an_assigned_gpu() -> None:
    # CUDA_VISIBLE_DEVICES=<assigned>: that GPU is CUDA ordinal 0, wherever EGL lists it
    assert choose_egl_device([None, 1, 0, 2], [5]) == (2, "EGL_NV_device_cuda")
    # all GPUs visible: its ordinal is its id
    assert choose_egl_device([1, 0, 2], [2], restricted=False)[0] == 2
    assert choose_egl_device([1, 0, 2], [0], restricted=False)[0] == 1
    # no ordinals reported (no EGL_NV_device_cuda): the id, if such an EGL device exists
    assert choose_egl_device([None, None], [1])[0] == 1
    assert choose_egl_device([None], [3])[0] is None
    assert choose_egl_device([0], []) == (None, "no GPU assigned")


def test_single_file_output_refuses_parallel_options(tmp_path: Path) -> None:
    from tests.test_cli import simgen

    r = simgen("render", "scenes/tabletop.yaml", "-o", str(tmp_path / "d"), "--address", "auto")
    assert r.returncode == 2 and "for --backend ray" in r.stderr, r.stderr
    for extra in (["-j", "2"], ["--resume"], ["--backend", "ray"]):
        r = simgen("render", "scenes/tabletop.yaml", "-o", str(tmp_path / "x.h5"), *extra)
        assert r.returncode == 2, r.stderr
        assert "only for dataset directories" in r.stderr and "Traceback" not in r.stderr
    assert not list(tmp_path.iterdir())


def test_after_a_merge_only_the_merged_parts_are_deleted(tmp_path: Path) -> None:
    """A part committed while another worker's merge is being recorded (its result not yet
    processed by the driver) must survive the clean-up of the merged parts."""
    scene = scene_from(SCENE)
    out = tmp_path / "ds"
    with DatasetDirectory.open(out, scene, 3, resume=False, overwrite=False) as d:
        a = d.allocate_attempt()
        merged_part = write_part(out, scene, 3, 0, 0, a)
        d.commit(merged_part)
        shard = merge_parts(out, [merged_part], d.shard_name(0, a, 0), scene, 3)
        in_flight = write_part(out, scene, 3, 1, 1, a + 1)  # committed, not yet reported
        for r in shard:
            d.commit(r)
        d.checkpoint(scene, force=True)
        d.drop_parts([merged_part.file])
        assert not (out / merged_part.file).exists()
        assert (out / in_flight.file).exists()
        d.reconcile_parts()  # once the workers are stopped, unreported parts are adopted
        assert d.manifest.episodes[1].file == in_flight.file
