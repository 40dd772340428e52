"""Cost of each camera label family as a share of the frame, and export speed.

Runs a scene's ``front`` camera (tabletop: a still camera over falling objects; street: a camera
on a moving car; 10 frames per episode) through the episode pipeline without labels (the frame:
RGB + depth + instance ids from one pass) and with every label (the labeler times each family's
code: boxes, the amodal renders and labels, keypoints, panoptic, flow), alternating ``--repeat``
times; each pair gives a ratio labels / frame (the machine may be shared: best and median are
printed). Normals come out of the render pass: their cost is the difference of renders with and
without them, alternating. Then a dataset with every label is exported to each format and timed.

    python benchmarks/bench_labels.py [--scene tabletop|street] [--width 640 --height 480] [--repeat 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

from simgen.io.exporters import FORMATS, export
from simgen.run.batch import render_dataset
from simgen.run.episode import Simulator
from simgen.run.records import SensorFrame
from simgen.scene.loader import load_scene
from simgen.scene.sensors import CAMERA_LABELS
from simgen.sensors.camera import (
    intrinsics_matrix,
    mount_in_parent,
    optical_pose_w,
    scene_with_resolution,
)

ROOT = Path(__file__).resolve().parents[1]


CAMERA = "front"


def scene_with_labels(base, labels):  # type: ignore[no-untyped-def]
    cam = next(s for s in base.sensors if s.name == CAMERA)
    new = base.model_copy(update={"sensors": [cam.model_copy(update={"labels": list(labels)})]})
    new._source_text, new._source_path, new._base_dir = (
        base.source_text,
        base.source_path,
        base.base_dir,
    )
    return new


def run_ms(sim: Simulator, params) -> tuple[float, dict[str, float]]:  # type: ignore[no-untyped-def]
    """Sensor time per frame (render + labels) of one episode, and each label family's."""
    n = sum(isinstance(r, SensorFrame) for r in sim.run(params))
    fams = {k: 1000 * v / n for k, v in sim.label_timings.get(CAMERA, {}).items()}
    return 1000 * sim.timings["sensors"] / n, fams


def best_median(values: list[float]) -> str:
    return f"{min(values):.1f}; {statistics.median(values):.1f}"


def normals_render_ms(sim: Simulator, scene, n: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Minimum render time of the last episode's final state with and without normals
    (alternating, ``n`` each): the normals' cost is in the render pass."""
    cam = next(s for s in scene.sensors if s.name == CAMERA)
    k = intrinsics_matrix(cam)
    pose = optical_pose_w(mount_in_parent(cam))  # where it is mounted (the view may differ)
    size = (int(cam.resolution[0]), int(cam.resolution[1]))
    r = sim.renderer()
    best = {True: float("inf"), False: float("inf")}
    for _ in range(n):
        for normals in (False, True):
            t0 = time.perf_counter()
            r.render(k, size, cam.near, cam.far, pose, normals=normals)
            best[normals] = min(best[normals], 1000 * (time.perf_counter() - t0))
    return best[True], best[False]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scene", default="tabletop", help="a scene of scenes/ with a 'front' camera")
    ap.add_argument("--no-export", action="store_true", help="label costs only")
    args = ap.parse_args()
    base = scene_with_resolution(
        load_scene(ROOT / "scenes" / f"{args.scene}.yaml"), args.width, args.height
    )
    with Simulator() as sim:
        plain = sim.prepare(scene_with_labels(base, []), 0, 0)
        full = sim.prepare(scene_with_labels(base, CAMERA_LABELS), 0, 0)
        run_ms(sim, full)  # warm-up: shaders, meshes
        frames, labels, ratios, fams = [], [], [], {}  # type: ignore[var-annotated]
        for _ in range(args.repeat):  # alternate, so both see the same machine load
            frame_ms = run_ms(sim, plain)[0]
            all_ms, f = run_ms(sim, full)
            frames.append(frame_ms)
            labels.append(all_ms - frame_ms)
            ratios.append((all_ms - frame_ms) / frame_ms)
            for k, v in f.items():
                fams.setdefault(k, []).append(v)
        with_n, without_n = normals_render_ms(sim, full.scene, 5 * args.repeat)
        gl = sim.render_backend()
        frame_ms = statistics.median(frames)
        print(
            f"# bench_labels: {args.scene} '{CAMERA}' camera, {args.width}x{args.height}, "
            f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, GL {gl.get('renderer')}, "
            f"{args.repeat} alternating runs, best; median"
        )
        print(f"frame without labels (RGB + depth + ids, one pass): {best_median(frames)} ms")
        print("| label family | ms/frame (best; median) | share of the median frame |")
        print("|---|---|---|")
        rows = {
            "boxes (2D tight, 3D, corners)": fams.get("boxes", [0.0]),
            "amodal: lone renders": fams.get("amodal_render", [0.0]),
            "amodal: masks, visibility, truncation": fams.get("amodal", [0.0]),
            "keypoints": fams.get("keypoints", [0.0]),
            "panoptic": fams.get("panoptic", [0.0]),
            "normals (render pass and read-back)": [max(with_n - without_n, 0.0)],
            "flow (forward + backward, scene flow)": fams.get("flow", [0.0]),
        }
        for name, ms in rows.items():
            print(f"| {name} | {best_median(ms)} | {statistics.median(ms) / frame_ms:.0%} |")
        print(
            f"| all, measured end to end | {best_median(labels)} | "
            f"{statistics.median(labels) / frame_ms:.0%} |"
        )
        print(
            f"**labels / frame, per alternated pair: best {min(ratios):.0%}, median "
            f"{statistics.median(ratios):.0%}** (target: below 100%)"
        )

        if args.no_export:
            return
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "labels.h5"
            render_dataset(
                scene_with_labels(base, CAMERA_LABELS), path, episodes=[0, 1], seed=0, simulator=sim
            )
            print("| export format | frames/s | objects |")
            print("|---|---|---|")
            for fmt in FORMATS:
                s = export(path, fmt, Path(tmp) / fmt)
                print(f"| {fmt} | {s.frames_per_second:.1f} | {s.objects} |")


if __name__ == "__main__":
    main()
