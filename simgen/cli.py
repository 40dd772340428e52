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

from simgen.errors import SceneError, SimgenError, StorageError

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
            if isinstance(e, StorageError):
                _PROCESS["storage_failed"] = True
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            console.print(
                "[yellow]interrupted[/]: nothing half-written was left behind "
                "(a dataset directory continues with --resume)"
            )
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def reads_dataset(fn: F) -> F:
    """A command reading a dataset: an HDF5 read failure deep inside (flipped bytes, a group an
    older simgen did not write) becomes one clear error naming the dataset."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from simgen.io.damage import dataset_read_errors

        where = kwargs.get("dataset") or " or ".join(
            str(kwargs[k]) for k in ("a", "b") if kwargs.get(k) is not None
        )
        with dataset_read_errors(where or "the dataset"):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _escape(s: str) -> str:
    from rich.markup import escape

    return escape(s)


@app.callback()
def _global(
    gl: str = typer.Option(
        None, "--gl", help="OpenGL platform: egl, osmesa or auto (default: $SIMGEN_GL or auto)"
    ),
    limit: list[str] = typer.Option(
        [],
        "--limit",
        help="raise (or lower) a resource limit, NAME=VALUE, e.g. max_objects=5000 (repeatable; "
        "default: $SIMGEN_LIMITS; docs/reliability.md lists them)",
    ),
) -> None:
    if gl:
        os.environ["SIMGEN_GL"] = gl
    from simgen import limits

    try:
        new = limits.current()  # a bad $SIMGEN_LIMITS is an error here, before any work
        if limit:
            new = new.replace(**limits.parse(",".join(limit)))
    except SimgenError as e:
        console.print("[bold red]error:[/]", _escape(f"--limit: {e}" if limit else str(e)))
        raise typer.Exit(2) from None
    if limit:
        limits.install(new)  # the environment: worker processes inherit it


def _parse_resolution(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise SimgenError(f"--resolution {text!r}: expected WIDTHxHEIGHT, e.g. 640x480") from None
    from simgen.limits import current, exceeded

    side = current().max_image_side
    if not (1 <= w <= side and 1 <= h <= side):
        raise SimgenError(
            f"--resolution {text!r}: width and height must be in [1, {side}]"
            + ("" if min(w, h) < 1 else "; " + exceeded("max_image_side", "a side", max(w, h)))
        )
    if w * h > current().max_image_pixels:
        raise SimgenError(
            f"--resolution {text!r}: " + exceeded("max_image_pixels", "pixels", w * h)
        )
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
    episodes: int = typer.Option(
        None,
        "--episodes",
        "-n",
        min=1,
        help="number of episodes (default 1); with --episode, the size of the full dataset",
    ),
    seed: int = typer.Option(0, "--seed", "-s", min=0, help="base seed"),
    episode: int = typer.Option(
        None,
        "--episode",
        min=0,
        help="render only this episode index (same bytes as in a full run of --episodes N)",
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
    indices = [episode] if episode is not None else list(range(episodes or 1))
    total = episodes if episode is not None else len(indices)  # the dataset's size
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
        _render_file(scene, out_path, indices, seed, overwrite, asset_root, log_json, total)
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
            num_episodes=total,
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
    total: int | None = None,
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
            num_episodes=total,
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
def validate(
    files: list[Path] = typer.Argument(..., help="scene files"),
    asset_root: list[Path] = typer.Option(
        [], "--asset-root", help="extra folder assets may be read from (repeatable)"
    ),
) -> None:
    """Check scene files against the schema and their asset paths (present, inside the
    allowed folders); report every problem with file:line:column."""
    from simgen.scene.loader import load_scene
    from simgen.sim.assetcheck import scene_asset_errors

    failed = 0
    for f in files:
        try:
            scene = load_scene(f)
        except SceneError as e:
            failed += 1
            console.print(_escape(str(e)), highlight=False)
            continue
        problems = scene_asset_errors(scene, tuple(asset_root))
        if problems:
            failed += 1
            console.print(
                _escape(f"{len(problems)} asset problem(s) in scene {f}\n" + "\n".join(problems)),
                highlight=False,
            )
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
@reads_dataset
def inspect(
    dataset: Path = typer.Argument(..., help="dataset file"),
    episode: int = typer.Option(
        None, "--episode", "-e", help="episode for the images (default: first)"
    ),
    sensor: str = typer.Option(
        None,
        "--sensor",
        help="camera or LiDAR for the images (default: the first camera and the first LiDAR)",
    ),
    frame: int = typer.Option(0, "--frame", "-f", help="frame index for the images"),
    images: Path = typer.Option(None, "--images", help="folder to write PNGs of the chosen frame"),
) -> None:
    """Summarize a dataset; optionally write PNGs of one frame (camera: RGB, depth, segmentation,
    overlay; LiDAR: bird's-eye view by class, range image, points on the camera image)."""
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


@app.command()
@user_errors
@reads_dataset
def verify(
    dataset: Path = typer.Argument(..., help="dataset file"),
    episode: list[int] = typer.Option(
        [], "--episode", "-e", help="check only these episodes (repeatable)"
    ),
    max_frames: int = typer.Option(
        None, "--max-frames", min=1, help="check at most this many frames per camera and episode"
    ),
    integrity: bool = typer.Option(
        False,
        "--integrity",
        help="instead: re-read every committed episode and compare it with its recorded "
        "checksum (docs/reliability.md)",
    ),
) -> None:
    """Cross-check the labels (boxes vs masks, amodal vs visible, flow vs depth and poses,
    LiDAR vs camera) and report the worst residual of each check (docs/labels.md lists them).
    With --integrity, check every episode's content against its checksum instead.
    Exit 0 if all pass, 1 if not."""
    from simgen.io.verify import verify_dataset

    if integrity:
        if episode or max_frames:
            raise SimgenError("--integrity checks every episode: leave out --episode, --max-frames")
        _verify_integrity(dataset)
        return

    report = verify_dataset(dataset, episodes=episode or None, max_frames=max_frames)
    t = Table(title=f"{dataset}: {report.frames} camera frames")
    for col in ("check", "worst", "tolerance", "status", "worst at"):
        t.add_column(col, no_wrap=col != "worst at")
    for c in report.checks.values():
        status = "[green]ok[/]" if c.ok else f"[red]FAIL[/] ({c.failures})"
        t.add_row(c.name, f"{c.worst:.3g} {c.unit}", f"{c.tolerance:g}", status, c.where)
    out.print(t)
    if not report.checks:
        out.print("no labels to check (the cameras store no ground truth arrays)")
    if not report.ok:
        raise typer.Exit(1)


def _verify_integrity(dataset: Path) -> None:
    from simgen.io.integrity import check_integrity

    r = _with_progress("checking", lambda cb: check_integrity(dataset, progress=cb))
    if r.bad:
        t = Table(title=f"{dataset}: episodes that fail the integrity check")
        for col in ("episode", "status", "file", "detail"):
            t.add_column(col)
        for e in r.bad:
            t.add_row(str(e.index), f"[red]{e.status}[/]", _escape(e.file), _escape(e.detail))
        out.print(t)
    for p in r.problems:
        out.print(f"[red]problem[/] {_escape(p)}", highlight=False)
    for n in r.notes:
        out.print(f"[cyan]note[/] {_escape(n)}", highlight=False)
    counts = ", ".join(f"{v} {k}" for k, v in sorted(r.counts().items())) or "no episodes"
    verdict = "[green]ok[/]" if r.ok else "[red]FAILED[/]"
    out.print(f"{verdict} {_escape(str(dataset))} ({r.layout}): {counts}", highlight=False)
    if not r.ok:
        raise typer.Exit(1)


@app.command()
@user_errors
@reads_dataset
def export(
    dataset: Path = typer.Argument(..., help="dataset file"),
    fmt: str = typer.Option(..., "--format", "-f", help="coco, kitti, yolo or folders"),
    out_dir: Path = typer.Option(..., "--out", "-o", help="output folder"),
    force: bool = typer.Option(False, "--force", help="export into a non-empty folder"),
    sensor: list[str] = typer.Option(
        [], "--sensor", help="export only these cameras (repeatable; default: all)"
    ),
) -> None:
    """Export a dataset as COCO, KITTI, YOLO or plain folders of images and point clouds."""
    from simgen.io.exporters import FORMATS
    from simgen.io.exporters import export as run_export

    if fmt not in FORMATS:
        raise SimgenError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    summary = run_export(dataset, fmt, out_dir, force=force, sensors=sensor or None)
    out.print(
        f"wrote [bold]{summary.out}[/] ({fmt}): {summary.frames} frames, {summary.objects} "
        f"objects in {summary.seconds:.1f} s ({summary.frames_per_second:.1f} frames/s)"
    )


@app.command()
@user_errors
@reads_dataset
def params(
    dataset: Path = typer.Argument(..., help="dataset file"),
    episode: int = typer.Option(None, "--episode", "-e", help="only this episode"),
    by: str = typer.Option(
        "episode", "--by", help="'episode': a table per episode; 'parameter': one summary table"
    ),
    param: str = typer.Option(None, "--param", "-p", help="only parameters matching this glob"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
) -> None:
    """List what was sampled in each episode: values by field path, tries, scenarios, events."""
    from simgen.io.params import episode_records, episode_rows, parameter_rows

    if by not in ("episode", "parameter"):
        raise SimgenError(f"--by {by!r}: expected 'episode' or 'parameter'")
    records = episode_records(dataset, param)
    _warn_missing(dataset)
    if episode is not None:
        records = [r for r in records if r["episode"] == episode]
        if not records:
            raise SimgenError(f"{dataset}: no episode {episode}")
    if as_json:
        sys.stdout.write(json.dumps(records, indent=2, sort_keys=True) + "\n")
        return
    if by == "parameter":
        t = Table(title=f"{dataset}: {len(records)} episodes")
        for col in ("parameter", "episodes", "values"):
            t.add_column(col)
        for row in parameter_rows(records):
            t.add_row(*(_escape(c) for c in row))
        out.print(t)
        return
    for rec in records:
        t = Table(title=f"episode {rec['episode']}")
        t.add_column("parameter")
        t.add_column("value")
        for k, v in episode_rows(rec):
            t.add_row(_escape(k), _escape(v))
        out.print(t)


def _warn_missing(dataset: Path) -> None:
    """Failed, unreadable or never rendered episodes, on stderr (a listing never hides them)."""
    from simgen.io.reader import Dataset

    with Dataset(dataset) as ds:
        for f in ds.failures():
            console.print(
                f"[yellow]warning[/] episode {f.get('index')} failed (seed {f.get('seed')}): "
                f"{_escape(str(f.get('error', '')))}",
                highlight=False,
            )
        for p in ds.problems():
            console.print(f"[yellow]warning[/] missing: {_escape(p)}", highlight=False)


@app.command()
@user_errors
@reads_dataset
def stats(
    dataset: Path = typer.Argument(..., help="dataset file or directory"),
    output: Path = typer.Option(None, "--output", "-o", help="write the statistics as JSON"),
) -> None:
    """Dataset statistics in one streaming pass: classes, boxes, visibility, depth, LiDAR ranges,
    image appearance, coverage of every randomized parameter, scenario and event frequencies,
    failed episodes (docs/quality.md)."""
    from simgen.quality.checks import warnings
    from simgen.quality.engine import compute_stats, save_stats

    result = _with_progress("statistics", lambda cb: compute_stats(dataset, progress=cb))
    if output is not None:
        save_stats(result, output)
        out.print(f"wrote {output}")
    _print_stats(result, warnings(result))


def _with_progress(what: str, fn: Callable[[Callable[[int, int], None]], Any]) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(f"[bold]{what}[/]"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(what, total=None)
        return fn(lambda done, total: progress.update(task, completed=done, total=total))


def _print_stats(s: dict[str, Any], warns: list[dict[str, str]]) -> None:
    out.print(
        f"[bold]{s['dataset']['path']}[/]: {s['episodes']} episodes, {s['frames']['total']} frames "
        f"({s['seconds']:.1f} s, {s['frames_per_second']:.0f} frames/s)"
    )
    for cam, c in s["cameras"].items():
        t = Table(title=f"camera {cam}: {c['frames']} frames")
        for col in ("class", "instances", "frames visible", "pixel coverage"):
            t.add_column(col, justify="left" if col == "class" else "right")
        for name, k in c["objects"]["classes"].items():
            kind = " (stuff)" if k["stuff"] else ""
            t.add_row(
                _escape(name + kind),
                str(k["instances"]),
                str(k["frames"]),
                f"{100 * k['pixel_coverage']:.2f}%",
            )
        out.print(t)
    if s["parameters"]:
        t = Table(title="randomized parameters")
        for col in ("parameter", "declared", "samples", "coverage", "largest gap"):
            right = col in ("samples", "coverage", "largest gap")
            t.add_column(col, justify="right" if right else "left", overflow="fold")
        for path, p in s["parameters"].items():
            cov = "-" if p["coverage"] is None else f"{100 * p['coverage']:.0f}%"
            gap = "-" if p.get("largest_gap") is None else f"{p['largest_gap']:.2f}"
            t.add_row(_escape(path), _escape(p["declared"]), str(p["samples"]), cov, gap)
        out.print(t)
    for w in warns:
        color = "yellow" if w["level"] == "warning" else "cyan"
        out.print(f"[{color}]{w['level']}[/] {w['topic']}: {_escape(w['message'])}")


@app.command()
@user_errors
@reads_dataset
def report(
    dataset: Path = typer.Argument(..., help="dataset file or directory"),
    output: Path = typer.Option(..., "--output", "-o", help="the HTML file to write"),
    reference: Path = typer.Option(
        None, "--reference", help="a dataset to compare with: simgen, or COCO (folder or JSON)"
    ),
    stats_file: Path = typer.Option(
        None, "--stats", help="reuse statistics written by 'simgen stats -o' (no second pass)"
    ),
    card: Path = typer.Option(None, "--card", help="also write the dataset card as Markdown"),
    samples: int = typer.Option(2, "--samples", min=1, help="gallery samples per group"),
    min_instances: int = typer.Option(
        50, "--min-instances", min=0, help="warn about classes with fewer instances"
    ),
) -> None:
    """One self-contained HTML report: dataset card, warnings, plots of every statistic,
    parameter coverage, scenarios, the domain gap to --reference, and a sample gallery."""
    from simgen.quality.checks import Thresholds
    from simgen.quality.engine import compute_stats, load_stats
    from simgen.quality.report import write_report

    if stats_file is not None:
        s = load_stats(stats_file)
    else:
        s = _with_progress("statistics", lambda cb: compute_stats(dataset, progress=cb))
    summary = write_report(
        dataset,
        output,
        stats=s,
        reference=reference,
        thresholds=Thresholds(min_instances=min_instances),
        card=card,
        per_group=samples,
    )
    out.print(
        f"wrote [bold]{summary.path}[/] ({summary.bytes / 1e6:.1f} MB, {summary.warnings} "
        f"warnings) in {summary.seconds:.1f} s"
    )
    if summary.card is not None:
        out.print(f"wrote {summary.card}")


@app.command()
@user_errors
@reads_dataset
def compare(
    a: Path = typer.Argument(..., help="dataset A: simgen, or COCO (folder or annotations JSON)"),
    b: Path = typer.Argument(..., help="dataset B, e.g. real data in COCO format"),
    sensor: list[str] = typer.Option(
        [], "--sensor", help="cameras of a simgen dataset to use (repeatable; default: all)"
    ),
    output: Path = typer.Option(None, "--output", "-o", help="write the comparison as JSON"),
) -> None:
    """Compare two datasets: class frequencies, box size/aspect/position, color, brightness,
    sharpness and edge density; distances (KS, W1, TV) and the largest domain gaps first."""
    from simgen.quality.compare import compare as run_compare

    result = run_compare(a, b, sensor or None)
    if output is not None:
        from simgen.quality.engine import save_stats

        save_stats(result, output)
        out.print(f"wrote {output}")
    ra, rb = result["a"], result["b"]
    out.print(f"A: {ra['name']} ({ra['kind']}, {ra['images']} images, {ra['instances']} instances)")
    out.print(f"B: {rb['name']} ({rb['kind']}, {rb['images']} images, {rb['instances']} instances)")
    t = Table(title="distances (largest first)")
    for col in ("statistic", "metric", "distance", "W1", "gap"):
        t.add_column(col, justify="left" if col in ("statistic", "metric", "gap") else "right")
    for r in result["distances"]:
        w1 = "-" if r["w1"] is None else f"{r['w1']:.3f}"
        t.add_row(r["statistic"], r["metric"], f"{r['distance']:.3f}", w1, r["level"])
    out.print(t)
    out.print("[bold]domain gap[/]:")
    for line in result["summary"]:
        out.print(f"  {_escape(line)}")


#: Facts about this process that :func:`main` acts on at exit.
_PROCESS = {"storage_failed": False}


def _quiet_failed_writes(previous: Any) -> Any:
    """An unraisable-exception hook that drops what h5py reports while it frees the objects of
    a file whose write failed for the output's reason (the writer raises that failure as a
    StorageError, which is reported)."""
    from simgen.io.space import output_errno

    def hook(u: Any) -> None:
        if output_errno(u.exc_value) is not None and "h5py" in repr(u.object):
            return
        previous(u)

    return hook


def main() -> None:
    """The ``simgen`` command. After a write failed because the output cannot be written (full
    disk...), the process ends without running HDF5's exit handlers: HDF5 would try to flush the
    broken file once more and may crash (the partial file is already removed)."""
    sys.unraisablehook = _quiet_failed_writes(sys.unraisablehook)
    try:
        app()
    except SystemExit as e:
        if not _PROCESS["storage_failed"]:
            raise
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(e.code if isinstance(e.code, int) else 2)


if __name__ == "__main__":
    main()
