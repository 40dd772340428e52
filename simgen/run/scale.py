"""Render many episodes with parallel workers into a dataset directory: crash-safe, resumable.

The driver (this module) owns the dataset directory (:mod:`simgen.io.store`): it hands episode
indices to workers one at a time, records each committed episode, retries failed ones, replaces
lost workers, asks workers to merge their parts into shards, and rewrites the index and manifest.
Workers run in local processes (:mod:`simgen.run.pool`) or Ray actors
(:mod:`simgen.run.ray_backend`); the bytes of every episode do not depend on which.

Errors in the scene itself (invalid file, a value that cannot be sampled for the first episode,
a missing asset) are raised before any worker starts. A failure inside one episode (an exception
for one sample of the scene, a worker that dies) is retried, then recorded as failed with its
seed and error, and the run goes on.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from simgen.errors import RenderBackendError, SimgenError, StorageError
from simgen.io.store import DatasetDirectory, EpisodeRecord, FailureRecord
from simgen.random.seeding import episode_seed
from simgen.run.backend import Backend, Lost, Merged, Message, Ready, Rendered
from simgen.run.worker import WorkerSpec
from simgen.scene.schema import Scene

BACKENDS = ("local", "ray")
DEFAULT_RETRIES = 2
DEFAULT_MERGE_EVERY = 256  # a worker merges its parts into a shard every N episodes...
MERGE_BYTES = 2 << 30  # ... or when its parts reach this size (bounds shard size, merge time)
POLL_S = 0.5


@dataclass(frozen=True)
class RunEvent:
    """Progress of a run: ``kind`` is start, worker_started, episode, retry, failed,
    worker_lost, merged, merge_failed, stopped (the output cannot be written) or finished;
    ``data`` is JSON-serializable."""

    kind: str
    data: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps({"event": self.kind, **self.data}, sort_keys=True)


@dataclass
class ScaleSummary:
    path: Path
    backend: str
    workers: int
    requested: int
    done_before: int  # already committed when this run started (resume)
    rendered: int = 0  # committed by this run
    frames: int = 0
    seconds: float = 0.0
    render_s: float = 0.0  # summed over episodes: simulate + render
    write_s: float = 0.0  # summed over episodes: write + compression waits + checksum + commit
    merge_s: float = 0.0
    bytes_on_disk: int = 0
    complete: bool = False
    failed: list[FailureRecord] = field(default_factory=list)
    lost_workers: int = 0

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def writer_share(self) -> float:
        """Share of the workers' episode time spent writing (incl. merging into shards)."""
        total = self.render_s + self.write_s + self.merge_s
        return (self.write_s + self.merge_s) / total if total > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        d["frames_per_second"] = self.frames_per_second
        d["writer_share"] = self.writer_share
        return d


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def preflight(
    scene: Scene,
    seed: int,
    index: int,
    asset_roots: tuple[str | Path, ...] = (),
    num_episodes: int | None = None,
) -> None:
    """Raise the scene's user errors before any worker starts: prepare episode ``index``
    (sampling, placement, constraints) and build its physics world (which resolves and loads
    every asset)."""
    from simgen.run.prepare import prepare_episode
    from simgen.sim.assets import AssetResolver
    from simgen.sim.visuals import MeshLibrary
    from simgen.sim.world import PhysicsWorld

    params = prepare_episode(
        scene, seed, index, num_episodes=num_episodes, asset_roots=tuple(asset_roots)
    )
    assets = AssetResolver.for_scene(scene.base_dir, tuple(Path(r) for r in asset_roots))
    with PhysicsWorld(params, assets=assets, meshes=MeshLibrary()):
        pass


def render_directory(
    scene: Scene,
    out: str | Path,
    *,
    episodes: Iterable[int],
    seed: int,
    workers: int | None = None,
    backend: str = "local",
    address: str | None = None,
    gpus_per_worker: float = 0.0,
    resume: bool = False,
    overwrite: bool = False,
    retries: int = DEFAULT_RETRIES,
    gl: str | None = None,
    asset_roots: tuple[str | Path, ...] = (),
    merge_every: int = DEFAULT_MERGE_EVERY,
    on_event: Callable[[RunEvent], None] | None = None,
    num_episodes: int | None = None,
) -> ScaleSummary:
    """Render ``episodes`` of ``scene`` (base seed ``seed``) into the dataset directory ``out``.

    ``workers``: parallel workers (default: the cores of this machine, or the slots of the Ray
    cluster). ``resume``: keep the episodes ``out`` already holds and render the rest.
    ``retries``: extra attempts for a failed episode before it is recorded as failed.
    ``num_episodes``: the dataset's size, for quotas and schedules (default: the largest
    requested index + 1).
    """
    if backend not in BACKENDS:
        raise SimgenError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if workers is not None and workers < 1:
        raise SimgenError(f"--workers must be at least 1, got {workers}")
    if gpus_per_worker < 0:
        raise SimgenError("--gpus-per-worker must be >= 0")
    if backend == "local" and (address or gpus_per_worker > 0):
        raise SimgenError(
            "--address and --gpus-per-worker are for --backend ray (local workers render on "
            "EGL device $EGL_DEVICE_ID, default 0)"
        )
    requested = sorted(set(episodes))
    if not requested:
        raise SimgenError("no episodes to render")
    t0 = time.perf_counter()
    emit = on_event or (lambda e: None)
    if num_episodes is None:
        num_episodes = requested[-1] + 1
    preflight(scene, seed, requested[0], asset_roots, num_episodes)
    if backend == "local" and scene.sensors:
        from simgen.render.platform import select_platform

        select_platform(gl)  # no GL at all is an error of the machine: say so before starting
    with DatasetDirectory.open(
        out, scene, seed, resume=resume, overwrite=overwrite, num_episodes=num_episodes
    ) as store:
        done_before = [i for i in requested if i in store.manifest.episodes]
        todo = [i for i in requested if i not in store.manifest.episodes]
        spec = WorkerSpec(
            scene=scene,
            base_seed=seed,
            out=str(Path(out).resolve()),
            gl=gl,
            asset_roots=tuple(str(Path(r).resolve()) for r in asset_roots),
            num_episodes=num_episodes,
        )
        be, n = _make_backend(backend, spec, workers, address, gpus_per_worker, len(todo))
        summary = ScaleSummary(store.path, backend, n, len(requested), len(done_before))
        store.begin_session(
            requested, {"backend": backend, "workers": n, "gpus_per_worker": gpus_per_worker}
        )
        store.checkpoint(scene, force=True)
        emit(
            RunEvent(
                "start",
                {
                    "out": str(store.path),
                    "backend": backend,
                    "workers": n,
                    "requested": len(requested),
                    "done_before": len(done_before),
                    "todo": len(todo),
                },
            )
        )
        driver = _Driver(store, be, scene, todo, summary, retries, merge_every, emit, t0)
        stopped: StorageError | None = None
        try:
            if be is not None:
                driver.run(n)
                be.close()
            store.reconcile_parts()  # the workers are stopped: no commit is in flight
            _merge_leftovers(store, scene, summary, emit)
        except StorageError as e:
            stopped = e
        finally:
            if be is not None:
                be.close()
            summary.seconds = time.perf_counter() - t0
            store.end_session({"seconds": round(summary.seconds, 3), "rendered": summary.rendered})
            store.reconcile_parts()
            try:
                store.checkpoint(scene, force=True)
            except StorageError:
                if stopped is None:
                    raise
        if stopped is not None:
            emit(RunEvent("stopped", {"error": str(stopped)}))
            raise StorageError(
                f"{stopped}\nthe run stopped: {len(store.manifest.episodes)} committed episodes "
                f"of {store.path} are kept and readable; free space (or fix the permissions), "
                "then run the same command with --resume to continue"
            ) from None
        summary.complete = store.manifest.complete
        summary.failed = sorted(store.manifest.failed.values(), key=lambda f: f.index)
        summary.bytes_on_disk = sum(
            f.stat().st_size for f in store.path.rglob("*.h5") if f.is_file()
        )
    emit(RunEvent("finished", summary.to_json()))
    return summary


def _merge_leftovers(
    store: DatasetDirectory, scene: Scene, summary: ScaleSummary, emit: Callable[[RunEvent], None]
) -> None:
    """Merge parts no worker merged (workers lost, or nothing left to render) in the driver."""
    from simgen.run.worker import merge_parts

    leftovers = store.loose_parts()
    if not leftovers:
        return
    name = store.shard_name(0, store.allocate_attempt(), 0)
    t0 = time.perf_counter()
    try:
        records = merge_parts(store.path, leftovers, name, scene, store.manifest.base_seed)
    except SimgenError as e:
        (store.path / (name + ".partial")).unlink(missing_ok=True)
        emit(RunEvent("merge_failed", {"worker": None, "error": str(e)}))
        return
    summary.merge_s += time.perf_counter() - t0
    for r in records:
        store.commit(r)
    store.checkpoint(scene, force=True)
    store.drop_parts([r.file for r in leftovers])
    emit(RunEvent("merged", {"worker": None, "shard": name, "episodes": len(records)}))


def _make_backend(
    kind: str,
    spec: WorkerSpec,
    workers: int | None,
    address: str | None,
    gpus_per_worker: float,
    todo: int,
) -> tuple[Backend | None, int]:
    cores = available_cores()
    if kind == "ray":
        from simgen.run.ray_backend import RayBackend

        env_threads = os.environ.get("LP_NUM_THREADS")
        if todo == 0:
            return None, 0
        probe = RayBackend(spec, address=address, gpus_per_worker=gpus_per_worker)
        slots = probe.cluster_slots(gpus_per_worker, 1.0)
        n = min(workers or max(slots, 1), todo)
        # llvmpipe threads: a local instance splits this machine like the local pool does;
        # on a cluster each actor has the one CPU it reserved
        threads = int(env_threads) if env_threads else (max(1, cores // n) if not address else 1)
        probe.spec = WorkerSpec(**{**spec.__dict__, "gl_threads": threads})
        return probe, n
    from simgen.run.pool import LocalBackend

    n = min(workers or cores, max(todo, 1))
    if todo == 0:
        return None, n
    env_threads = os.environ.get("LP_NUM_THREADS")
    threads = int(env_threads) if env_threads else max(1, cores // n)
    return LocalBackend(WorkerSpec(**{**spec.__dict__, "gl_threads": threads})), n


@dataclass
class _Slot:
    attempt: int
    ready: bool = False
    task: tuple[str, Any] | None = None  # ("render", index) or ("merge", [records])
    parts: list[EpisodeRecord] = field(default_factory=list)  # committed parts, not merged
    merge_failed: bool = False


class _Driver:
    def __init__(
        self,
        store: DatasetDirectory,
        backend: Backend | None,
        scene: Scene,
        todo: list[int],
        summary: ScaleSummary,
        retries: int,
        merge_every: int,
        emit: Callable[[RunEvent], None],
        t0: float,
    ) -> None:
        self.store = store
        self.be = backend
        self.scene = scene
        self.pending: deque[int] = deque(todo)
        self.todo = len(todo)
        self.summary = summary
        self.retries = retries
        self.merge_every = max(1, merge_every)
        self.emit = emit
        self.t0 = t0
        self.slots: dict[int, _Slot] = {}
        self.tries: Counter[int] = Counter()
        self.orphans: list[EpisodeRecord] = store.loose_parts()  # parts of earlier sessions
        self.restarts_left = 0

    # -- main loop ------------------------------------------------------------------------------

    def run(self, n: int) -> None:
        self.restarts_left = 2 * n + self.todo * (self.retries + 1)
        for w in range(n):
            self._start(w)
        while self._work_left():
            self._assign()
            assert self.be is not None
            for msg in self.be.poll(POLL_S):
                self._handle(msg)
            self.store.checkpoint(self.scene)
            if not self.slots and self._work_left():
                raise SimgenError("every worker was lost; see the errors above")

    def _work_left(self) -> bool:
        slots = self.slots.values()
        mergeable = any(s.parts and not s.merge_failed for s in slots)
        orphans = bool(self.orphans) and any(not s.merge_failed for s in slots)
        return bool(self.pending) or any(s.task for s in slots) or mergeable or orphans

    def _start(self, w: int) -> None:
        assert self.be is not None
        attempt = self.store.allocate_attempt()
        self.slots[w] = _Slot(attempt)
        self.be.start_worker(w, attempt)

    def _assign(self) -> None:
        assert self.be is not None
        for w, s in self.slots.items():
            if s.task is not None:
                continue
            if s.merge_failed:
                batch: list[EpisodeRecord] = []
            elif (
                len(s.parts) >= self.merge_every
                or sum(p.bytes_stored for p in s.parts) >= MERGE_BYTES
            ):
                batch = list(s.parts)
            elif not self.pending:  # no more episodes for this worker: merge what it has
                batch = s.parts + self.orphans
                self.orphans = []
            else:
                batch = []
            if batch:
                s.task = ("merge", batch)
                self.be.merge(w, batch)
            elif self.pending:
                i = self.pending.popleft()
                s.task = ("render", i)
                self.be.render(w, i)

    # -- messages -------------------------------------------------------------------------------

    def _handle(self, msg: Message) -> None:
        s = self.slots.get(msg.worker)
        current = s is not None and s.attempt == msg.attempt
        if isinstance(msg, Ready):
            if current and s is not None:
                s.ready = True
                self.emit(RunEvent("worker_started", {**msg.info, "worker": msg.worker}))
        elif isinstance(msg, Rendered):
            if current and s is not None:
                s.task = None
            self._rendered(msg, s if current else None)
        elif isinstance(msg, Merged):
            if current and s is not None:
                s.task = None
            self._merged(msg, s if current else None)
        elif isinstance(msg, Lost) and current and s is not None:
            self._lost(msg, s)

    def _rendered(self, msg: Rendered, s: _Slot | None) -> None:
        o = msg.outcome
        if o.record is None:
            self._failed(o.index, o.seed, o.error, o.fatal, o.output)
            return
        if o.index in self.store.manifest.episodes:
            return  # a duplicate (the first copy was committed already); its part is dropped
        rec = o.record
        self.store.commit(rec)
        if s is not None:
            s.parts.append(rec)
        else:
            self.orphans.append(rec)
        sm = self.summary
        sm.rendered += 1
        sm.frames += rec.frames
        sm.render_s += rec.render_s
        sm.write_s += rec.write_s
        elapsed = time.perf_counter() - self.t0
        done = sm.done_before + sm.rendered
        rate = sm.rendered / elapsed if elapsed > 0 else 0.0
        remaining = self.todo - sm.rendered - len(self.store.manifest.failed)
        self.emit(
            RunEvent(
                "episode",
                {
                    "index": rec.index,
                    "seed": rec.seed,
                    "frames": rec.frames,
                    "seconds": round(rec.seconds, 4),
                    "worker": msg.worker,
                    "attempt": msg.attempt,
                    "pid": o.pid,
                    "rss_mb": round(o.rss_mb, 1),
                    "done": done,
                    "failed": len(self.store.manifest.failed),
                    "total": sm.requested,
                    "frames_per_s": round(sm.frames / elapsed, 3) if elapsed > 0 else 0.0,
                    "eta_s": round(remaining / rate, 1) if rate > 0 else None,
                },
            )
        )

    def _failed(
        self, index: int, seed: int, error: str, fatal: bool = False, output: bool = False
    ) -> None:
        if fatal:  # every episode would fail the same way: stop (committed ones are kept)
            raise StorageError(error) if output else RenderBackendError(error)
        if index in self.store.manifest.episodes:
            return
        self.tries[index] += 1
        data = {"index": index, "seed": seed, "error": error, "attempts": self.tries[index]}
        if self.tries[index] <= self.retries:
            self.pending.append(index)
            self.emit(RunEvent("retry", data))
        else:
            self.store.fail(FailureRecord(index, seed, error, self.tries[index]))
            self.emit(RunEvent("failed", data))

    def _merged(self, msg: Merged, s: _Slot | None) -> None:
        o = msg.outcome
        self.summary.merge_s += o.seconds
        if o.output:  # the disk is full (or became unwritable): the next episode fails too
            raise StorageError(o.error)
        if o.error:
            if s is not None:
                s.merge_failed = True  # its parts stay (committed, indexed): never lost
                own = {p.index for p in s.parts}
                self.orphans.extend(r for r in o.requested if r.index not in own)
            self.emit(RunEvent("merge_failed", {"worker": msg.worker, "error": o.error}))
            return
        merged = {r.index for r in o.records}
        for r in o.records:
            self.store.commit(r)
        if s is not None:
            s.parts = [p for p in s.parts if p.index not in merged]
        self.orphans = [p for p in self.orphans if p.index not in merged]
        # the index must point at the shard before the parts go; only the merged parts go
        # (a part committed this instant, not yet reported, must stay)
        self.store.checkpoint(self.scene, force=True)
        self.store.drop_parts([r.file for r in o.requested])
        self.emit(
            RunEvent(
                "merged",
                {
                    "worker": msg.worker,
                    "shard": o.shard,
                    "episodes": len(o.records),
                    "seconds": round(o.seconds, 3),
                },
            )
        )

    def _lost(self, msg: Lost, s: _Slot) -> None:
        del self.slots[msg.worker]
        self.summary.lost_workers += 1
        self.emit(
            RunEvent(
                "worker_lost",
                {"worker": msg.worker, "attempt": msg.attempt, "reason": msg.reason},
            )
        )
        if not s.ready:
            hint = (
                " (from a Python script, call render_directory under "
                '`if __name__ == "__main__":`; spawned workers import the main module)'
                if self.be is not None and self.be.name == "local"
                else ""
            )
            raise SimgenError(f"worker {msg.worker} could not start: {msg.reason}{hint}")
        if s.task is not None and s.task[0] == "merge":
            self.orphans.extend(s.task[1])  # its own parts and the orphans it was merging
        else:
            self.orphans.extend(s.parts)
        if s.task is not None and s.task[0] == "render":
            index = int(s.task[1])
            self._failed(index, episode_seed(self.store.manifest.base_seed, index), msg.reason)
        if self._work_left() and self.restarts_left > 0:
            self.restarts_left -= 1
            self._start(msg.worker)
