"""Rendering at scale: episodes/hour of the street and tabletop scenes with 1 and 2 workers,
local process pool and Ray (local instance), in one run.

Reports per configuration: episodes/hour end to end (worker start-up included) and steady
(each worker's rate from its first committed episode to its last, summed), frames/s, and the writer's share of worker
time (writing, waiting for compression, checksum, commit and merging into shards, over all the
workers' episode time). Then parallel efficiency (2-worker throughput over twice the 1-worker
throughput) and Ray's overhead relative to the local pool. Every run's content checksums are
compared: all configurations must produce the same bytes.

llvmpipe (software GL) starts one rasterizer thread per core in every process; the pool gives
each of K workers cores/K threads (LP_NUM_THREADS). The 1-worker baseline is measured both
ways: with all cores' threads (what a user gets) and with one thread (one core's worth, the
fair baseline for efficiency).

    python benchmarks/bench_scale.py [--episodes 6] [--scenes street tabletop] [--no-ray]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from simgen.run.scale import RunEvent, available_cores, render_directory
from simgen.scene.loader import load_scene
from simgen.sensors.camera import scene_with_resolution

ROOT = Path(__file__).resolve().parents[1]


def run_one(scene, out: Path, episodes: int, workers: int, backend: str, lp: int | None):
    """(summary, steady episodes/hour, content checksums) of one configuration."""
    if lp is None:
        os.environ.pop("LP_NUM_THREADS", None)
    else:
        os.environ["LP_NUM_THREADS"] = str(lp)
    commits: dict[int, list[float]] = {}  # worker -> commit times

    def on_event(e: RunEvent) -> None:
        if e.kind == "episode":
            commits.setdefault(e.data["worker"], []).append(time.perf_counter())

    s = render_directory(
        scene,
        out,
        episodes=range(episodes),
        seed=0,
        workers=workers,
        backend=backend,
        overwrite=True,
        on_event=on_event,
    )
    # steady: each worker's rate between its first and last commit (start-up excluded), summed
    steady = sum(
        (len(t) - 1) / (t[-1] - t[0]) * 3600
        for t in commits.values()
        if len(t) > 1 and t[-1] > t[0]
    )
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    sums = {k: v["sha256"] for k, v in manifest["episodes"].items()}
    os.environ.pop("LP_NUM_THREADS", None)
    return s, steady, sums


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=8)
    ap.add_argument("--scenes", nargs="+", default=["street", "tabletop"])
    ap.add_argument("--resolution", default=None, help="override cameras, WxH")
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    backends = ["local"] + ([] if args.no_ray or not _has_ray() else ["ray"])
    cores = available_cores()
    print(
        f"# bench_scale: {platform.processor() or platform.machine()}, {cores} cores, "
        f"{args.episodes} episodes per configuration, backends {backends}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="simgen-bench-scale-"))
    rows = []
    try:
        for name in args.scenes:
            scene = load_scene(ROOT / "scenes" / f"{name}.yaml")
            if args.resolution:
                w, h = (int(x) for x in args.resolution.split("x"))
                scene = scene_with_resolution(scene, w, h)
            results = {}
            configs = [("local", 1, 1), ("local", 1, None), ("local", 2, None)]
            if "ray" in backends:
                configs += [("ray", 1, 1), ("ray", 2, None)]
            for backend, workers, lp in configs:
                out = tmp / f"{name}-{backend}-{workers}-{lp}"
                s, steady, sums = run_one(scene, out, args.episodes, workers, backend, lp)
                results[(backend, workers, lp)] = (s, steady, sums)
                lp_text = "1" if lp == 1 else str(max(1, cores // workers))
                eph = s.rendered / s.seconds * 3600
                rows.append(
                    f"| {name} | {backend} | {workers} | {lp_text} | {eph:.0f} | {steady:.0f} | "
                    f"{s.frames_per_second:.1f} | {100 * s.writer_share:.1f}% |"
                )
                print(rows[-1], flush=True)
                shutil.rmtree(out, ignore_errors=True)
            ref = results[("local", 1, 1)][2]
            same = all(r[2] == ref for r in results.values())
            base = results[("local", 1, 1)][1]
            two = results[("local", 2, None)][1]
            if min(base, two, results[("local", 1, None)][1]) <= 0:  # too few episodes
                line = f"{name}: too few episodes per worker for steady rates (use --episodes 4+)"
            else:
                line = (
                    f"{name}: parallel efficiency (steady, 2 workers vs 2 x 1 worker with 1 "
                    f"llvmpipe thread) {100 * two / (2 * base):.0f}%; vs 1 worker with "
                    f"{cores} threads {100 * two / (2 * results[('local', 1, None)][1]):.0f}%"
                )
                if "ray" in backends:
                    r1, r2 = results[("ray", 1, 1)][1], results[("ray", 2, None)][1]
                    line += (  # a steady rate of 0 (too few episodes) shows as 100% overhead
                        f"; Ray overhead (steady) 1 worker {100 * (1 - r1 / base):.1f}%, "
                        f"2 workers {100 * (1 - r2 / two):.1f}%"
                    )
            line += f"; identical content across configurations: {same}"
            rows.append(line)
            print(line, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(
        "| scene | backend | workers | LP threads/worker | episodes/h (end to end) | "
        "episodes/h (steady) | frames/s | writer share |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(r)


def _has_ray() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
