"""Show a run's progress: a rich progress bar for people, JSON lines for machines (clusters)."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from simgen.run.scale import RunEvent


class JsonLines:
    """Writes every event as one JSON object per line (``{"event": kind, ...}``)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: RunEvent) -> None:
        self.stream.write(event.to_json() + "\n")
        self.stream.flush()

    def __enter__(self) -> JsonLines:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class ProgressBar:
    """Episodes done (of all requested, counting those a resumed run already had), frames per
    second, failures and the time left; worker losses and failures are printed above the bar."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]rendering[/]"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} episodes"),
            TextColumn("{task.fields[fps]} frames/s"),
            TextColumn("{task.fields[failed]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=not console.is_terminal,
        )
        self.task: Any = None
        self.done = 0
        self.failed = 0

    def __enter__(self) -> ProgressBar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def __call__(self, event: RunEvent) -> None:
        d = event.data
        p = self.progress
        if event.kind == "start":
            self.done = d["done_before"]
            self.task = p.add_task(
                "render", total=d["requested"], completed=d["done_before"], fps="-", failed=""
            )
            if d["done_before"]:
                p.console.print(
                    f"resuming {escape(d['out'])}: {d['done_before']} episodes already done, "
                    f"{d['todo']} to render with {d['workers']} {d['backend']} workers"
                )
        elif event.kind == "episode":
            self.done = d["done"]
            self._update(fps=f"{d['frames_per_s']:.1f}")
        elif event.kind == "failed":
            p.console.print(
                f"[red]episode {d['index']} failed[/] (seed {d['seed']}, {d['attempts']} attempts): "
                f"{escape(d['error'])}",
                highlight=False,
            )
            self.failed += 1
            self._update()
        elif event.kind == "worker_lost":
            p.console.print(
                f"[yellow]worker {d['worker']} lost[/]: {escape(d['reason'])}", highlight=False
            )
        elif event.kind == "merge_failed":
            p.console.print(
                f"[yellow]merging into a shard failed[/] (the episodes stay in parts/): "
                f"{escape(d['error'])}",
                highlight=False,
            )

    def _update(self, **fields: Any) -> None:
        if self.task is None:
            return
        failed = f"[red]{self.failed} failed[/]" if self.failed else ""
        self.progress.update(self.task, completed=self.done + self.failed, failed=failed, **fields)
