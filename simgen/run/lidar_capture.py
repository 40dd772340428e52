"""LiDAR capture: cast each sector of a sweep at its own physics step, then label, add noise, pack.

A sweep of frame k starts at ``t_k = k / rate_hz`` (snapped to a step) and ends one rotation
later; the frame is yielded at the end step. Every sector is cast by :func:`cast_sector` when the
episode loop reaches the sector's step (the world then holds that instant's poses, so moving
objects and a moving sensor smear as on a real sensor); :func:`finish_sweep` assembles the
frame. The output arrays are documented in docs/dataset-format.md and docs/lidar.md.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simgen.geometry import invert_pose
from simgen.run.capture import CaptureContext, Captured, CapturePlan
from simgen.scene.sensors import LidarSensor
from simgen.scene.types import value
from simgen.sensors.camera import CaptureSchedule, mount_in_parent, sensor_pose_w
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
    """What a LiDAR needs for a whole episode (pure functions of its spec and the timestep).

    Rays are flattened in firing order: column by column, top ring first (ray ``i`` is ring
    ``i % C`` of column ``i // C``); sectors are runs of consecutive columns."""

    model: LidarModel
    timing: SweepTiming
    dirs_s: np.ndarray  # (N * C, 3) float32 ray directions, firing order
    sector_rays: tuple[slice, ...]  # the rays of each sector
    sector_dirs_s: tuple[np.ndarray, ...]  # (rays, 3) float32 directions of each sector
    mount: np.ndarray  # (4, 4) sensor body frame in its parent (world or attached object)


def lidar_setup(spec: LidarSensor, timestep: float) -> LidarSetup:
    model = lidar_model(spec)
    timing = sweep_timing(model, timestep)
    c = model.channels
    dirs = np.ascontiguousarray(
        ray_directions(model).transpose(1, 0, 2).reshape(-1, 3), dtype=np.float32
    )
    bounds = np.searchsorted(timing.column_sector, np.arange(timing.sectors + 1)) * c
    if np.any(np.diff(timing.column_sector) < 0):  # pragma: no cover - sweep_timing guarantees
        raise AssertionError("sectors must be runs of consecutive columns")
    rays = tuple(slice(int(a), int(b)) for a, b in itertools.pairwise(bounds))
    return LidarSetup(
        model, timing, dirs, rays, tuple(dirs[r] for r in rays), mount_in_parent(spec)
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
    """The episode's cast scene, per-part labels, and how to pose the parts that move."""

    scene: CastScene
    part_instance: np.ndarray  # (P,) uint16
    part_reflectivity: np.ndarray  # (P,) float32
    # (body, link indices, local poses of its parts, object frame in the base COM frame)
    moving_bodies: tuple[tuple[Any, np.ndarray, np.ndarray, np.ndarray], ...]


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
    moving: dict[int, list[int]] = {}
    for i in np.flatnonzero(movable):  # a body's parts are consecutive in visual_parts
        moving.setdefault(parts[i].instance_id, []).append(int(i))
    groups = tuple(
        (
            bodies[inst],
            np.array([parts[i].link_index for i in idx], np.int64),
            np.stack([parts[i].local_pose for i in idx]),
            invert_pose(bodies[inst].com_in_frame),
        )
        for inst, idx in moving.items()
    )
    scene = caster.scene(parts, movable, world.part_poses_w())
    assert [i for g in moving.values() for i in g] == scene.moving_parts.tolist()
    return EpisodeGeometry(
        scene,
        np.array([p.instance_id for p in parts], np.uint16),
        np.array(refl, np.float32),
        groups,
    )


def _link_poses(
    world: PhysicsWorld, body: Any, links: np.ndarray, frame_in_com: np.ndarray
) -> np.ndarray:
    """(n, 4, 4) world poses of ``links`` of ``body`` (-1: the object frame), from one or two
    pybullet queries (this runs once per sector, so it avoids numpy on tiny arrays)."""
    c = world.client
    rows: list[tuple[Any, Any]] = []
    states: Any = iter(())
    wanted = [int(i) for i in links if i >= 0]
    if wanted:
        states = iter(c.getLinkStates(body.body_id, wanted, computeForwardKinematics=1))
    base = c.getBasePositionAndOrientation(body.body_id) if (links < 0).any() else None
    for i in links:
        if i < 0:
            assert base is not None
            rows.append(base)
        else:
            s = next(states)
            rows.append((s[4], s[5]))
    out = np.zeros((len(rows), 4, 4))
    out[:, :3, :3] = np.array([c.getMatrixFromQuaternion(q) for _, q in rows]).reshape(-1, 3, 3)
    out[:, :3, 3] = [p for p, _ in rows]
    out[:, 3, 3] = 1.0
    is_base = links < 0
    if is_base.any():
        out[is_base] = out[is_base] @ frame_in_com
    return out


def moving_poses_w(world: PhysicsWorld, geo: EpisodeGeometry) -> np.ndarray:
    """(M, 4, 4) world poses of the moving parts (``geo.scene.moving_parts`` order)."""
    out = [
        _link_poses(world, body, links, frame_in_com) @ local
        for body, links, local, frame_in_com in geo.moving_bodies
    ]
    return np.concatenate(out) if out else np.zeros((0, 4, 4))


def lidar_pose_w(spec: LidarSensor, world: PhysicsWorld, setup: LidarSetup) -> np.ndarray:
    """The sensor body pose in the world (as :func:`sensor_pose_w`, faster for every sector)."""
    if spec.attach_to is None:
        return setup.mount
    body = world.body(spec.attach_to.object)
    link = spec.attach_to.link
    if link is None:
        links = np.array([-1])
    elif link in body.link_index_by_name:
        links = np.array([body.link_index_by_name[link]])
    else:
        return sensor_pose_w(spec, world.attachment_pose_w)  # raises the helpful error
    return _link_poses(world, body, links, invert_pose(body.com_in_frame))[0] @ setup.mount


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
    """The raw hits of one sector's rays (firing order), cast at one physics step."""

    frame: int
    sector: int
    step: int
    pose_w: np.ndarray  # (4, 4) sensor body pose at the cast
    t: np.ndarray  # (rays,) float32 hit distance, inf = no hit within max_range
    part: np.ndarray  # (rays,) int32 visual part hit, -1 = none
    cos_incidence: np.ndarray  # (rays,) float32 |cos| between ray and surface normal


def cast_sector(spec: LidarSensor, ctx: CaptureContext, frame: int, sector: int) -> SectorCast:
    setup = _setup(spec, ctx)
    geo = _geometry(ctx)
    world = ctx.world
    pose = lidar_pose_w(spec, world, setup)
    dirs_w = setup.sector_dirs_s[sector] @ np.ascontiguousarray(pose[:3, :3].T, np.float32)
    hits = geo.scene.cast(pose[:3, 3], dirs_w, moving_poses_w(world, geo), setup.model.max_range)
    return SectorCast(frame, sector, world.step_index, pose, hits.t, hits.part, hits.cos_incidence)


def _assemble(
    setup: LidarSetup, parts: Sequence[SectorCast]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    s = setup.timing.sectors
    ordered = sorted(parts, key=lambda p: p.sector)
    if [p.sector for p in ordered] != list(range(s)):
        raise RuntimeError(f"a sweep needs sectors 0..{s - 1}, got {[p.sector for p in parts]}")
    t = np.concatenate([p.t for p in ordered])
    part = np.concatenate([p.part for p in ordered])
    cos = np.concatenate([p.cos_incidence for p in ordered])
    return t, part, cos, np.stack([p.pose_w for p in ordered])


def _image(flat: np.ndarray, c: int) -> np.ndarray:
    """(C, N) range-image layout of a firing-order ray array."""
    return np.ascontiguousarray(flat.reshape(-1, c).T)


def finish_sweep(spec: LidarSensor, ctx: CaptureContext, parts: Sequence[Any]) -> Captured:
    """The frame of a finished sweep: (pose_w at sweep end, per-frame, constant, ragged arrays)."""
    setup, geo = _setup(spec, ctx), _geometry(ctx)
    model, timing = setup.model, setup.timing
    c = model.channels
    t, part, cos, sector_poses = _assemble(setup, parts)
    end_pose = lidar_pose_w(spec, ctx.world, setup)

    frame = parts[0].frame if parts else 0
    if ctx.params is None:
        raise RuntimeError("LiDAR noise needs the episode's parameters (CaptureContext.params)")
    weather = ctx.weather
    if weather is not None and lidar_weather_active(weather):
        sel, r, inten, inst, sem, cos_sel = weather_returns(
            spec, ctx, geo, model, t, part, cos, frame
        )
    else:
        sel = np.flatnonzero((part >= 0) & (t >= model.min_range))  # returns, firing order
        r, hit_part, cos_sel = t[sel], part[sel], cos[sel]
        inten = intensity(
            geo.part_reflectivity[hit_part], cos_sel, r, model.attenuation, model.reference_range
        )
        ok = inten >= model.threshold
        sel, r, hit_part, cos_sel, inten = sel[ok], r[ok], hit_part[ok], cos_sel[ok], inten[ok]
        inst = geo.part_instance[hit_part]
        sem = ctx.semantic_lut[inst]
    col = sel // c
    ring = sel - col * c
    pts = np.take(setup.dirs_s, sel, axis=0) * r[:, None]
    rngs = {k: ctx.params.rng("lidar", spec.name, frame, k) for k in ("dropout", "weak", "range")}
    noisy = apply_noise(model, r, inten, rngs)
    keep = np.flatnonzero(noisy.keep)
    r_noisy = noisy.range_m[keep]

    n_rays = t.shape[0]
    range_img = np.zeros(n_rays, np.float32)
    range_img[sel] = r
    inten_img = np.zeros(n_rays, np.float32)
    inten_img[sel] = inten
    inst_img = np.zeros(n_rays, np.uint16)
    inst_img[sel] = inst
    sem_img = np.zeros(n_rays, np.uint16)
    sem_img[sel] = sem
    noisy_img = np.zeros(n_rays, np.float32)
    noisy_img[sel[keep]] = r_noisy
    arrays = {
        "range_image": _image(range_img, c),
        "intensity_image": _image(inten_img, c),
        "instance_image": _image(inst_img, c),
        "semantic_image": _image(sem_img, c),
        "range_image_noisy": _image(noisy_img, c),
        "sector_poses_w": sector_poses,
        "sweep_start_time": np.float64((ctx.world.step_index - timing.end_step) * timing.timestep),
    }
    static = {
        "ring_elevation": model.elevation.copy(),
        "column_azimuth": model.azimuth.copy(),
        "column_sector": timing.column_sector.copy(),
        "sector_time_offset": timing.sector_time.astype(np.float64),
    }
    sector = timing.column_sector[col]
    ragged = {
        "points_s": pts,
        "points_deskewed_s": deskew(pts, sector, sector_poses, end_pose),
        "range_m": r,
        "intensity": inten,
        "instance": inst,
        "semantic": sem,
        "ring": ring.astype(np.uint16),
        "column": col.astype(np.uint16),
        "azimuth": model.azimuth[col].astype(np.float32),
        "time_offset": timing.sector_time[sector].astype(np.float32),
        "cos_incidence": cos_sel,
        "noisy_index": keep.astype(np.int32),
        "noisy_points_s": np.take(pts, keep, axis=0) * (r_noisy / r[keep])[:, None],
        "noisy_range_m": r_noisy,
    }
    if ctx.params.scene.weather is not None:
        from simgen.effects.state import weather_arrays

        arrays.update(weather_arrays(weather))
    return end_pose, arrays, static, ragged


def lidar_weather_active(weather: Any) -> bool:
    return bool(weather.extinction_per_m > 0 or weather.has_particles or weather.wet_ground > 0)


def _ground_parts(ctx: CaptureContext, weather: Any) -> np.ndarray:
    """(P,) bool: visual parts of the objects that get wet."""
    from simgen.effects.wet import is_ground

    key = ("lidar_ground", weather.ground_classes)
    if key not in ctx.cache:
        objects = ctx.world.scene.objects
        ctx.cache[key] = np.array(
            [
                is_ground(
                    objects[p.instance_id - 1].kind,
                    objects[p.instance_id - 1].class_name,
                    weather.ground_classes,
                )
                for p in ctx.world.visual_parts
            ],
            bool,
        )
    out: np.ndarray = ctx.cache[key]
    return out


def weather_returns(
    spec: LidarSensor,
    ctx: CaptureContext,
    geo: EpisodeGeometry,
    model: LidarModel,
    t: np.ndarray,
    part: np.ndarray,
    cos: np.ndarray,
    frame: int,
) -> tuple[np.ndarray, ...]:
    """(ray index, range, intensity, instance, semantic, cos_incidence) of every return under
    the current weather (simgen.effects.lidar_weather; docs/weather.md). Weather returns have
    instance 0, class 'weather' and cos_incidence 1."""
    from simgen.effects.lidar_weather import (
        BACKSCATTER_PER_EXTINCTION,
        BeamOptics,
        sample_particle_returns,
        strongest_returns,
    )
    from simgen.effects.wet import wet_albedo
    from simgen.scene.schema import WEATHER_CLASS

    ws = ctx.weather
    refl = geo.part_reflectivity.astype(np.float64)
    if ws.wet_ground > 0:
        refl = np.where(_ground_parts(ctx, ws), wet_albedo(refl, ws.wet_ground), refl)
    alpha = model.attenuation + ws.extinction_per_m
    hit = part >= 0
    hard_range = np.where(hit, t, np.inf)
    hard_i = np.zeros(t.shape[0])
    hard_i[hit] = intensity(refl[part[hit]], cos[hit], t[hit], alpha, model.reference_range)
    optics = BeamOptics(value(spec.beam_divergence_mrad) * 1e-3, value(spec.beam_diameter_m))
    common = {
        "alpha": alpha,
        "r_ref": model.reference_range,
        "threshold": model.threshold,
        "r_min": model.min_range,
        "r_max": model.max_range,
    }
    particles = [
        sample_particle_returns(
            dsd,
            hard_range,
            optics,
            rng=ctx.params.rng("weather", spec.name, frame, dsd.kind),
            **common,
        )
        for dsd in (ws.rain, ws.snow)
        if not dsd.empty
    ]
    chosen = strongest_returns(
        hard_range,
        hard_i,
        fog_beta=BACKSCATTER_PER_EXTINCTION * ws.fog_extinction_per_m,
        particles=particles,
        rng=ctx.params.rng("weather", spec.name, frame, "fog"),
        **common,
    )
    sel = np.flatnonzero(chosen.range_m > 0)
    is_weather = chosen.is_weather[sel]
    inst = np.where(is_weather, 0, geo.part_instance[np.maximum(part[sel], 0)]).astype(np.uint16)
    weather_id = ctx.params.scene.class_table().index(WEATHER_CLASS)
    sem = np.where(is_weather, weather_id, ctx.semantic_lut[inst]).astype(ctx.semantic_lut.dtype)
    cos_sel = np.where(is_weather, np.float32(1.0), cos[sel]).astype(np.float32)
    r = chosen.range_m[sel].astype(np.float32)
    inten = np.minimum(chosen.intensity[sel], 1.0).astype(np.float32)
    return sel, r, inten, inst, sem, cos_sel
