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
    from simgen.sensors.lens import Lens
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
    lens: Lens | None = None  # lens distortion: every label is in the distorted image
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
        dist = self.lens.dist if self.lens is not None else None
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
            b3 = boxes_3d(center_o, size, ctx.object_poses_w, t_c_w, k, dist)
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
                k, t_c_w, ctx.object_poses_w, geo.keypoint_object, geo.keypoint_position_o, dist
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
            rays = self.lens.rays if self.lens is not None else None
            self._view = FlowView(
                imgs.part, imgs.depth_m, k, pose_w_c, ctx.part_poses_w, near, rays, dist
            )
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
        lens = self.lens
        # windows in the rendered (pinhole) grid: the canvas of a distorted camera
        kr, (wr, hr) = (k, (w, h)) if lens is None else (lens.canvas_k, lens.canvas_size)
        windows: dict[int, tuple[int, int, int, int]] = {}
        for i in np.nonzero(~geo.object_is_stuff)[0]:
            found = amodal_window(corners_c[i], kr, near, wr, hr)
            if found is not None:
                windows[int(i) + 1] = found[0]
            elif lens is None and tight[i, 2] > tight[i, 0]:  # visible, box missed: its pixels
                windows[int(i) + 1] = tuple(int(x) for x in tight[i])  # type: ignore[assignment]
        masks = ctx.renderer.render_alone(kr, near, value(spec.far), pose_w_c, windows)
        t = self._tick("amodal_render", t)
        truncation_of: dict[int, float] = {}
        if lens is not None:  # to the distorted image (nearest canvas pixel, like every label)
            for inst, win in list(windows.items()):
                windows[inst], masks[inst], truncation_of[inst] = distort_window(
                    lens, win, masks[inst]
                )
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
            if inst in truncation_of:
                truncation[row] = truncation_of[inst]
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
            _attach(frame, "bwd", rigid_flow(view, prev_view, scene_flow=False))
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


def distort_window(
    lens: Lens, window: tuple[int, int, int, int], mask: np.ndarray
) -> tuple[tuple[int, int, int, int], np.ndarray, float]:
    """An amodal mask rendered in the canvas ``window`` of a distorted camera, resampled to the
    output image (window, mask inside it), and its truncation: the share of the mask's canvas
    pixels outside the region the distorted image sees."""
    u0, v0, u1, v1 = window
    w, h = lens.size
    cw, ch = lens.canvas_size
    total = int(mask.sum())
    # canvas part of the window and what the image sees of it
    cu0, cv0, cu1, cv1 = max(u0, 0), max(v0, 0), min(u1, cw), min(v1, ch)
    seen = 0
    if cu0 < cu1 and cv0 < cv1:
        sub = mask[cv0 - v0 : cv1 - v0, cu0 - u0 : cu1 - u0]
        seen = int((sub & lens.footprint[cv0:cv1, cu0:cu1]).sum())
    truncation = 1.0 - seen / total if total else float("nan")
    # output pixels whose nearest canvas pixel lies in the window: the distorted image of its
    # border bounds them
    t = np.linspace(0.0, 1.0, 33)
    edge = np.concatenate(
        [
            np.stack([u0 - 0.5 + t * (u1 - u0), np.full_like(t, v0 - 0.5)], 1),
            np.stack([u0 - 0.5 + t * (u1 - u0), np.full_like(t, v1 - 0.5)], 1),
            np.stack([np.full_like(t, u0 - 0.5), v0 - 0.5 + t * (v1 - v0)], 1),
            np.stack([np.full_like(t, u1 - 0.5), v0 - 0.5 + t * (v1 - v0)], 1),
        ]
    )
    uv = lens.canvas_to_image(edge)
    lo = np.floor(np.nanmin(uv, 0)).astype(int) - 2
    hi = np.ceil(np.nanmax(uv, 0)).astype(int) + 3
    a0, b0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
    a1, b1 = min(int(hi[0]), w), min(int(hi[1]), h)
    if a0 >= a1 or b0 >= b1:
        return (0, 0, 0, 0), np.zeros((0, 0), bool), truncation
    src = lens.source_index[b0:b1, a0:a1]
    su, sv = src % cw - u0, src // cw - v0
    inside = (su >= 0) & (su < u1 - u0) & (sv >= 0) & (sv < v1 - v0)
    out = np.zeros(src.shape, bool)
    out[inside] = mask[sv[inside], su[inside]]
    return (a0, b0, a1, b1), out, truncation


def _attach(frame: SensorFrame, direction: str, flow: Flow) -> None:
    frame.arrays[f"flow_{direction}_px"] = flow.flow_px
    frame.arrays[f"flow_{direction}_status"] = flow.status
    if direction == "fwd":
        frame.arrays["scene_flow_fwd_w"] = flow.scene_flow_w


def labeler_for(ctx: CaptureContext, spec: CameraSensor, lens: Lens | None = None) -> CameraLabeler:
    """The camera's labeler in this episode (made on first use)."""
    lab: Any = ctx.labelers.get(spec.name)
    if lab is None:
        if ctx.geometry is None:
            ctx.geometry = EpisodeGeometry.build(ctx.world, ctx.hulls)
        lab = CameraLabeler(spec, ctx.geometry, lens)
        ctx.labelers[spec.name] = lab
    return lab  # type: ignore[no-any-return]
