"""A render worker: one long-lived :class:`Simulator` (GL context, mesh cache) rendering episodes
into part files of a dataset directory, and merging its parts into shards.

The same :class:`RenderWorker` runs in a local process (:mod:`simgen.run.pool`) or a Ray actor
(:mod:`simgen.run.ray_backend`). It never raises for a failed episode: it returns an
:class:`EpisodeOutcome` carrying the error, and the driver decides about retries.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import h5py

from simgen.errors import OutputError, RenderBackendError, SimgenError, StorageError
from simgen.io.layout import episode_group_name
from simgen.io.space import check_free_space
from simgen.io.store import (
    LAYOUT_ATTR,
    RECORDS_ATTR,
    DatasetDirectory,
    EpisodeRecord,
)
from simgen.random.seeding import episode_seed
from simgen.run.records import Record
from simgen.scene.schema import Scene


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs; picklable (sent to spawned processes and Ray actors)."""

    scene: Scene
    base_seed: int
    out: str  # the dataset directory (a path every worker can reach)
    gl: str | None = None
    asset_roots: tuple[str, ...] = ()
    gl_threads: int | None = None  # llvmpipe threads (LP_NUM_THREADS); None: Mesa's default
    num_episodes: int | None = None  # the dataset's size (quotas, schedules)


@dataclass
class EpisodeOutcome:
    index: int
    seed: int
    record: EpisodeRecord | None  # None: the episode failed
    error: str = ""
    fatal: bool = False  # this worker cannot render at all (no GL): the run stops
    output: bool = False  # ... because the output cannot be written (full disk, permissions)
    pid: int = 0
    rss_mb: float = 0.0

    @property
    def ok(self) -> bool:
        return self.record is not None


@dataclass
class MergeOutcome:
    shard: str
    records: list[EpisodeRecord] = field(default_factory=list)  # as now stored in the shard
    error: str = ""
    seconds: float = 0.0
    requested: list[EpisodeRecord] = field(default_factory=list)  # the parts it was given
    output: bool = False  # the error is the output's (full disk...): the run stops


# -- process set-up -----------------------------------------------------------------------------


def configure_process(gl_threads: int | None) -> None:
    """Per-process settings of a long-running worker, before any GL library loads.

    * ``LP_NUM_THREADS``: llvmpipe (software GL) starts one rasterizer thread per core in every
      process; with several workers per machine that oversubscribes the cores.
    * glibc malloc: a fixed mmap threshold of 1 MiB (frame-sized buffers go back to the system
      when freed instead of staying in the heap, whose top glibc trims only past a threshold
      that grows with the largest freed block) and at most 2 arenas (GL and compression threads
      would otherwise each get their own). Measured: a worker's resident memory stays within a
      few percent over hundreds of episodes, instead of stepping up by ~35 MB at random times.
    """
    if gl_threads is not None and "LP_NUM_THREADS" not in os.environ:
        os.environ["LP_NUM_THREADS"] = str(max(1, int(gl_threads)))
    tune_allocator()


def tune_allocator() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
    libc.mallopt(m_arena_max, 2)
    libc.mallopt(m_mmap_threshold, 1 << 20)
    libc.mallopt(m_trim_threshold, 8 << 20)


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux; 0.0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return 0.0


def describe_error(e: BaseException) -> str:
    """One line: the error, and for bugs (not SimgenError) where it was raised."""
    text = f"{type(e).__name__}: {e}".strip()
    if not isinstance(e, SimgenError):
        frames = traceback.extract_tb(e.__traceback__)
        if frames:
            f = frames[-1]
            text += f" (at {Path(f.filename).name}:{f.lineno} in {f.name})"
    return text


# -- the worker ---------------------------------------------------------------------------------


def _timed(records: Iterable[Record], acc: list[float]) -> Iterator[Record]:
    """Yield ``records``, adding the time spent producing them (simulate + render) to acc[0]."""
    it = iter(records)
    while True:
        t0 = time.perf_counter()
        try:
            rec = next(it)
        except StopIteration:
            acc[0] += time.perf_counter() - t0
            return
        acc[0] += time.perf_counter() - t0
        yield rec


class RenderWorker:
    """Renders episodes into ``parts/`` of a dataset directory; merges parts into a shard."""

    def __init__(self, spec: WorkerSpec, worker: int, attempt: int) -> None:
        from simgen.run.episode import Simulator

        self.spec = spec
        self.worker = worker
        self.attempt = attempt
        self.root = Path(spec.out)
        self.sim = Simulator(gl=spec.gl, asset_roots=spec.asset_roots)
        self.host = socket.gethostname()
        self._merges = 0
        self._largest = 0  # bytes of the largest part written (free space wanted: twice that)

    def close(self) -> None:
        self.sim.close()

    def render(self, index: int) -> EpisodeOutcome:
        """Render episode ``index`` into its own part file; commit it by renaming."""
        seed = episode_seed(self.spec.base_seed, index)
        try:
            record = self._render(index, seed)
        except Exception as e:
            output = isinstance(e, StorageError)
            return EpisodeOutcome(
                index,
                seed,
                None,
                str(e) if output else describe_error(e),
                fatal=output or isinstance(e, RenderBackendError),
                output=output,
                pid=os.getpid(),
                rss_mb=rss_mb(),
            )
        return EpisodeOutcome(index, seed, record, pid=os.getpid(), rss_mb=rss_mb())

    def _render(self, index: int, seed: int) -> EpisodeRecord:
        from simgen.io.digest import episode_digest
        from simgen.io.writer import DatasetWriter

        t0 = time.perf_counter()
        spec = self.spec
        params = self.sim.prepare(spec.scene, spec.base_seed, index, num_episodes=spec.num_episodes)
        name = DatasetDirectory.part_name(index, self.worker, self.attempt)
        produce = [0.0]
        with DatasetWriter(
            self.root / name,
            spec.scene,
            spec.base_seed,
            overwrite=True,
            durable=True,
            extra_attrs={LAYOUT_ATTR: "part"},
        ) as w:
            w.reserve_bytes = 2 * self._largest
            summary = w.write_episode(params, _timed(self.sim.run(params), produce))
            w.set_attr("render_backend", json.dumps(self.sim.render_backend()))
            group = w.file["episodes"][episode_group_name(index)]
            digest = episode_digest(group, known=w.array_hashes)
            so_far = time.perf_counter() - t0
            record = EpisodeRecord(
                index=index,
                seed=seed,
                sha256=digest,
                frames=summary.frames,
                seconds=so_far,
                render_s=produce[0],
                write_s=so_far - produce[0],
                worker=self.worker,
                attempt=self.attempt,
                file=name,
                bytes_raw=summary.bytes_raw,
                host=self.host,
            )
            w.set_attr(RECORDS_ATTR, json.dumps([asdict(record)]))
        # the record stored in the part lacks the commit (close, fsync, rename); the
        # manifest gets the full time
        total = time.perf_counter() - t0
        stored = (self.root / name).stat().st_size
        self._largest = max(self._largest, stored)
        return replace(
            record, seconds=total, write_s=max(0.0, total - produce[0]), bytes_stored=stored
        )

    def merge(self, records: list[EpisodeRecord]) -> MergeOutcome:
        """Copy the episodes of ``records`` (part files) into a new shard of this worker."""
        t0 = time.perf_counter()
        name = DatasetDirectory.shard_name(self.worker, self.attempt, self._merges)
        self._merges += 1
        try:
            check_free_space(self.root, sum(r.bytes_stored for r in records))
            merged = merge_parts(self.root, records, name, self.spec.scene, self.spec.base_seed)
        except Exception as e:
            (self.root / (name + ".partial")).unlink(missing_ok=True)
            output = isinstance(e, StorageError)
            error = str(e) if output else describe_error(e)
            return MergeOutcome(name, [], error, time.perf_counter() - t0, records, output=output)
        return MergeOutcome(name, merged, "", time.perf_counter() - t0, records)


def merge_parts(
    root: Path, records: list[EpisodeRecord], shard: str, scene: Scene, base_seed: int
) -> list[EpisodeRecord]:
    """Write shard ``shard`` (relative to ``root``) holding the episodes of ``records``.

    The copy keeps the stored chunks as they are (no recompression). The shard carries its
    records, so a resumed run finds its episodes even if the manifest was not rewritten."""
    from simgen.io.writer import DatasetWriter

    out = [replace(r, file=shard) for r in records]
    backend = ""
    with DatasetWriter(
        root / shard, scene, base_seed, durable=True, extra_attrs={LAYOUT_ATTR: "shard"}
    ) as w:
        for r in records:
            try:
                src = h5py.File(root / r.file, "r")
            except OSError as e:
                raise OutputError(f"cannot read {root / r.file}: {e}") from None
            with src:
                w.copy_episode(src["episodes"][episode_group_name(r.index)])
                backend = backend or str(src.attrs.get("render_backend", ""))
        w.set_attr(RECORDS_ATTR, json.dumps([asdict(r) for r in out]))
        if backend:
            w.set_attr("render_backend", backend)
    return out


def worker_info(worker: int, attempt: int) -> dict[str, Any]:
    return {"worker": worker, "attempt": attempt, "pid": os.getpid(), "host": socket.gethostname()}
