"""Online streaming: episodes generated on the fly in worker processes, frames yielded for
training without touching the disk.

:func:`stream` returns an iterable of frames (dicts of arrays, with provenance: episode index,
episode seed, base seed). Episodes are rendered in parallel by ``workers`` spawned processes (each
keeping its GL context and mesh cache) and yielded in episode order, frame by frame as they are
rendered; the frames are exactly those a dataset of the same scene and seed stores. When PyTorch
is installed the stream is also a ``torch.utils.data.IterableDataset``; inside a ``DataLoader``
worker it renders its share of the episodes in that worker's process instead.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing as mp
import os
import queue
import signal
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from simgen.errors import SimgenError
from simgen.random.seeding import episode_seed
from simgen.run.records import SensorFrame
from simgen.scene.schema import Scene

DEFAULT_PREFETCH = 8  # frames each worker may render ahead of the consumer


@dataclass(frozen=True)
class _Job:
    scene: Scene
    base_seed: int
    episodes: list[int] | None  # None: 0, 1, 2, ... without end
    sensors: tuple[str, ...] | None
    gl: str | None
    asset_roots: tuple[str, ...]
    gl_threads: int | None


def _positions(episodes: list[int] | None, start: int, step: int) -> Iterator[int]:
    """The episode indices at positions start, start + step, ... of the run's episode list."""
    if episodes is None:
        return itertools.count(start, step)
    return iter(episodes[start::step])


def frame_dict(frame: SensorFrame, index: int, base_seed: int) -> dict[str, Any]:
    """One frame as a flat dict: provenance, timing, pose and every array of the sensor."""
    return {
        "episode_index": index,
        "episode_seed": episode_seed(base_seed, index),
        "base_seed": base_seed,
        "sensor": frame.sensor,
        "kind": frame.kind,
        "frame_index": frame.index,
        "time": frame.time,
        "step": frame.step,
        "tick": frame.tick,
        "pose_w": frame.pose_w,
        **frame.static,
        **frame.arrays,
        **frame.ragged,
    }


def _episode_frames(sim: Any, job: _Job, index: int) -> Iterator[dict[str, Any]]:
    # the dataset's size, for quotas and schedules (none for an endless stream)
    n = None if job.episodes is None else max(job.episodes) + 1
    for rec in sim.episode(job.scene, job.base_seed, index, num_episodes=n):
        if isinstance(rec, SensorFrame) and (job.sensors is None or rec.sensor in job.sensors):
            yield frame_dict(rec, index, job.base_seed)


def _stream_main(job: _Job, start: int, step: int, out: Any, parent_pid: int) -> None:
    from simgen.run.episode import Simulator
    from simgen.run.pool import _die_with_parent
    from simgen.run.worker import configure_process, describe_error

    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_process(job.gl_threads)
    with Simulator(gl=job.gl, asset_roots=job.asset_roots) as sim:
        for index in _positions(job.episodes, start, step):
            try:
                for f in _episode_frames(sim, job, index):
                    out.put(("frame", index, f))
            except Exception as e:
                out.put(("error", index, describe_error(e)))
                continue
            out.put(("end", index, None))
    out.put(("done", -1, None))


class EpisodeStream:
    """Frames of ``scene``'s episodes, rendered on the fly. Iterate it (each iteration starts
    over from the first episode)."""

    def __init__(
        self,
        scene: Scene,
        *,
        seed: int = 0,
        episodes: int | Iterable[int] | None = None,
        workers: int | None = None,
        sensors: Iterable[str] | None = None,
        gl: str | None = None,
        asset_roots: tuple[str, ...] = (),
        prefetch: int = DEFAULT_PREFETCH,
        on_error: str = "raise",
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise SimgenError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        from simgen.run.scale import available_cores

        eps = (
            None
            if episodes is None
            else (list(range(episodes)) if isinstance(episodes, int) else list(episodes))
        )
        names = {s.name for s in scene.sensors}
        wanted = None if sensors is None else tuple(sensors)
        unknown = sorted(set(wanted or ()) - names)
        if unknown:
            raise SimgenError(f"no sensors {unknown} in the scene; sensors: {sorted(names)}")
        self.workers = max(1, workers if workers is not None else available_cores())
        if eps is not None:
            self.workers = max(1, min(self.workers, len(eps)))
        threads = os.environ.get("LP_NUM_THREADS")
        self.job = _Job(
            scene=scene,
            base_seed=seed,
            episodes=eps,
            sensors=wanted,
            gl=gl,
            asset_roots=tuple(str(r) for r in asset_roots),
            gl_threads=int(threads) if threads else max(1, available_cores() // self.workers),
        )
        self.prefetch = max(1, prefetch)
        self.on_error = on_error
        self.failures: list[tuple[int, int, str]] = []  # (episode, seed, error) when skipping

    @property
    def provenance(self) -> dict[str, Any]:
        """What a dataset of the same run would store at its root."""
        from simgen import __version__
        from simgen.io.layout import FORMAT_NAME, FORMAT_VERSION, conventions_json

        scene = self.job.scene
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "simgen_version": __version__,
            "base_seed": self.job.base_seed,
            "scene_path": scene.source_path or "",
            "scene_json": scene.model_dump_json(by_alias=True),
            "classes": scene.class_table(),
            "conventions": conventions_json(),
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        share = _torch_worker_share()
        if share is not None:  # in a DataLoader worker: render this worker's share here
            return self._in_process(*share)
        return self._pooled()

    # -- in this process -----------------------------------------------------------------------

    def _in_process(self, start: int, step: int) -> Iterator[dict[str, Any]]:
        from simgen.run.episode import Simulator
        from simgen.run.worker import describe_error

        job = self.job
        with Simulator(gl=job.gl, asset_roots=job.asset_roots) as sim:
            for index in _positions(job.episodes, start, step):
                try:
                    yield from _episode_frames(sim, job, index)
                except Exception as e:
                    self._episode_failed(index, describe_error(e))

    # -- worker processes ----------------------------------------------------------------------

    def _pooled(self) -> Iterator[dict[str, Any]]:
        ctx = mp.get_context("spawn")
        n = self.workers
        queues = [ctx.Queue(maxsize=self.prefetch) for _ in range(n)]
        procs = [
            ctx.Process(
                target=_stream_main,
                args=(self.job, k, n, queues[k], os.getpid()),
                name=f"simgen-stream-{k}",
                daemon=True,
            )
            for k in range(n)
        ]
        for p in procs:
            p.start()
        try:
            for position, index in enumerate(_positions(self.job.episodes, 0, 1)):
                k = position % n
                while True:
                    kind, got, payload = self._next(queues[k], procs[k])
                    if kind == "done":  # the worker has no more episodes
                        return
                    if got != index:  # pragma: no cover - would be a bug in the protocol
                        raise RuntimeError(f"stream out of order: {got} != {index}")
                    if kind == "frame":
                        yield payload
                        continue
                    if kind == "error":
                        self._episode_failed(got, str(payload))
                    break
        finally:
            for p in procs:
                p.kill()
            for p in procs:
                p.join(5)
            for q in queues:
                q.close()
                q.cancel_join_thread()

    @staticmethod
    def _next(q: Any, proc: Any) -> tuple[str, int, Any]:
        while True:
            try:
                return q.get(timeout=1.0)  # type: ignore[no-any-return]
            except queue.Empty:
                if not proc.is_alive():
                    with contextlib.suppress(queue.Empty):
                        return q.get(timeout=0.5)  # type: ignore[no-any-return]
                    raise SimgenError(
                        f"stream worker {proc.name} died (exit code {proc.exitcode})"
                    ) from None

    def _episode_failed(self, index: int, error: str) -> None:
        seed = episode_seed(self.job.base_seed, index)
        if self.on_error == "raise":
            raise SimgenError(f"episode {index} (seed {seed}) failed: {error}")
        self.failures.append((index, seed, error))


def _torch_worker_share() -> tuple[int, int] | None:
    """(start, step) of this DataLoader worker's episodes, or None outside DataLoader workers."""
    try:
        from torch.utils.data import get_worker_info
    except ImportError:
        return None
    info = get_worker_info()
    return None if info is None else (int(info.id), int(info.num_workers))


def stream(scene: Scene, *, seed: int = 0, **options: Any) -> EpisodeStream:
    """Frames of ``scene``'s episodes rendered on the fly (see :class:`EpisodeStream`); a
    ``torch.utils.data.IterableDataset`` when PyTorch is installed.

    Options: ``episodes`` (a count, indices, or None for an endless stream), ``workers``
    (processes; default: the cores), ``sensors`` (names to keep), ``on_error`` ("raise" or
    "skip"), ``prefetch`` (frames a worker may run ahead), ``gl``, ``asset_roots``.
    """
    cls = _torch_stream_class() or EpisodeStream
    return cls(scene, seed=seed, **options)


def _torch_stream_class() -> type[EpisodeStream] | None:
    """:class:`EpisodeStream` as a PyTorch ``IterableDataset`` (None without PyTorch). Made on
    first use and kept as this module's ``TorchEpisodeStream``, so it pickles by name."""
    cls = globals().get("TorchEpisodeStream")
    if cls is not None:
        return cls  # type: ignore[no-any-return]
    try:
        from torch.utils.data import IterableDataset
    except ImportError:
        return None
    cls = type(
        "TorchEpisodeStream",
        (EpisodeStream, IterableDataset),
        {"__module__": __name__, "__doc__": "EpisodeStream as a torch IterableDataset."},
    )
    globals()["TorchEpisodeStream"] = cls
    return cls  # type: ignore[no-any-return]


def __getattr__(name: str) -> Any:
    if name == "TorchEpisodeStream":
        cls = _torch_stream_class()
        if cls is not None:
            return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
