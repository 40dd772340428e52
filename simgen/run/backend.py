"""What the driver (:mod:`simgen.run.scale`) needs from a pool of render workers.

A backend starts workers (each a :class:`simgen.run.worker.RenderWorker` in its own process or
Ray actor), hands one task at a time to a worker, and reports what happened as messages. Every
message names the worker and the attempt it came from, so the driver can ignore a message from
an attempt it has already given up on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from simgen.io.store import EpisodeRecord
from simgen.run.worker import EpisodeOutcome, MergeOutcome


@dataclass
class Ready:
    worker: int
    attempt: int
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rendered:
    worker: int
    attempt: int
    outcome: EpisodeOutcome


@dataclass
class Merged:
    worker: int
    attempt: int
    outcome: MergeOutcome


@dataclass
class Lost:
    """A worker is gone (process died, actor or node lost) or failed to start."""

    worker: int
    attempt: int
    reason: str
    started: bool = True  # False: it never became ready (the run cannot use this backend)


Message = Ready | Rendered | Merged | Lost


class Backend(Protocol):
    name: str

    def start_worker(self, worker: int, attempt: int) -> None: ...

    def render(self, worker: int, index: int) -> None: ...

    def merge(self, worker: int, records: list[EpisodeRecord]) -> None: ...

    def poll(self, timeout: float) -> list[Message]:
        """Messages that arrived within ``timeout`` seconds (possibly none)."""
        ...

    def close(self) -> None: ...
