"""Sensor capture, one function per sensor kind (``functools.singledispatch`` on the spec).

Each kind has three functions:

* :func:`capture_plan` — when it captures: the step of each frame and, for sensors whose frame
  spans time (a spinning LiDAR's sweep), the earlier steps at which *parts* of the frame are
  taken;
* :func:`capture_part` — take part ``j`` of frame ``k`` at the current physics state;
* :func:`capture` — finish frame ``k`` at its step from its parts (a camera has none).

The episode loop (:mod:`simgen.run.episode`) calls each at its step, in time order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import singledispatch
from typing import Any

import numpy as np

from simgen.render.renderer import Renderer
from simgen.run.records import SensorFrame
from simgen.scene.sensors import CameraSensor, LidarSensor, SensorBase
from simgen.scene.types import value
from simgen.sensors.camera import (
    CaptureSchedule,
    intrinsics_matrix,
    optical_pose_w,
    sensor_pose_w,
)
from simgen.sim.world import PhysicsWorld

Captured = tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]


@dataclass
class CaptureContext:
    world: PhysicsWorld
    renderer_factory: Any  # () -> Renderer, created on first use
    semantic_lut: np.ndarray  # instance id -> class id
    # () -> (version, light specs, background): light/background changes from scenarios and
    # per-frame values; applied to the renderer when the version changes
    render_state: Any = None
    # the episode's ScenarioRuntime: sensor faults for captures, e.g.
    # ``ctx.scenario.lidar_faults(spec.name, ctx.world.step_index)`` (None outside episodes)
    scenario: Any = None
    poses_synced: bool = False
    _renderer: Renderer | None = None
    params: Any = None  # the episode's EpisodeParams (random streams: params.rng(...))
    raycaster_factory: Any = None  # () -> simgen.sensors.raycast.RayCaster
    cache: dict[Any, Any] = field(default_factory=dict)  # per-episode state of sensor kinds
    # world poses at the current tick, set by sync_renderer (labels use the same poses)
    part_poses_w: np.ndarray | None = None  # (P, 4, 4) visual parts (NaN rows: not in the world)
    object_poses_w: np.ndarray | None = None  # (N, 4, 4) object frames
    # camera ground truth (simgen.run.labeling): per-episode geometry, one labeler per camera
    geometry: Any = None
    labelers: dict[str, Any] = field(default_factory=dict)
    hulls: dict[str, np.ndarray] = field(default_factory=dict)  # kept across episodes
    _render_version: int = 0
    # the weather every sensor reads at capture time (simgen.effects.state.WeatherState); the
    # episode loop sets it from the scene, scenario events may replace it between frames
    weather: Any = None

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:
            self._renderer = self.renderer_factory()
        return self._renderer

    def sync_renderer(self) -> Renderer:
        """The renderer, with every part moved to the world's current state (once per tick)."""
        r = self.renderer
        if not self.poses_synced:
            w = self.world
            self.part_poses_w = w.part_poses_w()
            self.object_poses_w = (
                np.stack([w.link_poses_w(b)[-1] for b in w.bodies])
                if w.bodies
                else np.zeros((0, 4, 4))
            )
            active = w.part_active()
            r.update(
                self.part_poses_w,
                _light_poses(w, r),
                visible=None if active.all() else active,
            )
            if self.render_state is not None:
                version, lights, background = self.render_state()
                if version != self._render_version:
                    r.set_lights(lights, background)
                    self._render_version = version
            self.poses_synced = True
        return r

    def release(self, frame: SensorFrame) -> Iterator[SensorFrame]:
        """The frames complete once ``frame`` is captured (a camera with optical flow holds
        each frame until its next one; see :mod:`simgen.run.labeling`)."""
        labeler = self.labelers.get(frame.sensor)
        yield from [frame] if labeler is None else labeler.release(frame)

    def release_all(self) -> Iterator[SensorFrame]:
        """Frames still held at the end of the episode."""
        for labeler in self.labelers.values():
            yield from labeler.release_all()


def _light_poses(world: PhysicsWorld, r: Renderer) -> dict[int, np.ndarray]:
    from simgen.render.renderer import _light_pose
    from simgen.scene.types import vec

    out = {}
    for i, spec in enumerate(r.light_specs):
        att = getattr(spec, "attach_to", None)
        if att is None:
            continue
        parent = world.attachment_pose_w(att.object, att.link)
        direction = getattr(spec, "direction", None)
        local = _light_pose(
            vec(direction) if direction is not None else np.array([0.0, 0.0, -1.0]),
            vec(spec.position),
        )
        out[i] = parent @ local
    return out


@dataclass(frozen=True)
class CapturePlan:
    """When a sensor captures, in physics steps (half-open episode ``[0, num_steps)``)."""

    frame_steps: np.ndarray  # (F,) int64: frame k is finished (and yielded) at this step
    part_steps: np.ndarray  # (F, S) int64: part j of frame k is taken at this step (S may be 0)


@singledispatch
def capture_plan(spec: SensorBase, timestep: float, num_steps: int) -> CapturePlan:
    """Frames at t_k = k / rate_hz snapped to steps, no parts (a camera)."""
    steps = CaptureSchedule.build(value(spec.rate_hz), timestep, num_steps).steps
    return CapturePlan(steps, np.zeros((steps.shape[0], 0), np.int64))


@singledispatch
def capture_part(spec: SensorBase, ctx: CaptureContext, frame: int, part: int) -> Any:
    """Take part ``part`` of frame ``frame`` at the world's current state."""
    raise NotImplementedError(f"sensor kind {type(spec).__name__} has no parts")


@singledispatch
def capture(spec: SensorBase, ctx: CaptureContext, parts: Sequence[Any] = ()) -> Captured:
    """Capture one frame: (pose_w, arrays, static arrays, ragged arrays)."""
    raise NotImplementedError(f"no capture function for sensor kind {type(spec).__name__}")


@capture.register
def _(spec: CameraSensor, ctx: CaptureContext, parts: Sequence[Any] = ()) -> Captured:
    from simgen.run.camera_effects import (
        apply_camera_effects,
        camera_optics,
        effects_apply,
        render_camera,
    )

    k = intrinsics_matrix(spec)
    pose_w_c = optical_pose_w(sensor_pose_w(spec, ctx.world.attachment_pose_w))
    r = ctx.sync_renderer()
    optics = camera_optics(spec, ctx, k)  # the lens, if any (simgen.sensors.lens)
    imgs = render_camera(r, spec, optics, pose_w_c)
    arrays: dict[str, np.ndarray] = {}
    static = {"K": k}
    if optics.lens is not None:
        static["dist_coeffs"] = optics.lens.dist.copy()
    if imgs.rgb is not None:
        arrays["rgb"] = imgs.rgb
        if effects_apply(spec, ctx):  # weather and sensor effects; the render is rgb_clean
            arrays["rgb"], particles = apply_camera_effects(spec, ctx, imgs, optics, pose_w_c)
            arrays["rgb_clean"] = imgs.rgb
            if particles is not None:
                arrays["particle_mask"] = particles
    if "depth" in spec.outputs:
        arrays["depth_m"] = imgs.depth_m
    if "instance" in spec.outputs:
        arrays["instance"] = imgs.instance
    if "semantic" in spec.outputs:
        arrays["semantic"] = ctx.semantic_lut[imgs.instance]
    extr = np.linalg.inv(pose_w_c)
    arrays["extrinsics_w2c"] = extr
    ragged: dict[str, np.ndarray] = {}
    if spec.labels:
        from simgen.run.labeling import labeler_for

        labels, ragged = labeler_for(ctx, spec, optics.lens).label(ctx, imgs, k, pose_w_c)
        arrays.update(labels)
    if ctx.params is not None and ctx.params.scene.weather is not None:
        from simgen.effects.state import weather_arrays

        arrays.update(weather_arrays(ctx.weather))
    return pose_w_c, arrays, static, ragged


# -- LiDAR (simgen.run.lidar_capture) -------------------------------------------------------------


@capture_plan.register
def _(spec: LidarSensor, timestep: float, num_steps: int) -> CapturePlan:
    from simgen.run.lidar_capture import lidar_plan

    return lidar_plan(spec, timestep, num_steps)


@capture_part.register
def _(spec: LidarSensor, ctx: CaptureContext, frame: int, part: int) -> Any:
    from simgen.run.lidar_capture import record_sector

    return record_sector(spec, ctx, frame, part)


@capture.register
def _(spec: LidarSensor, ctx: CaptureContext, parts: Sequence[Any] = ()) -> Captured:
    from simgen.run.lidar_capture import finish_sweep

    return finish_sweep(spec, ctx, parts)
