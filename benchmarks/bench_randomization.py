"""Randomization overhead: sampling + placement per episode vs the episode's simulation + render.

For each example scene (``scenes/*.yaml``, at their own resolutions and durations), episodes
are prepared (every distribution sampled, scattered objects placed and settled, ``require``
checked: :func:`simgen.run.prepare.prepare_episode`) and then run (physics, scenario events,
camera rendering; nothing is written). Prints milliseconds per episode of each part and the
overhead ``(sampling + placement) / (simulation + render)``; the target is <= 5%.

    python benchmarks/bench_randomization.py [--episodes 6] [--scenes tabletop street]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from simgen.random.sample import sample_episode
from simgen.run.episode import Simulator
from simgen.scene.loader import load_scene

ROOT = Path(__file__).resolve().parents[1]


def bench_scene(sim: Simulator, path: Path, episodes: int) -> dict[str, float]:
    scene = load_scene(path)
    n = episodes + 1
    sim.prepare(scene, 0, n - 1, num_episodes=n)  # warm-up: meshes loaded, GL ready
    for _ in sim.run(sim.prepare(scene, 0, n - 1, num_episodes=n)):
        pass
    sample_s, prepare_s, run_s, tries = [], [], [], []
    for i in range(episodes):
        t0 = time.perf_counter()
        sample_episode(scene, 0, i, num_episodes=n)
        t1 = time.perf_counter()
        params = sim.prepare(scene, 0, i, num_episodes=n)
        t2 = time.perf_counter()
        for _ in sim.run(params):
            pass
        t3 = time.perf_counter()
        sample_s.append(t1 - t0)
        prepare_s.append(t2 - t1)
        run_s.append(t3 - t2)
        tries.append(params.attempt + 1)
    sample_ms = 1e3 * float(np.mean(sample_s))
    prepare_ms = 1e3 * float(np.mean(prepare_s))
    run_ms = 1e3 * float(np.mean(run_s))
    return {
        "sample_ms": sample_ms,
        "placement_ms": max(prepare_ms - sample_ms * float(np.mean(tries)), 0.0),
        "prepare_ms": prepare_ms,
        "run_ms": run_ms,
        "overhead_pct": 100.0 * prepare_ms / run_ms,
        "tries": float(np.mean(tries)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=6)
    ap.add_argument("--scenes", nargs="*", default=None, help="scene names (default: all)")
    args = ap.parse_args()
    paths = sorted((ROOT / "scenes").glob("*.yaml"))
    if args.scenes:
        paths = [p for p in paths if p.stem in args.scenes]
    with Simulator() as sim:
        rows = {p.stem: bench_scene(sim, p, args.episodes) for p in paths}
        gl = sim.render_backend()
    print(
        f"# bench_randomization: {args.episodes} episodes per scene, {time.strftime('%Y-%m-%d')}, "
        f"{platform.machine()} {platform.processor() or ''}".rstrip()
    )
    print(f"# GL: {gl.get('platform')} / {gl.get('renderer')}")
    print(
        f"{'scene':10s} {'sample ms':>10s} {'placement ms':>13s} {'sim+render ms':>14s} "
        f"{'overhead':>9s} {'tries':>6s}"
    )
    for name, r in rows.items():
        print(
            f"{name:10s} {r['sample_ms']:10.1f} {r['placement_ms']:13.1f} {r['run_ms']:14.0f} "
            f"{r['overhead_pct']:8.2f}% {r['tries']:6.2f}"
        )


if __name__ == "__main__":
    main()
