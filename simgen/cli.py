"""The ``simgen`` command line. User errors print one clear message and exit with code 2."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from simgen.errors import SceneError, SimgenError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="simgen: scene files -> physics -> labeled synthetic sensor datasets.",
)
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn simgen's own errors into one message and exit code 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SimgenError as e:
            console.print("[bold red]error:[/]", _escape(str(e)), highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            console.print(
                "[yellow]interrupted[/]: nothing half-written was left behind "
                "(a dataset directory continues with --resume)"
            )
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _escape(s: str) -> str:
    from rich.markup import escape

    return escape(s)


@app.callback()
def _global(
    gl: str = typer.Option(
        None, "--gl", help="OpenGL platform: egl, osmesa or auto (default: $SIMGEN_GL or auto)"
    ),
) -> None:
    if gl:
        os.environ["SIMGEN_GL"] = gl


def _parse_resolution(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise SimgenError(f"--resolution {text!r}: expected WIDTHxHEIGHT, e.g. 640x480") from None
    if not (1 <= w <= 8192 and 1 <= h <= 8192):
        raise SimgenError(f"--resolution {text!r}: width and height must be in [1, 8192]")
    return w, h


SINGLE_FILE_SUFFIXES = (".h5", ".hdf5")
EXIT_EPISODES_FAILED = 3


@app.command()
@user_errors
def render(
    scene_file: Path = typer.Argument(..., help="scene file (YAML)"),
    out_path: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="output: a dataset directory (parallel, resumable), or a file ending in .h5 "
        "(one worker, written whole)",
    ),
    episodes: int = typer.Option(1, "--episodes", "-n", min=1, help="number of episodes"),
    seed: int = typer.Option(0, "--seed", "-s", min=0, help="base seed"),
    episode: int = typer.Option(
        None,
        "--episode",
        min=0,
        help="render only this episode index (same bytes as in a full run)",
    ),
    resolution: str = typer.Option(None, "--resolution", help="override every camera, WxH"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing output"),
    asset_root: list[Path] = typer.Option(
        [], "--asset-root", help="extra folder assets may be read from (repeatable)"
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        "-j",
        min=1,
        help="parallel workers (default: the cores of this machine, or the Ray cluster's slots)",
    ),
    backend: str = typer.Option("local", "--backend", help="local (processes) or ray"),
    address: str = typer.Option(
        None, "--address", help="Ray cluster to join ('auto' or host:port); default: start one"
    ),
    gpus_per_worker: float = typer.Option(
        0.0, "--gpus-per-worker", min=0.0, help="GPU share per Ray worker (fractions allowed)"
    ),
    resume: bool = typer.Option(
        False, "--resume", help="continue an interrupted run: keep finished episodes, redo the rest"
    ),
    retries: int = typer.Option(
        2, "--retries", min=0, help="extra attempts for a failed episode before it is recorded"
    ),
    log_json: bool = typer.Option(
        False, "--log-json", help="progress as JSON lines on stdout (for clusters and scripts)"
    ),
) -> None:
    """Render episodes of a scene into a dataset (a directory, or one .h5 file)."""
    from simgen.scene.loader import load_scene
    from simgen.sensors.camera import scene_with_resolution

    scene = load_scene(scene_file)
    res = _parse_resolution(resolution)
    if res is not None:
        scene = scene_with_resolution(scene, *res)
    indices = [episode] if episode is not None else list(range(episodes))
    if out_path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        extra = [
            flag
            for flag, used in (
                ("--workers > 1", (workers or 1) > 1),
                ("--backend ray", backend != "local"),
                ("--resume", resume),
                ("--address", address is not None),
                ("--gpus-per-worker", gpus_per_worker > 0),
            )
            if used
        ]
        if extra:
            raise SimgenError(
                f"{', '.join(extra)}: only for dataset directories; {out_path} is a single .h5 "
                "file (written by one worker). Give --out a folder name, e.g. "
                f"{out_path.with_suffix('')}"
            )
        _render_file(scene, out_path, indices, seed, overwrite, asset_root, log_json)
        return
    _render_directory(
        scene,
        out_path,
        indices,
        seed,
        dict(
            workers=workers,
            backend=backend,
            address=address,
            gpus_per_worker=gpus_per_worker,
            resume=resume,
            overwrite=overwrite,
            retries=retries,
            asset_roots=tuple(asset_root),
        ),
        log_json,
    )


def _render_file(
    scene: Any,
    out_path: Path,
    indices: list[int],
    seed: int,
    overwrite: bool,
    asset_root: list[Path],
    log_json: bool,
) -> None:
    """One worker, in this process, into one HDF5 file that appears when the run completes."""
    import time

    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from simgen.run.batch import render_dataset

    frames = 0
    t0 = time.perf_counter()
    with Progress(
        TextColumn("[bold]rendering[/]"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} episodes"),
        TextColumn("{task.fields[fps]} frames/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=not sys.stderr.isatty(),
        disable=log_json,
    ) as progress:
        task = progress.add_task("render", total=len(indices), fps="-")

        def on_episode(ep: Any) -> None:
            nonlocal frames
            frames += ep.frames
            fps = frames / max(time.perf_counter() - t0, 1e-9)
            progress.update(task, advance=1, fps=f"{fps:.1f}")
            if log_json:
                _json_line(
                    {
                        "event": "episode",
                        "index": ep.index,
                        "frames": ep.frames,
                        "seconds": round(ep.seconds, 4),
                        "frames_per_s": round(fps, 3),
                    }
                )

        summary = render_dataset(
            scene,
            out_path,
            episodes=indices,
            seed=seed,
            overwrite=overwrite,
            asset_roots=tuple(asset_root),
            on_episode=on_episode,
        )
    if log_json:
        _json_line(
            {
                "event": "finished",
                "path": str(summary.path),
                "episodes": len(summary.episodes),
                "frames": summary.frames,
                "seconds": summary.seconds,
                "bytes_on_disk": summary.bytes_on_disk,
                "complete": True,
                "failed": [],
            }
        )
        return
    out.print(
        f"wrote [bold]{summary.path}[/]: {len(summary.episodes)} episodes, {summary.frames} frames "
        f"in {summary.seconds:.1f} s ({summary.frames_per_second:.1f} frames/s), "
        f"{summary.bytes_on_disk / 1e6:.1f} MB"
    )


def _render_directory(
    scene: Any,
    out_path: Path,
    indices: list[int],
    seed: int,
    options: dict[str, Any],
    log_json: bool,
) -> None:
    """Parallel workers into a dataset directory; exit code 3 when some episodes failed."""
    import contextlib

    from simgen.run.progress import JsonLines, ProgressBar
    from simgen.run.scale import render_directory

    reporter = JsonLines() if log_json else ProgressBar(console)
    with reporter if isinstance(reporter, ProgressBar) else contextlib.nullcontext(reporter):
        summary = render_directory(
            scene, out_path, episodes=indices, seed=seed, on_event=reporter, **options
        )
    if not log_json:
        rendered = (
            f"{summary.rendered} rendered now, {summary.done_before} kept"
            if summary.done_before
            else f"{summary.rendered} episodes"
        )
        out.print(
            f"wrote [bold]{_escape(str(summary.path))}[/]: {rendered}, {summary.frames} frames in "
            f"{summary.seconds:.1f} s ({summary.frames_per_second:.1f} frames/s) with "
            f"{summary.workers} {summary.backend} workers, {summary.bytes_on_disk / 1e6:.1f} MB"
            + ("" if summary.complete else " [yellow](incomplete)[/]"),
            highlight=False,
        )
        for f in summary.failed:
            out.print(
                f"[red]failed[/] episode {f.index} (seed {f.seed}, {f.attempts} attempts): "
                f"{_escape(f.error)}",
                highlight=False,
            )
        if summary.failed:
            out.print(f"{len(summary.failed)} episodes failed; --resume retries them")
    if summary.failed:
        raise typer.Exit(EXIT_EPISODES_FAILED)


def _json_line(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, sort_keys=True) + "\n")
    sys.stdout.flush()


@app.command()
@user_errors
def validate(files: list[Path] = typer.Argument(..., help="scene files")) -> None:
    """Check scene files against the schema; report every problem with file:line:column."""
    from simgen.scene.loader import load_scene

    failed = 0
    for f in files:
        try:
            scene = load_scene(f)
        except SceneError as e:
            failed += 1
            console.print(_escape(str(e)), highlight=False)
            continue
        out.print(
            f"[green]ok[/] {f}: {len(scene.objects)} objects, {len(scene.sensors)} sensors, "
            f"{len(scene.class_table()) - 1} classes"
        )
    if failed:
        raise typer.Exit(2)


@app.command()
@user_errors
def schema(
    output: Path = typer.Option(None, "--output", "-o", help="write to a file instead of stdout"),
) -> None:
    """Print the JSON Schema of scene files (for editors: validation and completion)."""
    from simgen.scene.jsonschema import scene_json_schema

    text = json.dumps(scene_json_schema(), indent=2)
    if output is None:
        sys.stdout.write(text + "\n")
    else:
        output.write_text(text + "\n")
        out.print(f"wrote {output}")


@app.command()
@user_errors
def inspect(
    dataset: Path = typer.Argument(..., help="dataset file"),
    episode: int = typer.Option(
        None, "--episode", "-e", help="episode for the images (default: first)"
    ),
    sensor: str = typer.Option(None, "--sensor", help="camera for the images (default: first)"),
    frame: int = typer.Option(0, "--frame", "-f", help="frame index for the images"),
    images: Path = typer.Option(None, "--images", help="folder to write PNGs of the chosen frame"),
) -> None:
    """Summarize a dataset; optionally write PNGs of one frame (RGB, depth, segmentation, overlay)."""
    from simgen.io.inspect import summarize, write_frame_images

    info = summarize(dataset)
    t = Table(title=str(dataset), show_header=False)
    for k, v in info["rows"]:
        t.add_row(k, v)
    out.print(t)
    if images is not None:
        paths = write_frame_images(dataset, images, episode=episode, sensor=sensor, frame=frame)
        for p in paths:
            out.print(f"wrote {p}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
