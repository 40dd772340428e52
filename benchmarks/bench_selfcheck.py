"""Cost of the label self-checks on write (simgen.io.selfcheck) as a share of the frame time.

Renders episodes of a scene (default: tabletop, its cameras with every label), timing the
episode pipeline (simulate, render, label) and the writer (compress, store) separately, then
times the self-checks alone on the same frames (``--repeat`` times, minimum). Reports per
camera resolution the check's time per frame and the share of the whole frame time
(pipeline + writer, self-checks included).

    python benchmarks/bench_selfcheck.py [--scene tabletop] [--episodes 2] [--repeat 5]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

from simgen.io.selfcheck import LabelChecker
from simgen.io.writer import DatasetWriter
from simgen.run.episode import Simulator
from simgen.run.records import EpisodeHeader, SensorFrame
from simgen.scene.loader import load_scene

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scene", default="tabletop")
    ap.add_argument("--episodes", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    scene = load_scene(ROOT / "scenes" / f"{args.scene}.yaml")
    produce = write = 0.0
    frames: list[SensorFrame] = []
    ids: list[int] = []
    with Simulator() as sim, tempfile.TemporaryDirectory() as tmp:
        for index in range(args.episodes):
            params = sim.prepare(scene, 0, index, num_episodes=args.episodes)
            t0 = time.perf_counter()
            records = list(sim.run(params))
            produce += time.perf_counter() - t0
            header = next(r for r in records if isinstance(r, EpisodeHeader))
            ids = [o.instance_id for o in header.objects]
            frames += [r for r in records if isinstance(r, SensorFrame)]
            t0 = time.perf_counter()
            with DatasetWriter(Path(tmp) / f"e{index}.h5", scene, 0) as w:
                w.write_episode(params, records)
            write += time.perf_counter() - t0
    checker = LabelChecker(ids)
    by_res: dict[str, list[float]] = {}
    for f in frames:
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            checker.check(f)
            best = min(best, time.perf_counter() - t0)
        shape = f.arrays.get("instance", f.arrays.get("rgb"))
        res = f"{shape.shape[1]}x{shape.shape[0]}" if shape is not None else f.kind
        by_res.setdefault(f"{f.sensor} {res}", []).append(best)
    total = produce + write
    check = sum(sum(v) for v in by_res.values())
    print(f"machine: {platform.processor() or platform.machine()}, {platform.node()}")
    print(
        f"scene {args.scene}: {args.episodes} episodes, {len(frames)} sensor frames; "
        f"pipeline {produce:.2f} s + writer {write:.2f} s = {1000 * total / len(frames):.1f} "
        "ms per sensor frame"
    )
    for name, times in by_res.items():
        print(f"  {name}: self-checks {1e3 * sum(times) / len(times):.3f} ms per frame")
    print(
        f"self-checks: {1e3 * check:.1f} ms in all = {100 * check / total:.2f}% of the frame time"
    )


if __name__ == "__main__":
    main()
