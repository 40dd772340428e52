"""Camera rendering speed: simgen vs pybullet's TinyRenderer on the same scene and camera.

Both render the tabletop scene (objects settled on the table) at 640x480 from the scene's
``front`` camera, producing RGB + depth + segmentation per frame (simgen: RGB, depth, instance
and semantic maps; pybullet: RGB, depth buffer and segmentation mask from ``getCameraImage``).
Frames are rendered from the same physics states. Prints frames/s of each and the ratio, and a
profile of where simgen's frame time goes.

    python benchmarks/bench_camera.py [--frames 30] [--width 640 --height 480]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import platform
import pstats
import time
from pathlib import Path

import numpy as np

from simgen.render.renderer import Renderer
from simgen.run.capture import CaptureContext, capture
from simgen.run.prepare import prepare_episode
from simgen.scene.loader import load_scene
from simgen.sensors.camera import (
    intrinsics_matrix,
    optical_pose_w,
    scene_with_resolution,
    sensor_pose_w,
)
from simgen.sim.assets import AssetResolver
from simgen.sim.quiet import import_pybullet
from simgen.sim.visuals import MeshLibrary
from simgen.sim.world import PhysicsWorld

ROOT = Path(__file__).resolve().parents[1]


def pybullet_matrices(cam, world) -> tuple[list[float], list[float]]:
    """pybullet view/projection matrices equal to simgen's camera (same K, pose, clip planes)."""
    w, h = cam.resolution
    k = intrinsics_matrix(cam)
    t_w_c = optical_pose_w(sensor_pose_w(cam, world.attachment_pose_w))
    t_c_w_gl = np.diag([1.0, -1.0, -1.0, 1.0]) @ np.linalg.inv(t_w_c)  # world -> OpenGL camera
    n, f = float(cam.near), float(cam.far)
    proj = np.zeros((4, 4))
    proj[0, 0] = 2 * k[0, 0] / w
    proj[1, 1] = 2 * k[1, 1] / h
    proj[0, 2] = 1 - 2 * (k[0, 2] + 0.5) / w
    proj[1, 2] = 2 * (k[1, 2] + 0.5) / h - 1
    proj[2, 2] = (f + n) / (n - f)
    proj[2, 3] = 2 * f * n / (n - f)
    proj[3, 2] = -1
    # pybullet takes column-major 16-vectors
    return t_c_w_gl.T.reshape(-1).tolist(), proj.T.reshape(-1).tolist()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    args = ap.parse_args()
    pb = import_pybullet()

    scene = scene_with_resolution(
        load_scene(ROOT / "scenes" / "tabletop.yaml"), args.width, args.height
    )
    cam = next(s for s in scene.sensors if s.name == "front")
    if "labels" in type(cam).model_fields:  # rendering only: bench_labels.py measures labels
        cam = cam.model_copy(update={"labels": []})
    params = prepare_episode(scene, 0, 0)
    meshes = MeshLibrary()
    results: dict[str, float] = {}
    with (
        PhysicsWorld(
            params,
            assets=AssetResolver.for_scene(scene.base_dir),
            meshes=meshes,
            pybullet_visuals=True,
        ) as world,
        Renderer() as renderer,
    ):
        renderer.load(params.scene, world.visual_parts)
        lut = np.zeros(len(world.bodies) + 1, np.uint16)
        for b in world.bodies:
            lut[b.instance_id] = b.class_id
        ctx = CaptureContext(
            world=world, renderer_factory=lambda: renderer, semantic_lut=lut, params=params
        )
        states = []
        for _frame in range(args.frames):  # a falling-then-settling episode, 1/30 s apart
            for _ in range(8):
                world.step()
            states.append(
                [world.client.getBasePositionAndOrientation(b.body_id) for b in world.bodies]
            )

        def set_state(i: int) -> None:
            for b, (p, q) in zip(world.bodies, states[i], strict=True):
                world.client.resetBasePositionAndOrientation(b.body_id, p, q)
            ctx.poses_synced = False

        set_state(0)
        capture(cam, ctx)  # warm-up: uploads meshes and compiles shaders
        for aa in (1, 4):
            spec = (
                cam.model_copy(update={"antialias": aa})
                if "antialias" in type(cam).model_fields
                else cam
            )
            t0 = time.perf_counter()
            for i in range(args.frames):
                set_state(i)
                _, arrays, _, _ = capture(spec, ctx)
            results[f"simgen aa{aa}"] = args.frames / (time.perf_counter() - t0)
            if "antialias" not in type(cam).model_fields:
                break
        prof = cProfile.Profile()
        prof.enable()
        for i in range(min(10, args.frames)):
            set_state(i)
            capture(cam, ctx)
        prof.disable()

        view, proj = pybullet_matrices(cam, world)
        set_state(0)
        world.client.getCameraImage(
            args.width, args.height, view, proj, renderer=pb.ER_TINY_RENDERER
        )
        t0 = time.perf_counter()
        for i in range(args.frames):
            set_state(i)
            _, _, _rgba, _depth, seg = world.client.getCameraImage(
                args.width, args.height, view, proj, renderer=pb.ER_TINY_RENDERER
            )
        results["pybullet TinyRenderer"] = args.frames / (time.perf_counter() - t0)
        ours_inst = arrays["instance"]
        seg = np.asarray(seg).reshape(args.height, args.width)
        by_body = {b.body_id: b.instance_id for b in world.bodies}
        theirs = np.vectorize(lambda s: by_body.get(int(s) & 0xFFFFFF, 0) if s >= 0 else 0)(seg)
        agree = float(np.mean(ours_inst == theirs))
        gl = renderer.gl_info

    print(
        f"# bench_camera: tabletop, {args.width}x{args.height}, {args.frames} frames, "
        f"{time.strftime('%Y-%m-%d')}, {platform.machine()} {platform.processor() or ''}".rstrip()
    )
    print(f"# GL: {gl.get('platform')} / {gl.get('renderer')}")
    base = results["pybullet TinyRenderer"]
    for name, fps in results.items():
        print(f"{name:24s} {fps:8.2f} frames/s   ratio vs pybullet {fps / base:5.2f}x")
    print(f"segmentation agreement with TinyRenderer (pixels with the same object): {agree:.3f}")
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(8)
    print("# where simgen's frame time goes (cProfile, tottime):")
    print("\n".join(line for line in s.getvalue().splitlines() if line.strip())[:3000])


if __name__ == "__main__":
    main()
