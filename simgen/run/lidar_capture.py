"""LiDAR capture: record each sector's poses at its physics step; cast and label at the sweep end.

A sweep of frame k starts at ``t_k = k / rate_hz`` (snapped to a step) and ends one rotation
later; the frame is yielded at the end step. When the episode loop reaches a sector's step,
:func:`record_sector` reads the poses that sector needs (the sensor's and those of the parts that
move: a few pybullet queries, no casting). :func:`finish_sweep` then casts the whole sweep,
every sector against the world as it was at its own step
(:func:`simgen.sensors.sweep_cast.cast_sweep`), so moving objects and a moving sensor smear as on
a real sensor, and labels it chunk by chunk on the caster's threads (:class:`SweepLabels`). The
output arrays are documented in docs/dataset-format.md and docs/lidar.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simgen.geometry import invert_pose, pose_matrices, xyzw_to_wxyz
from simgen.run.capture import CaptureContext, Captured, CapturePlan
from simgen.run.lidar_labels import SweepLabels, WeatherModel, WeatherSweepLabels
from simgen.scene.sensors import LidarSensor
from simgen.scene.types import value
from simgen.sensors.camera import CaptureSchedule, mount_in_parent, sensor_pose_w
from simgen.sensors.lidar import (
    LidarModel,
    SweepTiming,
    class_reflectivity,
    draw_noise,
    lidar_model,
    ray_directions,
    sector_to_end,
    sweep_timing,
)
from simgen.sensors.raycast import CastScene, RayCaster
from simgen.sensors.sweep_cast import SweepPattern, cast_sweep, sweep_pattern
from simgen.sim.world import PhysicsWorld


@dataclass(frozen=True)
class LidarSetup:
    """What a LiDAR needs for a whole episode (pure functions of its spec and the timestep)."""

    model: LidarModel
    timing: SweepTiming
    pattern: SweepPattern  # rays in firing order, sectors, chunks
    mount: np.ndarray  # (4, 4) sensor body frame in its parent (world or attached object)
    column_azimuth: np.ndarray  # (N,) float32
    column_time: np.ndarray  # (N,) float32 time of each column's cast after the sweep start


def lidar_setup(spec: LidarSensor, timestep: float) -> LidarSetup:
    model = lidar_model(spec)
    timing = sweep_timing(model, timestep)
    pattern = sweep_pattern(
        ray_directions(model),
        model.elevation,
        model.azimuth,
        model.horizontal_fov,
        timing.column_sector,
    )
    return LidarSetup(
        model,
        timing,
        pattern,
        mount_in_parent(spec),
        model.azimuth.astype(np.float32),
        timing.sector_time[timing.column_sector].astype(np.float32),
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
    """The episode's cast scene and per-part labels. The label tables have P + 1 entries: the
    last one (index -1) is a miss."""

    scene: CastScene
    part_instance: np.ndarray  # (P + 1,) uint16, 0 for a miss
    part_reflectivity: np.ndarray  # (P + 1,) float32, 0 for a miss


def episode_geometry(world: PhysicsWorld, caster: RayCaster) -> EpisodeGeometry:
    parts = world.visual_parts
    bodies = {b.instance_id: b for b in world.bodies}
    controlled = _scenario_objects(world)
    movable = np.array(
        [
            not (
                bodies[p.instance_id].spec.static
                and p.link_index == -1
                and world.active[p.instance_id - 1]
                and bodies[p.instance_id].name not in controlled
            )
            for p in parts
        ],
        bool,
    )
    refl = []
    for p in parts:
        spec = bodies[p.instance_id].spec
        m = spec.material
        own = m.reflectivity if m is not None else None
        refl.append(value(own) if own is not None else class_reflectivity(spec.class_name))
    return EpisodeGeometry(
        caster.scene(parts, movable, world.part_poses_w()),
        np.array([p.instance_id for p in parts] + [0], np.uint16),
        np.array([*refl, 0.0], np.float32),
    )


def _scenario_objects(world: PhysicsWorld) -> set[str]:
    """Names of objects the scenarios may spawn, remove or move: they are cast as moving parts,
    never baked into the static scene. Conservative: every object name that appears in a
    scenario definition."""
    import json

    scenarios = getattr(world.scene, "scenarios", None) or []
    text = json.dumps([s.model_dump(mode="json") for s in scenarios])
    return {b.name for b in world.bodies if f'"{b.name}"' in text}


@dataclass(frozen=True)
class PoseReader:
    """Reads, at a sector's step, the raw pybullet poses of the links a sweep needs (the sensor's
    parent and every moving part's link), and turns a sweep's reads into poses at once."""

    # (instance id, base?, link indices); the current body id and whether the object is in the
    # world are looked up at each read (scenarios spawn and remove objects)
    queries: tuple[tuple[int, bool, tuple[int, ...]], ...]
    fix: np.ndarray  # (L, 4, 4) per entry: object frame in the base COM frame, or identity
    sensor: int  # entry of the sensor's parent, -1 = the world
    mount: np.ndarray  # (4, 4) sensor body frame in its parent
    part_entry: np.ndarray  # (M,) entry of each moving part's link
    part_local: np.ndarray  # (M, 4, 4) part pose in its link frame

    def read(self, world: PhysicsWorld) -> list[float]:
        """Position and xyzw quaternion of every entry, flat (7 numbers each); NaN for objects
        not in the world now (their parts then get NaN poses, which the caster skips)."""
        client = world.client
        out: list[float] = []
        for inst, base, links in self.queries:
            if not world.active[inst - 1]:
                out += [float("nan")] * (7 * (int(base) + len(links)))
                continue
            body = world.bodies[inst - 1].body_id
            if base:
                p, q = client.getBasePositionAndOrientation(body)
                out += p
                out += q
            if links:
                for s in client.getLinkStates(body, links, computeForwardKinematics=1):
                    out += s[4]
                    out += s[5]
        return out

    def poses(self, reads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(S, 4, 4) sensor poses and (S, M, 4, 4) moving-part poses from (S, 7 L) reads."""
        s, n = reads.shape[0], self.fix.shape[0]
        if n:
            v = reads.reshape(s * n, 7)
            links = pose_matrices(v[:, :3], xyzw_to_wxyz(v[:, 3:])).reshape(s, n, 4, 4) @ self.fix
        else:
            links = np.zeros((s, 0, 4, 4))
        sensor = (
            links[:, self.sensor] @ self.mount
            if self.sensor >= 0
            else np.repeat(self.mount[None], s, axis=0)
        )
        return sensor, links[:, self.part_entry] @ self.part_local


def pose_reader(spec: LidarSensor, world: PhysicsWorld, geo: EpisodeGeometry) -> PoseReader:
    bodies = {b.instance_id: b for b in world.bodies}
    parts = [world.visual_parts[i] for i in geo.scene.moving_parts]
    keys = [(bodies[p.instance_id], p.link_index) for p in parts]
    sensor_key = None
    if spec.attach_to is not None:
        parent = world.body(spec.attach_to.object)
        name = spec.attach_to.link
        if name is not None and name not in parent.link_index_by_name:
            sensor_pose_w(spec, world.attachment_pose_w)  # raises the helpful error
        sensor_key = (parent, -1 if name is None else parent.link_index_by_name[name])
        keys.append(sensor_key)
    by_body: dict[int, tuple[Any, set[int]]] = {}
    for body, link in keys:
        by_body.setdefault(body.body_id, (body, set()))[1].add(link)
    order, fix, queries = [], [], []
    for body_id, (body, links) in by_body.items():
        ls = sorted(links)  # the base (-1) first, as read
        order += [(body_id, i) for i in ls]
        fix += [invert_pose(body.com_in_frame) if i < 0 else np.eye(4) for i in ls]
        queries.append((body.instance_id, ls[0] < 0, tuple(i for i in ls if i >= 0)))
    entry = {k: j for j, k in enumerate(order)}
    return PoseReader(
        tuple(queries),
        np.array(fix).reshape(-1, 4, 4),
        -1 if sensor_key is None else entry[(sensor_key[0].body_id, sensor_key[1])],
        mount_in_parent(spec),
        np.array([entry[(p_body.body_id, link)] for p_body, link in keys[: len(parts)]], int),
        np.array([p.local_pose for p in parts]).reshape(-1, 4, 4),
    )


@dataclass(frozen=True)
class LidarEpisode:
    """A LiDAR's state for one episode."""

    setup: LidarSetup
    reader: PoseReader
    geo: EpisodeGeometry


def lidar_episode(spec: LidarSensor, ctx: CaptureContext) -> LidarEpisode:
    """Per-episode state of a LiDAR (cached in the context)."""
    key = ("lidar", spec.name)
    if key not in ctx.cache:
        if "lidar_geometry" not in ctx.cache:
            caster = ctx.raycaster_factory() if ctx.raycaster_factory is not None else RayCaster()
            ctx.cache["lidar_geometry"] = episode_geometry(ctx.world, caster)
        geo = ctx.cache["lidar_geometry"]
        setup = lidar_setup(spec, ctx.world.timestep)
        ctx.cache[key] = LidarEpisode(setup, pose_reader(spec, ctx.world, geo), geo)
    lidar: LidarEpisode = ctx.cache[key]
    return lidar


@dataclass(frozen=True)
class SectorRecord:
    """What one sector of a sweep needs from its physics step: raw poses (:class:`PoseReader`)."""

    frame: int
    sector: int
    step: int
    reads: list[float]


def record_sector(spec: LidarSensor, ctx: CaptureContext, frame: int, sector: int) -> SectorRecord:
    lidar = lidar_episode(spec, ctx)
    return SectorRecord(frame, sector, ctx.world.step_index, lidar.reader.read(ctx.world))


def finish_sweep(spec: LidarSensor, ctx: CaptureContext, parts: Sequence[Any]) -> Captured:
    """The frame of a finished sweep: (pose_w at sweep end, per-frame, constant, ragged arrays)."""
    lidar = lidar_episode(spec, ctx)
    setup, model, timing = lidar.setup, lidar.setup.model, lidar.setup.timing
    if ctx.params is None:
        raise RuntimeError("LiDAR noise needs the episode's parameters (CaptureContext.params)")
    ordered = sorted(parts, key=lambda p: p.sector)
    if [p.sector for p in ordered] != list(range(timing.sectors)):
        raise RuntimeError(
            f"a sweep needs sectors 0..{timing.sectors - 1}, got {[p.sector for p in parts]}"
        )
    frame = parts[0].frame if parts else 0
    sensor_w, parts_w = lidar.reader.poses(np.array([p.reads for p in ordered], np.float64))
    end_pose = lidar.reader.poses(np.array([lidar.reader.read(ctx.world)]))[0][0]
    rel = sector_to_end(sensor_w, end_pose)
    weather = ctx.weather
    labels: SweepLabels
    if weather is not None and lidar_weather_active(weather):
        labels = WeatherSweepLabels(
            setup, lidar.geo, ctx.semantic_lut, rel, weather_model(spec, ctx, lidar.geo, frame)
        )
    else:
        labels = SweepLabels(setup, lidar.geo, ctx.semantic_lut, rel)
    rngs = {k: ctx.params.rng("lidar", spec.name, frame, k) for k in ("dropout", "weak", "range")}

    def draw() -> None:  # per ray, while the threads trace
        if model.noisy:
            labels.noise = draw_noise(model, setup.pattern.dirs_s.shape[0], rngs)

    scene = lidar.geo.scene
    chunks = cast_sweep(scene, setup.pattern, sensor_w, parts_w, model.max_range, labels.rays, draw)
    offsets = np.cumsum([[0, 0], *((p, q) for _, p, q in chunks)], axis=0)
    labels.allocate(int(offsets[-1, 0]), int(offsets[-1, 1]))
    scene.caster.map(
        labels.points,
        [ch for ch, _, _ in chunks],
        offsets[:-1, 0].tolist(),
        offsets[:-1, 1].tolist(),
    )
    arrays, ragged = labels.arrays()
    arrays["sector_poses_w"] = sensor_w
    arrays["sweep_start_time"] = np.float64(
        (ctx.world.step_index - timing.end_step) * timing.timestep
    )
    static = {
        "ring_elevation": model.elevation.copy(),
        "column_azimuth": model.azimuth.copy(),
        "column_sector": timing.column_sector.copy(),
        "sector_time_offset": timing.sector_time.astype(np.float64),
    }
    if ctx.params.scene.weather is not None:
        from simgen.effects.state import weather_arrays

        arrays.update(weather_arrays(weather))
    return end_pose, arrays, static, ragged


# -- weather (simgen.effects.lidar_weather; docs/weather.md) ------------------------------------


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


def weather_model(
    spec: LidarSensor, ctx: CaptureContext, geo: EpisodeGeometry, frame: int
) -> WeatherModel:
    """The weather of this sweep, as the label pass needs it."""
    from simgen.effects.lidar_weather import BeamOptics
    from simgen.effects.wet import wet_albedo
    from simgen.scene.schema import WEATHER_CLASS

    assert ctx.params is not None
    ws = ctx.weather
    refl = geo.part_reflectivity[:-1].astype(np.float64)
    if ws.wet_ground > 0:
        refl = np.where(_ground_parts(ctx, ws), wet_albedo(refl, ws.wet_ground), refl)
    return WeatherModel(
        state=ws,
        reflectivity=refl,
        optics=BeamOptics(value(spec.beam_divergence_mrad) * 1e-3, value(spec.beam_diameter_m)),
        weather_class=ctx.params.scene.class_table().index(WEATHER_CLASS),
        rng=lambda chunk, kind: ctx.params.rng("weather", spec.name, frame, kind, chunk),
    )
