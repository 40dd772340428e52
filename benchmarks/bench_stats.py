"""Throughput of ``simgen stats`` against rendering the same dataset (target: >= 20x faster).

Renders a dataset of about ``--frames`` frames (all sensors together) of a scene at a small
resolution, timing the render; then computes its statistics ``--repeat`` times and keeps the
fastest run; then once more under tracemalloc for the peak memory the statistics allocate.

    python benchmarks/bench_stats.py [--scene street|tabletop|warehouse] [--frames 1000]
                                     [--resolution 160x90] [--repeat 3] [--keep out/bench.h5]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time
import tracemalloc
from pathlib import Path

from simgen.quality import compute_stats
from simgen.run.batch import render_dataset
from simgen.run.episode import Simulator
from simgen.scene.loader import load_scene
from simgen.sensors.camera import scene_with_resolution

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default="street")
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--resolution", default="160x90")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="keep the dataset at this path")
    args = ap.parse_args()
    w, h = (int(x) for x in args.resolution.split("x"))
    scene = scene_with_resolution(load_scene(ROOT / "scenes" / f"{args.scene}.yaml"), w, h)
    tmp = Path(tempfile.mkdtemp(prefix="bench_stats_"))
    path = args.keep or tmp / "d.h5"
    with Simulator() as sim:
        probe = render_dataset(
            scene, tmp / "probe.h5", episodes=[0], seed=0, simulator=sim, overwrite=True
        )
        per_episode = probe.frames
        n = math.ceil(args.frames / per_episode)
        t0 = time.perf_counter()
        run = render_dataset(scene, path, episodes=range(n), seed=0, simulator=sim, overwrite=True)
        render_s = time.perf_counter() - t0
    best = math.inf
    stats = {}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        stats = compute_stats(path)
        best = min(best, time.perf_counter() - t0)
    tracemalloc.start()
    compute_stats(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    frames = run.frames
    sensors = ", ".join(f"{k}: {v}" for k, v in stats["frames"]["per_sensor"].items())
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(
        f"scene {args.scene} at {w}x{h}: {n} episodes, {frames} frames ({sensors}), "
        f"{path.stat().st_size / 1e6:.1f} MB"
    )
    print(f"render : {render_s:8.2f} s  {frames / render_s:8.1f} frames/s")
    print(f"stats  : {best:8.2f} s  {frames / best:8.1f} frames/s  (best of {args.repeat})")
    print(f"ratio  : stats is {render_s / best:.1f}x faster than rendering (target >= 20x)")
    print(f"memory : peak {peak / 1e6:.1f} MB allocated by the statistics (tracemalloc)")
    for f in tmp.glob("*"):
        f.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
