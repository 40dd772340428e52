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

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import singledispatch
from typing import Any

import numpy as np

from simgen.render.renderer import Renderer
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
    poses_synced: bool = False
    _renderer: Renderer | None = None
    params: Any = None  # the episode's EpisodeParams (random streams: params.rng(...))
    raycaster_factory: Any = None  # () -> simgen.sensors.raycast.RayCaster
    cache: dict[Any, Any] = field(default_factory=dict)  # per-episode state of sensor kinds

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:
            self._renderer = self.renderer_factory()
        return self._renderer

    def sync_renderer(self) -> Renderer:
        """The renderer, with every part moved to the world's current state (once per tick)."""
        r = self.renderer
        if not self.poses_synced:
            r.update(self.world.part_poses_w(), _light_poses(self.world, r))
            self.poses_synced = True
        return r


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
    k = intrinsics_matrix(spec)
    pose_w_c = optical_pose_w(sensor_pose_w(spec, ctx.world.attachment_pose_w))
    r = ctx.sync_renderer()
    imgs = r.render(
        k,
        (int(spec.resolution[0]), int(spec.resolution[1])),
        value(spec.near),
        value(spec.far),
        pose_w_c,
        rgb="rgb" in spec.outputs,
        antialias=int(spec.antialias),
    )
    arrays: dict[str, np.ndarray] = {}
    if imgs.rgb is not None:
        arrays["rgb"] = imgs.rgb
    if "depth" in spec.outputs:
        arrays["depth_m"] = imgs.depth_m
    if "instance" in spec.outputs:
        arrays["instance"] = imgs.instance
    if "semantic" in spec.outputs:
        arrays["semantic"] = ctx.semantic_lut[imgs.instance]
    extr = np.linalg.inv(pose_w_c)
    arrays["extrinsics_w2c"] = extr
    return pose_w_c, arrays, {"K": k}, {}


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
