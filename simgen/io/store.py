"""Dataset directories: the output of parallel runs, readable as one dataset.

Layout of a dataset directory::

    index.h5       every committed episode as one simgen dataset (HDF5 external links)
    manifest.json  the run (scene, seed, requested episodes) and each episode's record:
                   file, seed, content checksum, timing, worker and attempt; failures
    parts/<episode>.w<worker>-a<attempt>.h5    one committed episode each
    shards/w<worker>-a<attempt>-<n>.h5         a worker's committed episodes, merged

Every file here is a simgen dataset file (same layout as a single-file dataset), written under a
``.partial`` name and renamed when complete, after an fsync. A rename is the only commit: an
episode is committed when its part file appears under its final name, a shard when it appears
under its final name. A killed run therefore leaves complete files plus ``.partial`` leftovers
(deleted on resume), never a file that looks committed but is not. ``index.h5`` and
``manifest.json`` are rewritten from time to time (temporary file + rename); they may lag the
files, and resuming rebuilds them from the files (each part and shard carries its records).

Worker and attempt numbers in file names are unique within the directory (the driver allocates
a fresh attempt to every worker it starts, above any number found on disk), so a retried or
duplicated task never overwrites another's file.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py

from simgen import __version__
from simgen.errors import DatasetError, OutputError
from simgen.io.layout import episode_group_name
from simgen.io.space import (
    check_free_space,
    output_errno,
    output_error,
    output_errors,
    writable_folder,
)
from simgen.scene.schema import Scene

DIR_FORMAT_NAME = "simgen-dataset-directory"
DIR_FORMAT_VERSION = 1
INDEX = "index.h5"
MANIFEST = "manifest.json"
PARTS = "parts"
SHARDS = "shards"
LOCK = ".lock"
#: root attribute of parts and shards holding their episodes' records (JSON list)
RECORDS_ATTR = "episode_records"
#: root attribute telling what a file is within a directory: part, shard or index
LAYOUT_ATTR = "dataset_layout"

_NAME_RE = re.compile(r"w(\d+)-a(\d+)")


@dataclass
class EpisodeRecord:
    """What the manifest knows about one committed episode."""

    index: int
    seed: int
    sha256: str  # simgen.io.digest.episode_digest of the stored episode
    frames: int
    seconds: float  # wall time of the episode in its worker (render + write + checksum)
    render_s: float  # of which: simulating and rendering
    write_s: float  # of which: writing, compressing (waits), checksum, fsync
    worker: int
    attempt: int
    file: str = ""  # relative to the directory
    bytes_raw: int = 0  # uncompressed size of its arrays
    bytes_stored: int = 0  # size of its part file (compressed)
    host: str = ""

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> EpisodeRecord:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class FailureRecord:
    index: int
    seed: int
    error: str
    attempts: int


@dataclass
class Manifest:
    base_seed: int
    scene_sha256: str
    scene_path: str
    requested: list[list[int]] = field(default_factory=list)  # half-open [start, stop) ranges
    episodes: dict[int, EpisodeRecord] = field(default_factory=dict)
    failed: dict[int, FailureRecord] = field(default_factory=dict)
    sessions: list[dict[str, Any]] = field(default_factory=list)

    def requested_indices(self) -> set[int]:
        return {i for a, b in self.requested for i in range(a, b)}

    @property
    def complete(self) -> bool:
        return self.requested_indices() <= set(self.episodes)

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": DIR_FORMAT_NAME,
                "format_version": DIR_FORMAT_VERSION,
                "simgen_version": __version__,
                "base_seed": self.base_seed,
                "scene_sha256": self.scene_sha256,
                "scene_path": self.scene_path,
                "requested": self.requested,
                "complete": self.complete,
                "num_episodes": len(self.episodes),
                "num_failed": len(self.failed),
                "episodes": {
                    episode_group_name(i): asdict(r) for i, r in sorted(self.episodes.items())
                },
                "failed": {
                    episode_group_name(i): asdict(r) for i, r in sorted(self.failed.items())
                },
                "sessions": self.sessions,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str, where: Path) -> Manifest:
        try:
            d = json.loads(text)
            if d.get("format") != DIR_FORMAT_NAME:
                raise ValueError(f"format is {d.get('format')!r}")
            if int(d["format_version"]) > DIR_FORMAT_VERSION:
                raise DatasetError(f"{where}: written by a newer simgen; upgrade simgen")
            return cls(
                base_seed=int(d["base_seed"]),
                scene_sha256=str(d["scene_sha256"]),
                scene_path=str(d.get("scene_path", "")),
                requested=[[int(a), int(b)] for a, b in d.get("requested", [])],
                episodes={
                    int(k): EpisodeRecord.from_json(v) for k, v in d.get("episodes", {}).items()
                },
                failed={int(k): FailureRecord(**v) for k, v in d.get("failed", {}).items()},
                sessions=list(d.get("sessions", [])),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise DatasetError(f"{where}: not a readable simgen manifest ({e})") from None


def index_ranges(indices: set[int] | list[int]) -> list[list[int]]:
    """Sorted indices as half-open ranges: {0, 1, 2, 5} -> [[0, 3], [5, 6]]."""
    out: list[list[int]] = []
    for i in sorted(set(indices)):
        if out and out[-1][1] == i:
            out[-1][1] = i + 1
        else:
            out.append([i, i + 1])
    return out


def scene_fingerprint(scene: Scene, num_episodes: int | None = None) -> str:
    """What must not change between the sessions of one directory: the validated scene and the
    dataset's size (quotas and schedules depend on it; docs/randomization.md)."""
    import hashlib

    text = scene.model_dump_json(by_alias=True) + f"|episodes={num_episodes}"
    return hashlib.sha256(text.encode()).hexdigest()


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_records(path: Path) -> list[EpisodeRecord]:
    """The episode records a part or shard carries (root attribute ``episode_records``)."""
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs[RECORDS_ATTR]
    except (OSError, KeyError) as e:
        raise DatasetError(
            f"{path}: a committed file of this dataset cannot be read ({e}); delete it and "
            "run again with --resume to redo its episodes"
        ) from None
    return [EpisodeRecord.from_json(d) for d in json.loads(raw)]


class DatasetDirectory:
    """A dataset directory being written by one driver (holds a lock while open)."""

    def __init__(self, path: Path, manifest: Manifest, lock_fd: int) -> None:
        self.path = path
        self.manifest = manifest
        self._lock_fd = lock_fd
        self._last_checkpoint = 0.0
        self._checkpoint_cost = 0.0
        self._backend = ""  # the GL renderer of the first episode, for the index
        self.next_attempt = 1 + max(
            [*self._attempts_on_disk(), *(r.attempt for r in manifest.episodes.values())],
            default=0,
        )

    # -- opening --------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | Path,
        scene: Scene,
        base_seed: int,
        *,
        resume: bool,
        overwrite: bool,
        num_episodes: int | None = None,
    ) -> DatasetDirectory:
        """Create ``path``, or reopen it to resume the same scene and seed. Takes the lock."""
        p = Path(path)
        if p.exists() and not p.is_dir():
            raise OutputError(f"{p} exists and is not a directory")
        existing = (p / MANIFEST).exists() or (p / INDEX).exists()
        if p.is_dir() and not existing and any(p.iterdir()):
            raise OutputError(
                f"{p} is a folder that is not a simgen dataset directory; give a new or empty --out"
            )
        if existing and not (resume or overwrite):
            raise OutputError(
                f"{p} already holds a dataset; pass --resume to continue it or --overwrite to "
                "replace it"
            )
        try:
            p.mkdir(parents=True, exist_ok=True)
            fd = os.open(p / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            if output_errno(e) is not None:
                raise output_error(e, p) from None
            raise OutputError(f"cannot write {p}: {e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise OutputError(f"{p} is being written by another simgen run") from None
        try:
            if existing and overwrite and not resume:
                for name in (INDEX, MANIFEST):
                    (p / name).unlink(missing_ok=True)
                for sub in (PARTS, SHARDS):
                    shutil.rmtree(p / sub, ignore_errors=True)
                existing = False
            fp = scene_fingerprint(scene, num_episodes)
            fresh = Manifest(base_seed, fp, scene.source_path or "")
            manifest = cls._load_manifest(p, fp, scene, base_seed) if existing else fresh
            with output_errors(p):
                (p / PARTS).mkdir(exist_ok=True)
                (p / SHARDS).mkdir(exist_ok=True)
            writable_folder(p / PARTS)  # permission bits do not bind root: try it
            check_free_space(p)
            d = cls(p, manifest, fd)
            d._scan()
        except BaseException:
            os.close(fd)
            raise
        return d

    @staticmethod
    def _load_manifest(p: Path, fingerprint: str, scene: Scene, base_seed: int) -> Manifest:
        m = p / MANIFEST
        if not m.exists():
            raise OutputError(f"{p}: has an index but no {MANIFEST}; use a new --out")
        manifest = Manifest.from_json(m.read_text(), m)
        if manifest.base_seed != base_seed:
            raise OutputError(
                f"{p} was rendered with --seed {manifest.base_seed}, not {base_seed}; resume with "
                "the same seed or choose another --out"
            )
        if manifest.scene_sha256 != fingerprint:
            raise OutputError(
                f"{p} was rendered from a different scene (or --resolution, or --episodes) than "
                f"{scene.source_path or 'this one'}; resume with the same scene or choose "
                "another --out"
            )
        return manifest

    def _attempts_on_disk(self) -> list[int]:
        out = []
        for sub in (PARTS, SHARDS):
            for f in (self.path / sub).glob("*"):
                m = _NAME_RE.search(f.name)
                if m:
                    out.append(int(m.group(2)))
        return out

    def _scan(self) -> None:
        """Reconcile the manifest with the committed files on disk (after a crash they may be
        ahead of it) and delete ``.partial`` leftovers. Only while no worker runs."""
        for sub in (PARTS, SHARDS):
            for f in (self.path / sub).glob("*.partial"):
                f.unlink(missing_ok=True)
        for name in (INDEX, MANIFEST):
            (self.path / (name + ".partial")).unlink(missing_ok=True)
        eps = {i: r for i, r in self.manifest.episodes.items() if (self.path / r.file).is_file()}
        known = {r.file for r in eps.values()}
        for shard in sorted((self.path / SHARDS).glob("*.h5")):
            rel = f"{SHARDS}/{shard.name}"
            if rel not in known:
                for r in read_records(shard):
                    r.file = rel
                    eps[r.index] = r  # a shard wins over a part of the same episode
        self.manifest.episodes = eps
        self.reconcile_parts()

    def reconcile_parts(self) -> None:
        """Adopt committed parts the manifest does not know (their episode is not recorded) and
        delete those whose episode is recorded in another file (merged, or a duplicate).
        Only while no worker runs: a part being committed right now would look unknown."""
        eps = self.manifest.episodes
        used = {r.file for r in eps.values()}
        for part in sorted((self.path / PARTS).glob("*.h5")):
            rel = f"{PARTS}/{part.name}"
            if rel in used:
                continue
            recs = read_records(part)
            if all(r.index in eps for r in recs):
                part.unlink(missing_ok=True)
                continue
            for r in recs:
                r.file = rel
                eps.setdefault(r.index, r)
            used.add(rel)

    def drop_parts(self, files: list[str]) -> None:
        """Delete the given part files, which a shard now holds (after a checkpoint)."""
        used = {r.file for r in self.manifest.episodes.values()}
        for rel in files:
            if rel.startswith(PARTS + "/") and rel not in used:
                (self.path / rel).unlink(missing_ok=True)

    def close(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> DatasetDirectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- names ----------------------------------------------------------------------------------

    def allocate_attempt(self) -> int:
        a = self.next_attempt
        self.next_attempt += 1
        return a

    @staticmethod
    def part_name(index: int, worker: int, attempt: int) -> str:
        return f"{PARTS}/{episode_group_name(index)}.w{worker:03d}-a{attempt:03d}.h5"

    @staticmethod
    def shard_name(worker: int, attempt: int, seq: int) -> str:
        return f"{SHARDS}/w{worker:03d}-a{attempt:03d}-{seq:03d}.h5"

    # -- records --------------------------------------------------------------------------------

    def begin_session(self, requested: list[int], info: dict[str, Any]) -> None:
        m = self.manifest
        m.requested = index_ranges(m.requested_indices() | set(requested))
        for i in requested:
            m.failed.pop(i, None)
        m.sessions.append({"started_utc": _now(), **info})

    def end_session(self, info: dict[str, Any]) -> None:
        self.manifest.sessions[-1].update({"finished_utc": _now(), **info})

    def commit(self, rec: EpisodeRecord) -> None:
        self.manifest.episodes[rec.index] = rec
        self.manifest.failed.pop(rec.index, None)

    def fail(self, rec: FailureRecord) -> None:
        if rec.index not in self.manifest.episodes:
            self.manifest.failed[rec.index] = rec

    def loose_parts(self) -> list[EpisodeRecord]:
        """Committed episodes still in part files (not yet merged into a shard)."""
        return sorted(
            (r for r in self.manifest.episodes.values() if r.file.startswith(PARTS + "/")),
            key=lambda r: r.index,
        )

    # -- index and manifest ---------------------------------------------------------------------

    def checkpoint(self, scene: Scene, *, force: bool = False) -> bool:
        """Rewrite ``index.h5`` and ``manifest.json`` (each atomically) if ``force`` or enough
        time has passed: at most every 2 s, and never more than 5% of the time."""
        now = time.monotonic()
        wait = max(2.0, 20.0 * self._checkpoint_cost)
        if not force and now - self._last_checkpoint < wait:
            return False
        with output_errors(self.path):
            self.write_index(scene)
            _atomic_write_text(self.path / MANIFEST, self.manifest.to_json())
        self._last_checkpoint = time.monotonic()
        self._checkpoint_cost = self._last_checkpoint - now
        return True

    def write_index(self, scene: Scene) -> None:
        from simgen.io.writer import DatasetWriter

        m = self.manifest
        backend = self._render_backend()
        with DatasetWriter(
            self.path / INDEX,
            scene,
            m.base_seed,
            overwrite=True,
            durable=True,
            extra_attrs={LAYOUT_ATTR: "index", "manifest": MANIFEST},
        ) as w:
            for i, r in sorted(m.episodes.items()):
                w.link_episode(i, r.file)
            if backend:
                w.set_attr("render_backend", backend)
            w.complete = m.complete

    def _render_backend(self) -> str:
        for r in sorted(self.manifest.episodes.values(), key=lambda r: r.index)[:1]:
            if not self._backend:
                try:
                    with h5py.File(self.path / r.file, "r") as f:
                        self._backend = str(f.attrs.get("render_backend", ""))
                except OSError:
                    pass
        return self._backend


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
