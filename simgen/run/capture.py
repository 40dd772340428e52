"""Sensor capture, one function per sensor kind (``functools.singledispatch`` on the spec)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import singledispatch
from typing import Any

import numpy as np

from simgen.render.renderer import Renderer
from simgen.run.records import SensorFrame
from simgen.scene.sensors import CameraSensor, SensorBase
from simgen.scene.types import value
from simgen.sensors.camera import intrinsics_matrix, optical_pose_w, sensor_pose_w
from simgen.sim.world import PhysicsWorld


@dataclass
class CaptureContext:
    world: PhysicsWorld
    renderer_factory: Any  # () -> Renderer, created on first use
    semantic_lut: np.ndarray  # instance id -> class id
    poses_synced: bool = False
    _renderer: Renderer | None = None
    # world poses at the current tick, set by sync_renderer (labels use the same poses)
    part_poses_w: np.ndarray | None = None  # (P, 4, 4) visual parts
    object_poses_w: np.ndarray | None = None  # (N, 4, 4) object frames
    # camera ground truth (simgen.run.labeling): per-episode geometry, one labeler per camera
    geometry: Any = None
    labelers: dict[str, Any] = field(default_factory=dict)
    hulls: dict[str, np.ndarray] = field(default_factory=dict)  # kept across episodes

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
            r.update(self.part_poses_w, _light_poses(w, r))
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
        normals="normals" in spec.labels,
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
    ragged: dict[str, np.ndarray] = {}
    if spec.labels:
        from simgen.run.labeling import labeler_for

        labels, ragged = labeler_for(ctx, spec).label(ctx, imgs, k, pose_w_c)
        arrays.update(labels)
    return pose_w_c, arrays, {"K": k}, ragged
