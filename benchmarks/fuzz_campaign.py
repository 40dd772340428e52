"""A large fuzzing campaign of scene files, in worker processes that may crash or hang.

Mutants of every example scene (tests/fuzzing.py: structural mutants and extreme numbers) are
generated with hypothesis, then run by ``--workers`` processes through the stages load ->
prepare (sampling, placement) -> build (physics world, 24 steps) -> render (with ``--render``:
the episode clipped to 0.1 s at 32 x 24 pixels, every camera and LiDAR). A case that ends in
anything but a clean simgen error (another exception, an error without file:line, a crashed
process: segfault of pybullet or GL, or a case running past ``--timeout``) is a finding: it is
saved under ``--out`` as a YAML file with its outcome, for the regression corpus
(tests/fuzz_corpus/). The counts go to docs/reliability.md.

    python benchmarks/fuzz_campaign.py [--examples 20000] [--numeric 0.3] [--seed 1]
                                       [--workers 2] [--render] [--timeout 120] [--out DIR]
                                       [--keep 3]

``--keep N`` also saves N cases of each clean error past loading (prepare, build, render):
candidates for the corpus.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing as mp
import os
import platform
import queue
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def _worker(inbox: Any, outbox: Any, render: bool) -> None:
    import warnings

    warnings.simplefilter("ignore")
    import fuzzing

    from simgen.sim.visuals import MeshLibrary

    meshes = MeshLibrary()
    sim = None
    if render:
        from simgen.run.episode import Simulator

        sim = Simulator()
    while True:
        item = inbox.get()
        if item is None:
            break
        i, text = item
        t0 = time.perf_counter()
        try:
            stage, outcome = fuzzing.run_stages(text, meshes=meshes, sim=sim)
            result: dict[str, Any] = {"stage": stage, "outcome": outcome, "clean": True}
        except BaseException as e:  # a finding: anything but a clean simgen error
            tb = traceback.extract_tb(e.__traceback__)
            where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
            result = {
                "stage": "?",
                "outcome": f"{type(e).__name__} at {where}: {str(e)[:300]}",
                "clean": False,
            }
        result["seconds"] = time.perf_counter() - t0
        outbox.put((i, result))


class _Slot:
    def __init__(self, ctx: Any, render: bool) -> None:
        self.inbox, self.outbox = ctx.Queue(), ctx.Queue()
        self.proc = ctx.Process(target=_worker, args=(self.inbox, self.outbox, render), daemon=True)
        self.proc.start()
        self.case: int | None = None
        self.since = 0.0

    def give(self, i: int, text: str) -> None:
        self.case, self.since = i, time.monotonic()
        self.inbox.put((i, text))

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join(5)


def generate(n: int, numeric: float, seed: int) -> list[tuple[str, list[str], str]]:
    import warnings

    warnings.simplefilter("ignore")
    import fuzzing
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    out: list[tuple[str, list[str], str]] = []
    n_num = round(n * numeric)
    for strategy, count, s in (
        (fuzzing.mutants(), n - n_num, seed),
        (fuzzing.numeric_mutants(), n_num, seed + 1),
    ):
        if count <= 0:
            continue

        @hseed(s)
        @settings(
            max_examples=count,
            phases=[Phase.generate],
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(strategy)
        def collect(m: tuple[str, list[str], str]) -> None:
            out.append(m)

        collect()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=20000)
    ap.add_argument("--numeric", type=float, default=0.3, help="share of extreme-number mutants")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--render", action="store_true", help="also render the clipped episode")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per case")
    ap.add_argument("--out", type=Path, default=Path("out/fuzz"))
    ap.add_argument(
        "--keep",
        type=int,
        default=3,
        help="also save this many cases of each clean error past loading (corpus candidates)",
    )
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    cases = generate(args.examples, args.numeric, args.seed)
    gen_s = time.perf_counter() - t0
    print(f"{len(cases)} mutants generated in {gen_s:.1f} s", flush=True)
    ctx = mp.get_context("spawn")
    slots = [_Slot(ctx, args.render) for _ in range(args.workers)]
    todo = collections.deque(range(len(cases)))
    results: dict[int, dict[str, Any]] = {}
    t1 = time.perf_counter()
    while len(results) < len(cases):
        for k, s in enumerate(slots):
            if s.case is None and todo:
                i = todo.popleft()
                s.give(i, cases[i][2])
            if s.case is None:
                continue
            try:
                i, r = s.outbox.get(timeout=0.01)
                results[i] = r
                s.case = None
            except queue.Empty:
                dead = not s.proc.is_alive()
                late = time.monotonic() - s.since > args.timeout
                if dead or late:
                    code = s.proc.exitcode
                    s.kill()
                    results[s.case] = {
                        "stage": "?",
                        "outcome": f"worker died (exit code {code})" if dead else "hang (timeout)",
                        "clean": False,
                        "seconds": time.monotonic() - s.since,
                    }
                    slots[k] = _Slot(ctx, args.render)
        done = len(results)
        if done and done % 500 == 0 and all(s.case is None for s in slots[:1]):
            print(f"  {done}/{len(cases)} ({time.perf_counter() - t1:.0f} s)", flush=True)
    for s in slots:
        s.inbox.put(None)
    for s in slots:
        s.proc.join(10)
    run_s = time.perf_counter() - t1

    stages = collections.Counter((r["stage"], r["outcome"]) for r in results.values() if r["clean"])
    findings = [(i, r) for i, r in sorted(results.items()) if not r["clean"]]
    for i, r in findings:
        src, applied, text = cases[i]
        outcome = r["outcome"].replace("\n", "\n#   ")
        head = f"# finding: {outcome}\n# from {src}: {', '.join(applied)}\n"
        (args.out / f"finding_{i:06d}.yaml").write_text(head + text)
    kept: collections.Counter[tuple[str, str]] = collections.Counter()
    for i, r in sorted(results.items()):
        key = (r["stage"], r["outcome"])
        if r["clean"] and r["stage"] not in ("load", "done") and kept[key] < args.keep:
            kept[key] += 1
            src, applied, text = cases[i]
            head = f"# outcome: {key[0]} {key[1]}\n# from {src}: {', '.join(applied)}\n"
            (args.out / f"kept_{key[0]}_{key[1]}_{i:06d}.yaml").write_text(head + text)
    slowest = max(results.values(), key=lambda r: r["seconds"])
    summary = {
        "examples": len(cases),
        "numeric_share": args.numeric,
        "seed": args.seed,
        "render": args.render,
        "workers": args.workers,
        "generate_s": round(gen_s, 1),
        "run_s": round(run_s, 1),
        "clean": sum(r["clean"] for r in results.values()),
        "findings": len(findings),
        "slowest_case_s": round(slowest["seconds"], 2),
        "outcomes": {f"{s} {o}": n for (s, o), n in stages.most_common()},
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    for i, r in findings[:20]:
        print(f"finding {i}: {r['outcome']}")


if __name__ == "__main__":
    main()
