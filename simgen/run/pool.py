"""The local backend: render workers as processes on this machine.

Workers are started with the ``spawn`` method (a GL context and a pybullet client do not survive
``fork``) and live for the whole run, each keeping its :class:`~simgen.run.episode.Simulator`.
Each talks to the driver over its own pipe (no lock shared between workers, so a worker killed
in the middle of a message cannot block the others) and dies with the driver: Linux's parent
death signal, plus a check of the parent's pid while waiting for work.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from simgen.io.store import EpisodeRecord
from simgen.run.backend import Lost, Merged, Message, Ready, Rendered
from simgen.run.worker import RenderWorker, WorkerSpec, configure_process, describe_error

STOP_TIMEOUT_S = 10.0


def _die_with_parent(parent_pid: int) -> None:
    """Get SIGKILL when the driver dies (even by SIGKILL), so no orphan keeps rendering."""
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6").prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _process_main(
    spec: WorkerSpec, worker: int, attempt: int, conn: Connection, parent_pid: int
) -> None:
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    configure_process(spec.gl_threads)
    try:
        rw = RenderWorker(spec, worker, attempt)
    except Exception as e:
        conn.send(Lost(worker, attempt, f"worker failed to start: {describe_error(e)}", False))
        return
    conn.send(Ready(worker, attempt, {"pid": os.getpid()}))
    try:
        while True:
            if not conn.poll(1.0):
                if os.getppid() != parent_pid:
                    return
                continue
            task = conn.recv()
            if task is None:
                return
            kind, arg = task
            if kind == "render":
                conn.send(Rendered(worker, attempt, rw.render(arg)))
            else:
                conn.send(Merged(worker, attempt, rw.merge(arg)))
    except (EOFError, OSError):  # the driver went away
        return
    finally:
        rw.close()


@dataclass
class _Slot:
    attempt: int
    process: Any  # multiprocessing.context.SpawnProcess
    conn: Connection


class LocalBackend:
    """Worker processes on this machine."""

    name = "local"

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.ctx = mp.get_context("spawn")
        self.slots: dict[int, _Slot] = {}

    def start_worker(self, worker: int, attempt: int) -> None:
        parent, child = self.ctx.Pipe(duplex=True)
        p = self.ctx.Process(
            target=_process_main,
            args=(self.spec, worker, attempt, child, os.getpid()),
            name=f"simgen-worker-{worker}",
            daemon=True,
        )
        p.start()
        child.close()
        self.slots[worker] = _Slot(attempt, p, parent)

    def render(self, worker: int, index: int) -> None:
        self._send(worker, ("render", index))

    def merge(self, worker: int, records: list[EpisodeRecord]) -> None:
        self._send(worker, ("merge", records))

    def _send(self, worker: int, task: Any) -> None:
        with contextlib.suppress(OSError, EOFError):  # a dead worker is reported by poll
            self.slots[worker].conn.send(task)

    def worker_pid(self, worker: int) -> int | None:
        slot = self.slots.get(worker)
        return slot.process.pid if slot is not None else None

    def poll(self, timeout: float) -> list[Message]:
        by_conn = {id(s.conn): (w, s) for w, s in self.slots.items()}
        by_sentinel = {s.process.sentinel: (w, s) for w, s in self.slots.items()}
        ready = wait([s.conn for s in self.slots.values()] + list(by_sentinel), timeout)
        out: list[Message] = []
        dead: dict[int, _Slot] = {}
        for obj in ready:
            if isinstance(obj, Connection):
                w, slot = by_conn[id(obj)]
                try:
                    out.append(obj.recv())
                except (EOFError, OSError):
                    dead[w] = slot
            else:
                w, slot = by_sentinel[obj]  # type: ignore[index]
                dead[w] = slot
        for w, slot in dead.items():
            out.extend(_drain(slot.conn))
            slot.process.join(1.0)
            code = slot.process.exitcode
            out.append(Lost(w, slot.attempt, f"worker process {slot.process.pid} exited ({code})"))
            slot.conn.close()
            del self.slots[w]
        return out

    def close(self) -> None:
        for slot in self.slots.values():
            with contextlib.suppress(OSError, EOFError):
                slot.conn.send(None)
        for slot in self.slots.values():
            slot.process.join(STOP_TIMEOUT_S)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(1.0)
            slot.conn.close()
        self.slots.clear()


def _drain(conn: Connection) -> list[Message]:
    out = []
    with contextlib.suppress(EOFError, OSError):
        while conn.poll(0):
            out.append(conn.recv())
    return out
