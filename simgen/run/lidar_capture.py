"""LiDAR capture: cast each sector of a sweep at its own physics step, then label, add noise, pack.

A sweep of frame k starts at ``t_k = k / rate_hz`` (snapped to a step) and ends one rotation
later; the frame is yielded at the end step. Every sector is cast by :func:`cast_sector` when the
episode loop reaches the sector's step (the world then holds that instant's poses, so moving
objects and a moving sensor smear as on a real sensor); :func:`finish_sweep` assembles the
frame. The output arrays are documented in docs/dataset-format.md and docs/lidar.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simgen.run.capture import CaptureContext, CapturePlan, Captured
from simgen.scene.sensors import LidarSensor
from simgen.scene.types import value
from simgen.sensors.camera import CaptureSchedule, sensor_pose_w
from simgen.sensors.lidar import (
    LidarModel,
    SweepTiming,
    apply_noise,
    class_reflectivity,
    deskew,
    intensity,
    lidar_model,
    ray_directions,
    sweep_timing,
)
from simgen.sensors.raycast import CastScene, RayCaster
from simgen.sim.world import PhysicsWorld


@dataclass(frozen=True)
class LidarSetup:
    """What a LiDAR needs for a whole episode (pure functions of its spec and the timestep)."""

    model: LidarModel
    timing: SweepTiming
    dirs_s: np.ndarray  # (C, N, 3)
    sector_columns: tuple[np.ndarray, ...]  # column indices of each sector
    sector_dirs_s: tuple[np.ndarray, ...]  # (C * m, 3) ray directions of each sector


def lidar_setup(spec: LidarSensor, timestep: float) -> LidarSetup:
    model = lidar_model(spec)
    timing = sweep_timing(model, timestep)
    dirs = ray_directions(model)
    cols = tuple(np.flatnonzero(timing.column_sector == j) for j in range(timing.sectors))
    return LidarSetup(
        model, timing, dirs, cols, tuple(np.ascontiguousarray(dirs[:, c].reshape(-1, 3)) for c in cols)
    )


def lidar_plan(spec: LidarSensor, timestep: float, num_steps: int) -> CapturePlan:
    """Sweeps start at k / rate_hz; frames whose sweep ends at or after the episode end are
    dropped (time is half-open)."""
    timing = sweep_timing(lidar_model(spec), timestep)
    starts = CaptureSchedule.build(value(spec.rate_hz), timestep, num_steps).steps
    ends = starts + timing.end_step
    keep = ends < num_steps
    return CapturePlan(ends[keep], starts[keep, None] + timing.sector_step[None, :])


@dataclass(frozen=True)
class EpisodeGeometry:
    """The episode's cast scene and per-part labels."""

    scene: CastScene
    part_instance: np.ndarray  # (P,) uint16
    part_reflectivity: np.ndarray  # (P,) float64


def episode_geometry(world: PhysicsWorld, caster: RayCaster) -> EpisodeGeometry:
    parts = world.visual_parts
    bodies = {b.instance_id: b for b in world.bodies}
    movable = np.array(
        [not (bodies[p.instance_id].spec.static and p.link_index == -1) for p in parts], bool
    )
    refl = []
    for p in parts:
        spec = bodies[p.instance_id].spec
        m = spec.material
        own = m.reflectivity if m is not None else None
        refl.append(value(own) if own is not None else class_reflectivity(spec.class_name))
    return EpisodeGeometry(
        caster.scene(parts, movable, world.part_poses_w()),
        np.array([p.instance_id for p in parts], np.uint16),
        np.array(refl, np.float64),
    )


def _setup(spec: LidarSensor, ctx: CaptureContext) -> LidarSetup:
    key = ("lidar", spec.name)
    if key not in ctx.cache:
        ctx.cache[key] = lidar_setup(spec, ctx.world.timestep)
    setup: LidarSetup = ctx.cache[key]
    return setup


def _geometry(ctx: CaptureContext) -> EpisodeGeometry:
    if "lidar_geometry" not in ctx.cache:
        caster = ctx.raycaster_factory() if ctx.raycaster_factory is not None else RayCaster()
        ctx.cache["lidar_geometry"] = episode_geometry(ctx.world, caster)
    geo: EpisodeGeometry = ctx.cache["lidar_geometry"]
    return geo


@dataclass(frozen=True)
class SectorCast:
    """The raw hits of one sector, cast at one physics step."""

    frame: int
    sector: int
    step: int
    pose_w: np.ndarray  # (4, 4) sensor body pose at the cast
    t: np.ndarray  # (C, m) float32 hit distance, inf = no hit within max_range
    part: np.ndarray  # (C, m) int32 visual part hit, -1 = none
    cos_incidence: np.ndarray  # (C, m) float32 |cos| between ray and surface normal


def cast_sector(spec: LidarSensor, ctx: CaptureContext, frame: int, sector: int) -> SectorCast:
    setup = _setup(spec, ctx)
    geo = _geometry(ctx)
    world = ctx.world
    pose = sensor_pose_w(spec, world.attachment_pose_w)
    dirs_w = setup.sector_dirs_s[sector] @ pose[:3, :3].T
    hits = geo.scene.cast(pose[:3, 3], dirs_w, world.part_poses_w(), setup.model.max_range)
    cos = np.abs(np.einsum("ij,ij->i", dirs_w, hits.normal_w)).astype(np.float32)
    shape = (setup.model.channels, setup.sector_columns[sector].shape[0])
    return SectorCast(
        frame,
        sector,
        world.step_index,
        pose,
        hits.t.reshape(shape),
        hits.part.reshape(shape),
        cos.reshape(shape),
    )


def _assemble(
    setup: LidarSetup, parts: Sequence[SectorCast]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    c, n, s = setup.model.channels, setup.model.columns, setup.timing.sectors
    if sorted(p.sector for p in parts) != list(range(s)):
        raise RuntimeError(f"a sweep needs sectors 0..{s - 1}, got {[p.sector for p in parts]}")
    t = np.full((c, n), np.inf, np.float32)
    part = np.full((c, n), -1, np.int32)
    cos = np.zeros((c, n), np.float32)
    poses = np.zeros((s, 4, 4))
    for p in parts:
        cols = setup.sector_columns[p.sector]
        t[:, cols], part[:, cols], cos[:, cols] = p.t, p.part, p.cos_incidence
        poses[p.sector] = p.pose_w
    return t, part, cos, poses


def finish_sweep(spec: LidarSensor, ctx: CaptureContext, parts: Sequence[Any]) -> Captured:
    """The frame of a finished sweep: (pose_w at sweep end, per-frame, constant, ragged arrays)."""
    setup, geo = _setup(spec, ctx), _geometry(ctx)
    model, timing = setup.model, setup.timing
    t, part, cos, sector_poses = _assemble(setup, parts)
    end_pose = sensor_pose_w(spec, ctx.world.attachment_pose_w)

    ret = (part >= 0) & (t >= model.min_range) & (t <= model.max_range)
    inst = np.where(ret, geo.part_instance[np.maximum(part, 0)], 0).astype(np.uint16)
    inten = np.zeros(t.shape, np.float32)
    inten[ret] = intensity(
        geo.part_reflectivity[part[ret]],
        cos[ret],
        t[ret],
        model.attenuation,
        model.reference_range,
    )
    det = ret & (inten >= model.threshold)
    inst[~det] = 0
    inten[~det] = 0.0
    range_img = np.where(det, t, 0.0).astype(np.float32)

    col, ring = np.nonzero(det.T)  # firing order: column by column, top ring first
    r = t[ring, col]
    pts = setup.dirs_s[ring, col] * r[:, None].astype(np.float64)
    sector = timing.column_sector[col]
    point_inst = inst[ring, col]
    frame = parts[0].frame if parts else 0
    rngs = {k: ctx.params.rng("lidar", spec.name, frame, k) for k in ("dropout", "weak", "range")}
    noisy = apply_noise(model, r, inten[ring, col], rngs)
    keep = np.flatnonzero(noisy.keep)
    noisy_img = np.zeros_like(range_img)
    noisy_img[ring[keep], col[keep]] = noisy.range_m[keep]

    arrays = {
        "range_image": range_img,
        "intensity_image": inten,
        "instance_image": inst,
        "semantic_image": ctx.semantic_lut[inst],
        "range_image_noisy": noisy_img,
        "sector_poses_w": sector_poses,
        "sweep_start_time": np.float64((ctx.world.step_index - timing.end_step) * timing.timestep),
    }
    static = {
        "ring_elevation": model.elevation.copy(),
        "column_azimuth": model.azimuth.copy(),
        "column_sector": timing.column_sector.copy(),
        "sector_time_offset": timing.sector_time.astype(np.float64),
    }
    ragged = {
        "points_s": pts.astype(np.float32),
        "points_deskewed_s": deskew(pts, sector, sector_poses, end_pose).astype(np.float32),
        "range_m": r.astype(np.float32),
        "intensity": inten[ring, col],
        "instance": point_inst,
        "semantic": ctx.semantic_lut[point_inst],
        "ring": ring.astype(np.uint16),
        "column": col.astype(np.uint16),
        "azimuth": model.azimuth[col].astype(np.float32),
        "time_offset": timing.sector_time[sector].astype(np.float32),
        "cos_incidence": cos[ring, col],
        "noisy_index": keep.astype(np.int32),
        "noisy_points_s": (setup.dirs_s[ring[keep], col[keep]] * noisy.range_m[keep, None]).astype(
            np.float32
        ),
        "noisy_range_m": noisy.range_m[keep],
    }
    return end_pose, arrays, static, ragged
