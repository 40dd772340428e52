"""Crash and resume trials: kill -9 a parallel render at a random moment, resume, compare.

Each trial renders a small dataset (10 episodes of a tiny scene, 2 workers) into a fresh
dataset directory with ``simgen render``, kills the driver with SIGKILL at a random moment
(even trials: uniform over the uninterrupted run time, start-up included; odd trials: uniform
over the time from the first committed episode to the end, so kills land between commits,
during commits and merges; a run that happens to be faster finishes), checks what is on disk
(every
committed part and shard opens and matches its recorded checksums; no worker outlives the
driver), then runs ``--resume`` (in a third of the trials the resume is killed too, at a random
moment, and resumed again) and compares every episode's content checksum with an uninterrupted
single-process render. Writes a JSON record of every trial.

    python benchmarks/crash_trials.py [--trials 30] [--seed 2026] [--out crash_trials.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from simgen.io.digest import episode_digest
from simgen.io.integrity import check_integrity, episode_digests
from simgen.io.store import read_records
from simgen.run.batch import render_dataset
from simgen.scene.loader import parse_scene

ROOT = Path(__file__).resolve().parents[1]
SCENE = """
schema_version: 1
simulation: {duration: 0.3}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: cube, class: box, kind: box, size: [{uniform: [0.1, 0.3]}, 0.2, 0.2],
     pose: {position: [{uniform: [-0.2, 0.2]}, 0, 0.5]}}
  - {name: ball, class: ball, kind: sphere, radius: 0.08, pose: {position: [0.3, 0.2, 0.4]}}
sensors:
  - {kind: camera, name: cam, resolution: [48, 36], rate_hz: 10,
     look_at: {eye: [1.5, 1, 1], target: [0, 0, 0.2]}}
"""
EPISODES, SEED = 10, 11


def committed_ok(out: Path, reference: dict[int, str]) -> tuple[bool, int, str]:
    """(every committed file is intact and equal to the reference, episodes committed, why)."""
    n = 0
    for f in sorted([*(out / "parts").glob("*.h5"), *(out / "shards").glob("*.h5")]):
        try:
            with h5py.File(f, "r") as h:
                for r in read_records(f):
                    d = episode_digest(h["episodes"][f"{r.index:06d}"])
                    if d != r.sha256 or d != reference[r.index]:
                        return False, n, f"{f.name}: episode {r.index} differs"
                    n += 1
        except Exception as e:
            return False, n, f"{f.name}: {type(e).__name__}: {e}"
    return True, n, ""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def run_and_kill(
    cmd: list[str], delay: float | None, after_first_commit: bool = False
) -> dict[str, object]:
    """Run ``cmd``; with ``delay``, SIGKILL it after that many seconds (counted from its first
    committed episode if ``after_first_commit``). Returns what happened."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lines.extend, args=(proc.stdout,), daemon=True)
    reader.start()
    if after_first_commit:
        while not any('"episode"' in x for x in lines) and proc.poll() is None:
            time.sleep(0.01)
    killed = False
    try:
        proc.wait(timeout=delay if delay is not None else 600)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = True
    reader.join(5)
    pids = [json.loads(x)["pid"] for x in lines if '"worker_started"' in x]
    deadline = time.time() + 10
    while any(alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.05)
    return {
        "killed": killed,
        "at_s": round(time.perf_counter() - t0, 3),
        "rc": proc.returncode,
        "committed_events": sum('"episode"' in x for x in lines),
        "orphans": sum(alive(p) for p in pids),
        "stderr": "" if killed else (proc.stderr.read() if proc.stderr else "")[-500:],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", default="crash_trials.json")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="simgen-crash-"))
    scene_file = tmp / "s.yaml"
    scene_file.write_text(SCENE)
    render_dataset(
        parse_scene(SCENE, filename="s.yaml", base_dir=tmp),
        tmp / "ref.h5",
        episodes=range(EPISODES),
        seed=SEED,
    )
    reference = episode_digests(tmp / "ref.h5")

    def cmd(out: Path, *extra: str) -> list[str]:
        return [
            sys.executable, "-m", "simgen.cli", "render", str(scene_file), "-o", str(out),
            "-n", str(EPISODES), "-s", str(SEED), "-j", "2", "--log-json", *extra,
        ]  # fmt: skip

    times, firsts = [], []  # the uninterrupted run: the shorter of two (the machine is shared)
    for c in range(2):
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd(tmp / f"calib{c}"), cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if '"episode"' in line and len(firsts) == c:
                firsts.append(time.perf_counter() - t0)
        assert proc.wait() == 0
        times.append(time.perf_counter() - t0)
    full, first = min(times), min(firsts)
    trials = []
    for k in range(args.trials):
        out = tmp / f"t{k:03d}"
        # even trials: a moment of the whole run (start-up included); odd: after the first commit
        late = k % 2 == 1
        delay = float(rng.uniform(0.0, full - first if late else full))
        started = run_and_kill(cmd(out), delay, after_first_commit=late)
        intact, n_committed, why = committed_ok(out, reference) if out.exists() else (True, 0, "")
        steps = [started]
        if rng.uniform() < 1 / 3 and started["killed"]:  # kill the resume too
            steps.append(run_and_kill(cmd(out, "--resume"), float(rng.uniform(0.0, full))))
            ok2, _, why2 = committed_ok(out, reference)
            intact, why = intact and ok2, why or why2
        final = run_and_kill(cmd(out, "--resume"), None)
        steps.append(final)
        identical = final["rc"] == 0 and episode_digests(out) == reference
        integrity = check_integrity(out).ok if final["rc"] == 0 else False
        leftovers = len(list(out.rglob("*.partial"))) + len(list((out / "parts").glob("*")))
        t = {
            "trial": k,
            "kill_at_s": round(delay, 3),
            "counted_from": "first commit" if late else "start",
            "committed_at_kill": n_committed,
            "kills": sum(bool(s["killed"]) for s in steps),
            "committed_files_intact": intact,
            "why": why,
            "orphan_workers": sum(int(s["orphans"]) for s in steps),  # type: ignore[call-overload]
            "resume_rc": final["rc"],
            "resume_stderr": final["stderr"],
            "identical_to_uninterrupted": identical,
            "integrity_ok": integrity,
            "leftover_files": leftovers,
        }
        trials.append(t)
        print(json.dumps({k2: v for k2, v in t.items() if k2 != "resume_stderr"}), flush=True)
    good = [
        t
        for t in trials
        if t["identical_to_uninterrupted"]
        and t["committed_files_intact"]
        and t["integrity_ok"]
        and not t["orphan_workers"]
        and not t["leftover_files"]
    ]
    summary = {
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.node()}",
        "trials": len(trials),
        "all_good": len(good),
        "uninterrupted_run_s": round(full, 2),
        "first_commit_s": round(first, 2),
        "killed_before_first_commit": sum(t["committed_at_kill"] == 0 for t in trials),
        "killed_twice": sum(t["kills"] == 2 for t in trials),
        "finished_before_kill": sum(t["kills"] == 0 for t in trials),
        "trials_detail": trials,
    }
    Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    print(
        f"{len(good)}/{len(trials)} trials complete and identical to the uninterrupted run "
        f"(kills before the first commit: {summary['killed_before_first_commit']}, resumes "
        f"killed too: {summary['killed_twice']}, runs that finished before the kill: "
        f"{summary['finished_before_kill']}); wrote {args.out}"
    )


if __name__ == "__main__":
    main()
