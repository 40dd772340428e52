"""Cost of each camera label family as a share of the frame, and export speed.

Runs a scene's ``front`` camera (tabletop: a still camera over falling objects; street: a camera
on a moving car; 10 frames per episode)
through the episode pipeline without labels (the frame: RGB + depth + instance ids from one
pass) and with every label (the labeler times each family's code: boxes, the amodal renders and
labels, keypoints, panoptic, flow), alternating ``--repeat`` times and keeping the minimum (the
machine may be shared). Normals come out of the render pass: their cost is the difference of
renders with and without them, alternating. Then a dataset with every label is exported to each
format and timed.

    python benchmarks/bench_labels.py [--scene tabletop|street] [--width 640 --height 480] [--repeat 3]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

from simgen.io.exporters import FORMATS, export
from simgen.random.sample import sample_episode
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


def run_ms(sim: Simulator, scene, repeat: int) -> tuple[float, dict[str, float]]:  # type: ignore[no-untyped-def]
    """Minimum over ``repeat`` runs of the sensor time per frame (render + labels) and of each
    label family's time per frame."""
    best, fams = float("inf"), {}
    for _ in range(repeat):
        n = sum(isinstance(r, SensorFrame) for r in sim.run(sample_episode(scene, 0, 0)))
        best = min(best, 1000 * sim.timings["sensors"] / n)
        for k, v in sim.label_timings.get(CAMERA, {}).items():
            fams[k] = min(fams.get(k, float("inf")), 1000 * v / n)
    return best, fams


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
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scene", default="tabletop", help="a scene of scenes/ with a 'front' camera")
    args = ap.parse_args()
    base = scene_with_resolution(
        load_scene(ROOT / "scenes" / f"{args.scene}.yaml"), args.width, args.height
    )
    with Simulator() as sim:
        plain, full = scene_with_labels(base, []), scene_with_labels(base, CAMERA_LABELS)
        run_ms(sim, full, 1)  # warm-up: shaders, meshes
        frame_ms, all_ms, fams = float("inf"), float("inf"), {}
        for _ in range(args.repeat):  # alternate, so both see the same machine load
            frame_ms = min(frame_ms, run_ms(sim, plain, 1)[0])
            ms, f = run_ms(sim, full, 1)
            all_ms = min(all_ms, ms)
            fams = {k: min(v, fams.get(k, v)) for k, v in f.items()}
        with_n, without_n = normals_render_ms(sim, full, 5 * args.repeat)
        gl = sim.render_backend()
        print(
            f"# bench_labels: {args.scene} '{CAMERA}' camera, {args.width}x{args.height}, "
            f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, GL {gl.get('renderer')}"
        )
        print(f"frame without labels (RGB + depth + ids, one pass): {frame_ms:.1f} ms")
        print("| label family | ms/frame | share of the frame |")
        print("|---|---|---|")
        rows = {
            "boxes (2D tight, 3D, corners)": fams.get("boxes", 0.0),
            "amodal: lone renders": fams.get("amodal_render", 0.0),
            "amodal: masks, visibility, truncation": fams.get("amodal", 0.0),
            "keypoints": fams.get("keypoints", 0.0),
            "panoptic": fams.get("panoptic", 0.0),
            "normals (render pass and read-back)": max(with_n - without_n, 0.0),
            "flow (forward + backward, scene flow)": fams.get("flow", 0.0),
        }
        for name, ms in rows.items():
            print(f"| {name} | {ms:.1f} | {ms / frame_ms:.0%} |")
        no_flow = sum(rows.values()) - rows["flow (forward + backward, scene flow)"]
        print(f"| all but flow | {no_flow:.1f} | {no_flow / frame_ms:.0%} |")
        print(f"| all (sum) | {sum(rows.values()):.1f} | {sum(rows.values()) / frame_ms:.0%} |")
        print(
            f"| all (measured end to end) | {all_ms - frame_ms:.1f} | {(all_ms - frame_ms) / frame_ms:.0%} |"
        )

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
