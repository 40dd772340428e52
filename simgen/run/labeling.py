"""Camera ground truth during an episode: per-frame label arrays and the one-frame flow delay.

:class:`CameraLabeler` (one per camera per episode) turns a rendered frame into the label
arrays the camera's ``labels`` ask for, calling the pure functions of :mod:`simgen.labels`.
Optical flow needs the *next* frame, so a camera with ``flow`` holds each frame back until its
next capture (or the end of the episode): :meth:`CameraLabeler.release` returns the frames that
are complete. Frames of one camera stay in order; they may come after later state records.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from simgen.geometry import invert_pose
from simgen.labels.amodal import amodal_labels, amodal_window, pack_masks
from simgen.labels.boxes import boxes_3d, mask_boxes, object_boxes
from simgen.labels.flow import Flow, FlowView, empty_flow, rigid_flow
from simgen.labels.keypoints import keypoint_visibility, project_keypoints
from simgen.labels.panoptic import panoptic
from simgen.scene.sensors import CameraSensor
from simgen.scene.types import value, vec

if TYPE_CHECKING:
    from simgen.render.renderer import CameraImages
    from simgen.run.capture import CaptureContext
    from simgen.run.records import SensorFrame
    from simgen.sim.world import PhysicsWorld

#: Hulls of parts with more vertices than this are computed (fewer points to transform).
HULL_MIN_VERTICES = 64
MAX_CACHED_HULLS = 4096


@dataclass(frozen=True)
class EpisodeGeometry:
    """What the labels need to know about an episode's objects (fixed for the episode)."""

    num_objects: int
    part_object: np.ndarray  # (P,) object index (instance id - 1) of each visual part
    points_p: np.ndarray  # (V, 3) convex-hull vertices of the parts, in their part frames
    point_part: np.ndarray  # (V,) part index of each vertex
    class_of_instance: np.ndarray  # (N + 1,) uint16, index 0 = background
    class_is_stuff: np.ndarray  # (C,) bool
    keypoint_object: np.ndarray  # (K,) object index
    keypoint_position_o: np.ndarray  # (K, 3) object frame, m

    @property
    def object_is_stuff(self) -> np.ndarray:
        return self.class_is_stuff[self.class_of_instance[1:]]

    @staticmethod
    def build(world: PhysicsWorld, hulls: dict[str, np.ndarray] | None = None) -> EpisodeGeometry:
        """``hulls``: a cache of convex-hull vertices by part geometry key, kept across episodes."""
        scene = world.scene
        n = len(world.bodies)
        parts = world.visual_parts
        hulls = {} if hulls is None else hulls
        points, owner = [], []
        for i, part in enumerate(parts):
            pts = hulls.get(part.key)
            if pts is None:
                pts = _hull_points(np.concatenate([m.vertices for m in part.meshes]))
                if len(hulls) < MAX_CACHED_HULLS:
                    hulls[part.key] = pts
            points.append(pts)
            owner.append(np.full(len(pts), i, np.intp))
        lut = np.zeros(n + 1, np.uint16)
        kp_obj, kp_pos = [], []
        for b in world.bodies:
            lut[b.instance_id] = b.class_id
            for pos in b.spec.keypoints.values():
                kp_obj.append(b.instance_id - 1)
                kp_pos.append(vec(pos))
        return EpisodeGeometry(
            num_objects=n,
            part_object=np.array([p.instance_id - 1 for p in parts], np.intp),
            points_p=np.concatenate(points) if points else np.zeros((0, 3)),
            point_part=np.concatenate(owner) if owner else np.zeros(0, np.intp),
            class_of_instance=lut,
            class_is_stuff=np.array(scene.class_is_stuff(), bool),
            keypoint_object=np.array(kp_obj, np.intp),
            keypoint_position_o=np.array(kp_pos, np.float64).reshape(-1, 3),
        )


def _hull_points(vertices: np.ndarray) -> np.ndarray:
    v = np.asarray(vertices, np.float64)
    if len(v) <= HULL_MIN_VERTICES:
        return v
    from scipy.spatial import ConvexHull, QhullError

    try:
        return v[ConvexHull(v).vertices]
    except (QhullError, ValueError):  # flat or degenerate geometry: keep every vertex
        return v


@dataclass
class CameraLabeler:
    """Computes one camera's labels frame by frame (an engine: it holds the flow buffer)."""

    spec: CameraSensor
    geometry: EpisodeGeometry
    timings: dict[str, float] = field(default_factory=dict)
    _view: FlowView | None = None  # the frame just labeled
    _held: tuple[SensorFrame, FlowView] | None = None  # waiting for its successor

    @property
    def wants(self) -> set[str]:
        return set(self.spec.labels)

    def _tick(self, family: str, t0: float) -> float:
        t1 = time.perf_counter()
        self.timings[family] = self.timings.get(family, 0.0) + t1 - t0
        return t1

    def label(
        self, ctx: CaptureContext, imgs: CameraImages, k: np.ndarray, pose_w_c: np.ndarray
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Per-frame label arrays and ragged arrays of one rendered frame."""
        want, geo, spec = self.wants, self.geometry, self.spec
        arrays: dict[str, np.ndarray] = {}
        ragged: dict[str, np.ndarray] = {}
        n = geo.num_objects
        t = time.perf_counter()
        t_c_w = invert_pose(pose_w_c)
        assert ctx.object_poses_w is not None and ctx.part_poses_w is not None
        near = value(spec.near)
        if n and want & {"boxes", "amodal"}:
            center_o, size = object_boxes(
                geo.points_p, geo.point_part, geo.part_object, ctx.part_poses_w, ctx.object_poses_w
            )
            b3 = boxes_3d(center_o, size, ctx.object_poses_w, t_c_w, k)
            tight, counts = mask_boxes(imgs.instance, n)
            if "boxes" in want:
                arrays["box2d_tight"], arrays["visible_pixels"] = tight, counts
                arrays.update({key: v for key, v in b3.items() if key != "box3d_corners_c"})
            t = self._tick("boxes", t)
            if "amodal" in want:
                a, r = self._amodal(ctx, imgs, k, pose_w_c, near, b3["box3d_corners_c"], tight)
                arrays.update(a)
                ragged.update(r)
                t = time.perf_counter()
        if "keypoints" in want and len(geo.keypoint_object):
            uv, z = project_keypoints(
                k, t_c_w, ctx.object_poses_w, geo.keypoint_object, geo.keypoint_position_o
            )
            arrays["keypoints_uv"] = uv.astype(np.float32)
            arrays["keypoints_visibility"] = keypoint_visibility(uv, z, imgs.depth_m, near)
            t = self._tick("keypoints", t)
        if "panoptic" in want:
            arrays["panoptic"] = panoptic(imgs.instance, geo.class_of_instance, geo.class_is_stuff)
            t = self._tick("panoptic", t)
        if "normals" in want:
            assert imgs.normals_c is not None
            arrays["normals_c"] = imgs.normals_c
        if "flow" in want:
            assert imgs.part is not None
            self._view = FlowView(imgs.part, imgs.depth_m, k, pose_w_c, ctx.part_poses_w, near)
        return arrays, ragged

    def _amodal(
        self,
        ctx: CaptureContext,
        imgs: CameraImages,
        k: np.ndarray,
        pose_w_c: np.ndarray,
        near: float,
        corners_c: np.ndarray,
        tight: np.ndarray,
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        t = time.perf_counter()
        geo, spec = self.geometry, self.spec
        n = geo.num_objects
        h, w = imgs.instance.shape
        windows: dict[int, tuple[int, int, int, int]] = {}
        for i in np.nonzero(~geo.object_is_stuff)[0]:
            found = amodal_window(corners_c[i], k, near, w, h)
            if found is not None:
                windows[int(i) + 1] = found[0]
            elif tight[i, 2] > tight[i, 0]:  # visible but its box missed: render its pixels
                windows[int(i) + 1] = tuple(int(x) for x in tight[i])  # type: ignore[assignment]
        masks = ctx.renderer.render_alone(k, near, value(spec.far), pose_w_c, windows)
        t = self._tick("amodal_render", t)
        box = np.zeros((n, 4), np.int32)
        pixels = np.zeros(n, np.int32)
        visibility = np.full(n, np.nan, np.float32)
        truncation = np.full(n, np.nan, np.float32)
        crops = []
        for inst, win in windows.items():
            lab = amodal_labels(win, masks[inst], imgs.instance, inst, tight[inst - 1])
            row = inst - 1
            box[row], pixels[row] = lab.box, lab.pixels
            visibility[row], truncation[row] = lab.visibility, lab.truncation
            if lab.pixels:
                crops.append((inst, lab.crop))
        crops.sort(key=lambda c: c[0])
        self._tick("amodal", t)
        return (
            {
                "box2d_amodal": box,
                "amodal_pixels": pixels,
                "visibility": visibility,
                "truncation": truncation,
            },
            {"amodal_masks": pack_masks([c for _, c in crops])},
        )

    # -- flow: one frame of delay ---------------------------------------------------------------

    def release(self, frame: SensorFrame) -> list[SensorFrame]:
        """Frames of this camera that are complete once ``frame`` was captured (in order)."""
        if "flow" not in self.wants:
            return [frame]
        view = self._view
        assert view is not None, "label() must run before release()"
        self._view = None
        t = time.perf_counter()
        out = []
        h, w = view.depth_m.shape
        if self._held is None:
            _attach(frame, "bwd", empty_flow(h, w))
        else:
            prev, prev_view = self._held
            _attach(prev, "fwd", rigid_flow(prev_view, view))
            _attach(frame, "bwd", rigid_flow(view, prev_view))
            out.append(prev)
        self._held = (frame, view)
        self._tick("flow", t)
        return out

    def release_all(self) -> list[SensorFrame]:
        """The held frame at the end of the episode (no next frame: forward flow is empty)."""
        if self._held is None:
            return []
        frame, view = self._held
        self._held = None
        _attach(frame, "fwd", empty_flow(*view.depth_m.shape))
        return [frame]


def _attach(frame: SensorFrame, direction: str, flow: Flow) -> None:
    frame.arrays[f"flow_{direction}_px"] = flow.flow_px
    frame.arrays[f"flow_{direction}_status"] = flow.status
    if direction == "fwd":
        frame.arrays["scene_flow_fwd_w"] = flow.scene_flow_w


def labeler_for(ctx: CaptureContext, spec: CameraSensor) -> CameraLabeler:
    """The camera's labeler in this episode (made on first use)."""
    lab: Any = ctx.labelers.get(spec.name)
    if lab is None:
        if ctx.geometry is None:
            ctx.geometry = EpisodeGeometry.build(ctx.world, ctx.hulls)
        lab = CameraLabeler(spec, ctx.geometry)
        ctx.labelers[spec.name] = lab
    return lab  # type: ignore[no-any-return]
