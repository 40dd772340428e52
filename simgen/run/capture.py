"""Sensor capture, one function per sensor kind (``functools.singledispatch`` on the spec)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import singledispatch
from typing import Any

import numpy as np

from simgen.render.renderer import Renderer
from simgen.scene.sensors import CameraSensor, SensorBase
from simgen.scene.types import value
from simgen.sensors.camera import intrinsics_matrix, optical_pose_w, sensor_pose_w
from simgen.sim.world import PhysicsWorld


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
    _render_version: int = 0

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:
            self._renderer = self.renderer_factory()
        return self._renderer

    def sync_renderer(self) -> Renderer:
        """The renderer, with every part moved to the world's current state (once per tick)."""
        r = self.renderer
        if not self.poses_synced:
            active = self.world.part_active()
            r.update(
                self.world.part_poses_w(),
                _light_poses(self.world, r),
                visible=None if active.all() else active,
            )
            if self.render_state is not None:
                version, lights, background = self.render_state()
                if version != self._render_version:
                    r.set_lights(lights, background)
                    self._render_version = version
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


@singledispatch
def capture(
    spec: SensorBase, ctx: CaptureContext
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Capture one frame: (pose_w, arrays, static arrays, ragged arrays)."""
    raise NotImplementedError(f"no capture function for sensor kind {type(spec).__name__}")


@capture.register
def _(
    spec: CameraSensor, ctx: CaptureContext
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
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
