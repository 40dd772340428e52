"""The Ray backend: render workers as long-lived Ray actors, on one machine or a cluster.

One actor per worker slot, each owning its :class:`~simgen.run.worker.RenderWorker` (physics,
GL context, mesh cache) for the run. ``gpus_per_worker`` reserves a share of a GPU per actor
(fractions let several actors share one); an actor that got a GPU renders with EGL on it (its
CUDA device mapped to the EGL device, :mod:`simgen.render.egl_devices`). Actors write parts and
shards straight into the output directory, which must be a path every node can reach; the
driver writes the index and the manifest. Ray's own restarts are off: a lost actor is replaced
by the driver with a new attempt number, so its files never collide with the lost one's.
"""

from __future__ import annotations

import os
from typing import Any

from simgen.errors import SimgenError
from simgen.io.store import EpisodeRecord
from simgen.run.backend import Lost, Merged, Message, Ready, Rendered
from simgen.run.worker import (
    EpisodeOutcome,
    MergeOutcome,
    RenderWorker,
    WorkerSpec,
    configure_process,
    worker_info,
)

INSTALL_HINT = "the Ray backend needs Ray: pip install 'simgen[ray]'"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SimgenError(INSTALL_HINT) from None
    return ray


class RayWorkerActor:
    """The body of a Ray actor (decorated with ``ray.remote`` by :class:`RayBackend`)."""

    def __init__(self, spec: WorkerSpec, worker: int, attempt: int) -> None:
        import ray

        from simgen.render.egl_devices import pin_egl_device

        gpu_ids = [int(g) for g in ray.get_gpu_ids()]
        self.egl_device, self.egl_how = pin_egl_device(gpu_ids)
        self.gpu_ids = gpu_ids
        configure_process(spec.gl_threads)
        self.w = RenderWorker(spec, worker, attempt)

    def ready(self) -> dict[str, Any]:
        return {
            **worker_info(self.w.worker, self.w.attempt),
            "gpu_ids": self.gpu_ids,
            "egl_device": self.egl_device,
            "egl_device_from": self.egl_how,
        }

    def render(self, index: int) -> EpisodeOutcome:
        return self.w.render(index)

    def merge(self, records: list[EpisodeRecord]) -> MergeOutcome:
        return self.w.merge(records)

    def stop(self) -> None:
        self.w.close()


class RayBackend:
    """Workers as Ray actors. Without ``address`` a local Ray instance is started (and shut
    down by :meth:`close`); with one (``auto`` or ``host:port``) the run joins that cluster."""

    name = "ray"

    def __init__(
        self,
        spec: WorkerSpec,
        *,
        address: str | None = None,
        gpus_per_worker: float = 0.0,
        cpus_per_worker: float = 1.0,
        num_cpus: int | None = None,
    ) -> None:
        ray = import_ray()
        self.ray = ray
        self.spec = spec
        self._owns = False
        if not ray.is_initialized():
            # actors report errors in their results; their own output stays in Ray's logs
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": "WARNING",
            }
            if address:
                kwargs["address"] = address
            else:
                kwargs["num_cpus"] = num_cpus or os.cpu_count() or 1
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise SimgenError(
                    f"cannot start or join Ray at {address or 'local'}: {e}"
                ) from None
            self._owns = True
        self.actor_cls = ray.remote(RayWorkerActor)
        self.options = {
            "num_cpus": cpus_per_worker,
            "num_gpus": gpus_per_worker,
            "max_restarts": 0,
            "max_task_retries": 0,
        }
        self.actors: dict[int, tuple[int, Any]] = {}  # worker -> (attempt, handle)
        self.pending: dict[Any, tuple[int, int, str]] = {}  # ref -> (worker, attempt, kind)

    def cluster_slots(self, gpus_per_worker: float, cpus_per_worker: float) -> int:
        """How many workers the cluster can hold at once."""
        res = self.ray.cluster_resources()
        n = int(res.get("CPU", 1) // max(cpus_per_worker, 1e-9))
        if gpus_per_worker > 0:
            n = min(n, int(res.get("GPU", 0) // gpus_per_worker + 1e-9))
        return max(n, 0)

    def start_worker(self, worker: int, attempt: int) -> None:
        actor = self.actor_cls.options(**self.options).remote(self.spec, worker, attempt)
        self.actors[worker] = (attempt, actor)
        self.pending[actor.ready.remote()] = (worker, attempt, "ready")

    def render(self, worker: int, index: int) -> None:
        attempt, actor = self.actors[worker]
        self.pending[actor.render.remote(index)] = (worker, attempt, "render")

    def merge(self, worker: int, records: list[EpisodeRecord]) -> None:
        attempt, actor = self.actors[worker]
        self.pending[actor.merge.remote(records)] = (worker, attempt, "merge")

    def poll(self, timeout: float) -> list[Message]:
        if not self.pending:
            return []
        ray = self.ray
        ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(list(self.pending), num_returns=len(self.pending), timeout=0)
        out: list[Message] = []
        for ref in ready:
            worker, attempt, kind = self.pending.pop(ref)
            try:
                value = ray.get(ref)
            except ray.exceptions.RayActorError as e:
                out.append(self._lost(worker, attempt, kind, f"Ray actor lost: {_first_line(e)}"))
                continue
            except ray.exceptions.RayError as e:  # a bug in the worker code: report it
                out.append(self._lost(worker, attempt, kind, f"Ray task failed: {_first_line(e)}"))
                continue
            if kind == "ready":
                out.append(Ready(worker, attempt, value))
            elif kind == "render":
                out.append(Rendered(worker, attempt, value))
            else:
                out.append(Merged(worker, attempt, value))
        return out

    def _lost(self, worker: int, attempt: int, kind: str, reason: str) -> Lost:
        current = self.actors.get(worker)
        if current is not None and current[0] == attempt:
            self.ray.kill(current[1], no_restart=True)
            del self.actors[worker]
            self.pending = {r: v for r, v in self.pending.items() if v[:2] != (worker, attempt)}
        return Lost(worker, attempt, reason, started=kind != "ready")

    def close(self) -> None:
        for _, actor in self.actors.values():
            try:
                self.ray.get(actor.stop.remote(), timeout=10)
            except Exception:  # best effort: the actor is killed next
                pass
            self.ray.kill(actor, no_restart=True)
        self.actors.clear()
        self.pending.clear()
        if self._owns:
            self.ray.shutdown()
            self._owns = False


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
