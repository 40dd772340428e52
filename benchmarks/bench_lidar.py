"""LiDAR speed: simgen's sweep vs raw Embree and pybullet's rayTestBatch on the same rays.

An HDL-64E-like sweep (64 channels x 2048 columns = 131072 rays, 120 m) from the roof of the ego
vehicle of the street scene, after 0.1 s of simulation. Measured in one run:

* simgen: a whole sweep through the real capture path (sectors cast with the world's poses,
  labels, intensity, noise, de-skewing, packing), with motion sectors (default: one per physics
  step, 25 here) and with one sector; physics is not stepped between sectors, so only the
  sensor's cost is timed. Also the share of that time spent outside the ray caster.
* raw Embree: the same world rays cast by the binding directly (embreex ``EmbreeScene.run``)
  on a scene with every part baked in world coordinates; on 1 thread and on all cores (the
  binding holds the GIL, so threads do not help; see docs/lidar.md).
* pybullet: ``rayTestBatch`` with ``numThreads=0`` (all cores), batches of 16383 rays, the
  same rays, against pybullet's collision shapes of the same objects (exact boxes, capsules and
  an infinite plane; the racecar's collision shapes differ from its visual meshes), so hits are
  compared and the agreement is reported.
* other bindings (optional): pyembree2, when installed, on the same baked scene.

    python benchmarks/bench_lidar.py [--columns 2048] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from simgen.random.sample import sample_episode
from simgen.run.capture import CaptureContext
from simgen.run.lidar_capture import cast_sector, episode_geometry, finish_sweep, lidar_setup
from simgen.scene.loader import load_scene
from simgen.scene.sensors import LidarSensor
from simgen.sensors.camera import sensor_pose_w
from simgen.sensors.raycast import RayCaster, part_triangles
from simgen.sim.assets import AssetResolver
from simgen.sim.visuals import MeshLibrary
from simgen.sim.world import PhysicsWorld

ROOT = Path(__file__).resolve().parents[1]
BATCH = 16383


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def sweep(spec: LidarSensor, ctx: CaptureContext, sectors: int) -> None:
    """One sweep through the capture functions the episode loop calls."""
    parts = [cast_sector(spec, ctx, 0, j) for j in range(sectors)]
    finish_sweep(spec, ctx, parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--columns", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from simgen.sim.quiet import import_pybullet

    import_pybullet()
    scene = load_scene(ROOT / "scenes" / "street.yaml")
    params = sample_episode(scene, 0, 0)
    spec = LidarSensor.model_validate(
        {
            "kind": "lidar",
            "name": "hdl64",
            "preset": "hdl-64e",
            "columns": args.columns,
            "attach_to": {"object": "ego"},
            "pose": {"position": [0.0, 0.0, 1.8]},
            "noise": {"range_sigma_m": 0.02, "dropout": 0.01},
        }
    )
    one_sector = spec.model_copy(update={"sectors": 1, "name": "hdl64_one_sector"})
    out: dict[str, float] = {}
    with PhysicsWorld(
        params, assets=AssetResolver.for_scene(scene.base_dir), meshes=MeshLibrary()
    ) as world:
        for _ in range(24):
            world.step()
        lut = np.zeros(len(world.bodies) + 1, np.uint16)
        for b in world.bodies:
            lut[b.instance_id] = b.class_id
        caster = RayCaster()
        t0 = time.perf_counter()
        geo = episode_geometry(world, caster)
        out["episode setup (cold), ms"] = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        episode_geometry(world, caster)
        out["episode setup (warm cache), ms"] = (time.perf_counter() - t0) * 1e3
        ctx = CaptureContext(
            world=world,
            renderer_factory=None,
            semantic_lut=lut,
            params=params,
            raycaster_factory=lambda: caster,
        )
        ctx.cache["lidar_geometry"] = geo
        n_rays = 64 * args.columns

        # time spent inside the caster (CastScene.cast: Embree plus the moving-part culling)
        inner = {"t": 0.0}
        real_cast = geo.scene.cast

        def timed_cast(*a, **k):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            r = real_cast(*a, **k)
            inner["t"] += time.perf_counter() - t
            return r

        geo.scene.cast = timed_cast  # type: ignore[method-assign]
        for name, s in (("sectors", spec), ("sector", one_sector)):
            sectors = lidar_setup(s, world.timestep).timing.sectors
            sweep(s, ctx, sectors)  # warm-up (the pattern is computed once per episode)
            total = best(lambda s=s, n=sectors: sweep(s, ctx, n), args.repeats)
            inner["t"] = 0.0
            t_one = best(lambda s=s, n=sectors: sweep(s, ctx, n), 1)
            cast_t = inner["t"]
            out[f"simgen sweep, {sectors} {name}, Mrays/s"] = n_rays / total / 1e6
            out[f"simgen sweep, {sectors} {name}, outside caster %"] = 100.0 * max(
                0.0, 1.0 - cast_t / t_one
            )
        geo.scene.cast = real_cast  # type: ignore[method-assign]

        # the same rays in world coordinates
        setup = lidar_setup(spec, world.timestep)
        pose = sensor_pose_w(spec, world.attachment_pose_w)
        dirs_w = setup.dirs_s.reshape(-1, 3) @ pose[:3, :3].T
        origin = pose[:3, 3]
        max_range = setup.model.max_range
        poses = world.part_poses_w()
        baked = []
        for i, part in enumerate(world.visual_parts):
            v, f = part_triangles(part)
            baked.append((v @ poses[i, :3, :3].T + poses[i, :3, 3], f))
        raw_scene = caster.build(baked)
        o32 = np.broadcast_to(origin.astype(np.float32), (n_rays, 3)).copy()
        d32 = dirs_w.astype(np.float32)

        def raw(lo: int = 0, hi: int = n_rays) -> dict:
            return raw_scene.run(o32[lo:hi], d32[lo:hi], dists=max_range, output=1)

        raw()
        out["raw embreex, 1 thread, Mrays/s"] = n_rays / best(raw, args.repeats) / 1e6
        cores = os.cpu_count() or 1
        chunks = np.linspace(0, n_rays, cores * 4 + 1).astype(int)
        with ThreadPoolExecutor(cores) as pool:

            def raw_threads() -> None:
                list(pool.map(raw, chunks[:-1], chunks[1:]))

            out[f"raw embreex, {cores} threads, Mrays/s"] = (
                n_rays / best(raw_threads, args.repeats) / 1e6
            )
        ref = raw()

        # pybullet rayTestBatch against the collision shapes
        frm = np.broadcast_to(origin, (n_rays, 3))
        to = frm + dirs_w * max_range
        batches = [
            (frm[i : i + BATCH].tolist(), to[i : i + BATCH].tolist())
            for i in range(0, n_rays, BATCH)
        ]
        c = world.client

        def pybullet_cast() -> list:
            res: list = []
            for a, b in batches:
                res += c.rayTestBatch(a, b, numThreads=0)
            return res

        hits = pybullet_cast()
        out["pybullet rayTestBatch, all cores, Mrays/s"] = (
            n_rays / best(pybullet_cast, max(1, args.repeats // 2)) / 1e6
        )
        inst_of_body = {b.body_id: b.instance_id for b in world.bodies}
        pb_inst = np.array([inst_of_body.get(h[0], 0) for h in hits])
        pb_t = np.array([h[2] * max_range if h[0] >= 0 else np.inf for h in hits])
        part_inst = np.array([p.instance_id for p in world.visual_parts])
        ours_inst = np.where(ref["geomID"] >= 0, part_inst[np.maximum(ref["geomID"], 0)], 0)
        ours_t = np.where(ref["geomID"] >= 0, ref["tfar"], np.inf)
        both = (pb_inst > 0) & (ours_inst > 0)
        diff = np.zeros(n_rays)
        diff[both] = np.abs(pb_t[both] - ours_t[both])
        agree = (pb_inst == ours_inst) & (diff < 0.01)
        out["rays with the same object (and range within 1 cm), %"] = 100.0 * agree.mean()
        classes = params.scene.class_table()
        class_of = {b.instance_id: classes[b.class_id] for b in world.bodies}
        disagree = ours_inst[~agree]
        worst = {
            class_of.get(int(i), "background"): int(n)
            for i, n in zip(*np.unique(disagree, return_counts=True), strict=True)
        }

        # other bindings on the same baked scene (optional)
        try:
            import pyembree2  # type: ignore[import-not-found]

            meshes = [
                pyembree2.triangle_mesh(v.astype(np.float32), f.astype(np.uint32)) for v, f in baked
            ]
            o64, d64 = frm.copy(), dirs_w.copy()
            pyembree2.ray_trace(meshes, o64[:10], d64[:10])
            out["pyembree2 ray_trace (builds per call), Mrays/s"] = (
                n_rays / best(lambda: pyembree2.ray_trace(meshes, o64, d64), args.repeats) / 1e6
            )
        except ImportError:
            pass

    print(
        f"# bench_lidar: street scene, HDL-64E-like 64 x {args.columns} = {n_rays} rays, "
        f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores"
    )
    for k, v in out.items():
        print(f"{k:58s} {v:10.2f}")
    ours = out[f"simgen sweep, {lidar_setup(spec, 1 / 240).timing.sectors} sectors, Mrays/s"]
    print(
        f"{'ratio simgen (sectors) / pybullet':58s} {ours / out['pybullet rayTestBatch, all cores, Mrays/s']:10.2f}"
    )
    print(
        f"{'ratio simgen (sectors) / raw embreex 1 thread':58s} {ours / out['raw embreex, 1 thread, Mrays/s']:10.2f}"
    )
    print(f"rays that disagree with pybullet, by our class: {worst}")


if __name__ == "__main__":
    main()
