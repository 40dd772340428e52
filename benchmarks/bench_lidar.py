"""LiDAR speed: simgen's sweep vs raw Embree and pybullet's rayTestBatch on the same rays.

An HDL-64E-like sweep (64 channels x 2048 columns = 131072 rays, 120 m) from the roof of the ego
vehicle of the street scene, the sweep running from 0.1 s to 0.2 s of simulation. Measured in
one run:

* simgen: a whole sweep through the real capture path, with motion sectors (default: one per
  physics step, 25 here) and with one sector. The sectors' poses are recorded once while physics
  steps through the sweep (the ego vehicle, the other cars and the sensor really move between
  sectors); a timed sweep is the pose reads of every sector (``record_sector``, at the current
  state) plus ``finish_sweep`` on the recorded sectors (the deferred cast, labels, intensity,
  noise, de-skewing), so physics is not timed. Also the cast alone (``cast_sweep`` of the same
  sectors with no labeling), which gives the share of the sweep spent outside the ray caster.
* raw Embree: the same world rays cast by the binding directly (embreex ``EmbreeScene.run``)
  on a scene with every part baked in world coordinates; on 1 thread and on all cores (the
  binding releases the GIL, so threads help).
* pybullet: ``rayTestBatch`` with ``numThreads=0`` (all cores), batches of 16383 rays, the
  same rays, against pybullet's collision shapes of the same objects (exact boxes, capsules and
  an infinite plane; the racecar's collision shapes differ from its visual meshes), so hits are
  compared and the agreement is reported.
* other bindings (optional): pyembree2, when installed, on the same baked scene.

simgen and raw Embree are timed in turns (one of each per round, ``--repeats`` rounds) so that
load from other processes hits both alike; the best time of each is reported with the spread
(median), and the ratios use the best times. The CPU time (all threads of the process) of each
is reported too: the ratio of CPU times is the share a quiet machine would see if every thread
had a core of its own.

    python benchmarks/bench_lidar.py [--columns 2048] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from simgen.random.sample import sample_episode
from simgen.run.capture import CaptureContext
from simgen.run.lidar_capture import (
    SectorRecord,
    episode_geometry,
    finish_sweep,
    lidar_episode,
    record_sector,
)
from simgen.scene.loader import load_scene
from simgen.scene.sensors import LidarSensor
from simgen.sensors.camera import sensor_pose_w
from simgen.sensors.raycast import RayCaster, part_triangles
from simgen.sensors.sweep_cast import cast_sweep
from simgen.sim.assets import AssetResolver
from simgen.sim.visuals import MeshLibrary
from simgen.sim.world import PhysicsWorld

ROOT = Path(__file__).resolve().parents[1]
BATCH = 16383


def best(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def in_turns(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, np.ndarray]:
    """(repeats, 2) wall and CPU seconds of each function, run in turns."""
    out: dict[str, list[tuple[float, float]]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            out[k].append((time.perf_counter() - w0, time.process_time() - c0))
    return {k: np.array(v) for k, v in out.items()}


def record_sweep(specs: list[LidarSensor], ctx: CaptureContext) -> dict[str, list[SectorRecord]]:
    """Step physics through one sweep, recording every sector of each LiDAR at its step (as the
    episode loop does); the world is left at the sweep's end step."""
    timings = [lidar_episode(s, ctx).setup.timing for s in specs]
    records: dict[str, list[SectorRecord]] = {s.name: [] for s in specs}
    for step in range(timings[0].end_step + 1):
        for s, timing in zip(specs, timings, strict=True):
            for j in np.flatnonzero(timing.sector_step == step):
                records[s.name].append(record_sector(s, ctx, 0, int(j)))
        if step < timings[0].end_step:
            ctx.world.step()
    return records


def sweep(spec: LidarSensor, ctx: CaptureContext, records: list[SectorRecord]) -> None:
    """One sweep's sensor work: every sector's pose reads, then the sweep's cast and labels."""
    for j in range(len(records)):
        record_sector(spec, ctx, 0, j)
    finish_sweep(spec, ctx, records)


def cast_only(spec: LidarSensor, ctx: CaptureContext, records: list[SectorRecord]) -> None:
    """The same sweep's rays cast (world rays, moving parts, merge), without any labeling."""
    lid = lidar_episode(spec, ctx)
    sensor_w, parts_w = lid.reader.poses(np.array([r.reads for r in records]))
    cast_sweep(lid.geo.scene, lid.setup.pattern, sensor_w, parts_w, lid.setup.model.max_range, id)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--columns", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=7)
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
    out: dict[str, float | tuple[float, float]] = {}
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
        records = record_sweep([spec, one_sector], ctx)

        # the same rays in world coordinates, from the sensor pose at the sweep end
        setup = lidar_episode(spec, ctx).setup
        sectors = setup.timing.sectors
        pose = sensor_pose_w(spec, world.attachment_pose_w)
        dirs_w = setup.pattern.dirs_s.astype(np.float64) @ pose[:3, :3].T
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
        cores = os.cpu_count() or 1
        chunks = np.linspace(0, n_rays, cores * 4 + 1).astype(int)
        pool = ThreadPoolExecutor(cores)

        def raw_threads() -> None:
            list(pool.map(raw, chunks[:-1], chunks[1:]))

        fns = {
            f"simgen sweep, {sectors} sectors": lambda: sweep(spec, ctx, records[spec.name]),
            "simgen sweep, 1 sector": lambda: sweep(one_sector, ctx, records[one_sector.name]),
            f"simgen cast only, {sectors} sectors": lambda: cast_only(
                spec, ctx, records[spec.name]
            ),
            "raw embreex, 1 thread": raw,
            f"raw embreex, {cores} threads": raw_threads,
        }
        for fn in fns.values():
            fn()  # warm-up (per-episode setup of each sensor)
        times = in_turns(fns, args.repeats)
        pool.shutdown()
        for k, v in times.items():
            out[f"{k}, Mrays/s (best; median)"] = (
                n_rays / v[:, 0].min() / 1e6,
                n_rays / np.median(v[:, 0]) / 1e6,
            )
        for k, v in times.items():
            out[f"{k}, CPU ms per sweep (best)"] = v[:, 1].min() * 1e3
        ours = times[f"simgen sweep, {sectors} sectors"]
        raw_all = times[f"raw embreex, {cores} threads"]
        out["simgen sweep / raw all cores, wall % (best; median of turns)"] = (
            100.0 * raw_all[:, 0].min() / ours[:, 0].min(),
            100.0 * np.median(raw_all[:, 0] / ours[:, 0]),
        )
        out["simgen sweep / raw, CPU time %"] = (
            100.0 * times["raw embreex, 1 thread"][:, 1].min() / ours[:, 1].min()
        )
        out["share of the sweep outside the caster, %"] = 100.0 * (
            1.0 - times[f"simgen cast only, {sectors} sectors"][:, 0].min() / ours[:, 0].min()
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
        shown = "; ".join(f"{x:.2f}" for x in v) if isinstance(v, tuple) else f"{v:.2f}"
        print(f"{k:66s} {shown:>16s}")
    ours = out[f"simgen sweep, {sectors} sectors, Mrays/s (best; median)"]
    assert isinstance(ours, tuple)
    pyb = out["pybullet rayTestBatch, all cores, Mrays/s"]
    assert isinstance(pyb, float)
    print(f"{'ratio simgen (sectors) / pybullet':66s} {ours[0] / pyb:16.2f}")
    print(f"rays that disagree with pybullet, by our class: {worst}")


if __name__ == "__main__":
    main()
