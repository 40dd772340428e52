"""Cross-check a dataset's labels against each other (``simgen verify``).

Every check recomputes one stored label from *other* stored arrays (masks, depth, poses,
calibration) and records its worst residual; a check fails when a residual exceeds its
tolerance. Checks whose arrays are absent are skipped. docs/labels.md lists them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simgen.errors import DatasetError
from simgen.geometry import invert_pose, pose_matrices, quat_to_matrix
from simgen.io.layout import LIDAR_INSTANCE, LIDAR_POINTS
from simgen.io.reader import Dataset, Episode
from simgen.labels.amodal import unpack_masks
from simgen.labels.boxes import BOX_EDGES, box_corners, mask_boxes, project
from simgen.labels.normals import backproject, normals_from_depth
from simgen.labels.occlusion import inside_image


@dataclass
class Check:
    """One consistency check: residuals must stay at or below ``tolerance``."""

    name: str
    what: str
    unit: str
    tolerance: float
    worst: float = 0.0
    where: str = ""
    items: int = 0
    failures: int = 0

    def add(self, residual: float, where: str, items: int = 1) -> None:
        self.items += items
        r = float(residual)
        if math.isnan(r):
            r = math.inf
        if r > self.worst or not self.where:
            self.worst, self.where = r, where
        if r > self.tolerance:
            self.failures += 1

    @property
    def ok(self) -> bool:
        return self.failures == 0


@dataclass
class VerifyReport:
    path: Path
    checks: dict[str, Check] = field(default_factory=dict)
    frames: int = 0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks.values())

    def check(self, name: str, what: str, unit: str, tolerance: float) -> Check:
        c = self.checks.get(name)
        if c is None:
            c = self.checks[name] = Check(name, what, unit, tolerance)
        return c


def verify_dataset(
    path: str | Path, *, episodes: list[int] | None = None, max_frames: int | None = None
) -> VerifyReport:
    """Run every applicable check on the dataset (``max_frames`` per camera per episode)."""
    report = VerifyReport(Path(path))
    with Dataset(path) as ds:
        if not ds.complete:
            raise DatasetError(f"{path}: the dataset is incomplete: {ds.incomplete_reason()}")
        stuff = (
            ds.file["class_is_stuff"][()].astype(bool)
            if "class_is_stuff" in ds.file
            else np.zeros(len(ds.classes), bool)
        )
        chosen = ds.episode_indices if episodes is None else episodes
        for index in chosen:
            ep = ds.episode(index)
            _verify_episode(report, ep, stuff, max_frames)
    return report


@dataclass
class _Ctx:
    ep: Episode
    sensor: str
    class_of: np.ndarray  # instance id -> class id
    kinds: list[str]  # object kind by instance id - 1
    state: dict[str, np.ndarray]
    stuff: np.ndarray
    near: float

    def object_poses(self, tick: int) -> np.ndarray:
        return pose_matrices(self.state["position_w"][tick], self.state["quat_wxyz_w"][tick])


def _verify_episode(
    report: VerifyReport, ep: Episode, stuff: np.ndarray, max_frames: int | None
) -> None:
    objects = ep.objects
    class_of = np.zeros(len(objects) + 1, np.int64)
    for o in objects:
        class_of[o["instance_id"]] = o["class_id"]
    state = ep.state()
    lidars = [n for n, k in ep.sensors.items() if k == "lidar"]
    specs = {s["name"]: s for s in ep.params["scene"]["sensors"]}
    for name, kind in ep.sensors.items():
        if kind != "camera":
            continue
        near = float(specs[name]["near"])
        ctx = _Ctx(ep, name, class_of, [o["kind"] for o in objects], state, stuff, near)
        n = ep.num_frames(name)
        count = n if max_frames is None else min(n, max_frames)
        for k in range(count):
            f = ep.frame(name, k)
            nxt = ep.frame(name, k + 1) if k + 1 < n and "flow_fwd_px" in f else None
            where = f"episode {ep.index} {name} frame {k}"
            _frame_checks(report, ctx, f, nxt, where)
            for lidar in lidars:
                _lidar_check(report, ctx, f, lidar, where)
            report.frames += 1


def _frame_checks(
    report: VerifyReport,
    ctx: _Ctx,
    f: dict[str, np.ndarray],
    nxt: dict[str, np.ndarray] | None,
    where: str,
) -> None:
    checks: list[Callable[..., None]] = [
        _check_images,
        _check_boxes,
        _check_box3d,
        _check_amodal,
        _check_keypoints,
        _check_normals,
    ]
    for fn in checks:
        fn(report, ctx, f, where)
    if nxt is not None:
        _check_flow(report, ctx, f, nxt, where)


def _check_images(report: VerifyReport, ctx: _Ctx, f: dict[str, Any], where: str) -> None:
    if "instance" not in f:
        return
    inst = f["instance"]
    if "depth_m" in f:
        c = report.check("depth_ids", "depth > 0 exactly where an object is", "pixels", 0)
        c.add(int(np.sum((f["depth_m"] > 0) != (inst > 0))), where)
    if "semantic" in f:
        c = report.check("semantic", "semantic == class of instance", "pixels", 0)
        c.add(int(np.sum(f["semantic"] != ctx.class_of[inst])), where)
    if "panoptic" in f:
        c = report.check("panoptic", "panoptic == (class, instance or 0 for stuff)", "pixels", 0)
        cls = ctx.class_of[inst]
        want_inst = np.where(ctx.stuff[cls], 0, inst)
        p = f["panoptic"]
        c.add(int(np.sum((p[..., 0] != cls) | (p[..., 1] != want_inst))), where)


def _check_boxes(report: VerifyReport, ctx: _Ctx, f: dict[str, Any], where: str) -> None:
    if "box2d_tight" not in f or "instance" not in f:
        return
    boxes, counts = mask_boxes(f["instance"], len(ctx.kinds))
    c = report.check("box_tight", "tight box == mask extent", "px", 0)
    c.add(float(np.abs(boxes - f["box2d_tight"]).max(initial=0)), where)
    c = report.check("visible_pixels", "visible_pixels == mask area", "pixels", 0)
    c.add(float(np.abs(counts - f["visible_pixels"]).max(initial=0)), where)


def _check_box3d(report: VerifyReport, ctx: _Ctx, f: dict[str, Any], where: str) -> None:
    if "box3d_center_c" not in f:
        return
    t_c_w = f["extrinsics_w2c"]
    c = report.check("box3d_frames", "3D box: camera frame == extrinsics @ world frame", "m", 1e-6)
    center_c = f["box3d_center_w"] @ t_c_w[:3, :3].T + t_c_w[:3, 3]
    r_w = quat_to_matrix(f["box3d_quat_wxyz_w"])
    r_c = quat_to_matrix(f["box3d_quat_wxyz_c"])
    rot_err = np.abs(t_c_w[:3, :3] @ r_w - r_c).max(initial=0)
    c.add(max(float(np.abs(center_c - f["box3d_center_c"]).max(initial=0)), rot_err), where)
    corners = box_corners(f["box3d_center_c"], f["box3d_size"], r_c)
    uv, z = project(f["K"], corners, f.get("dist_coeffs"))
    c = report.check("box3d_corners", "projected corners == K @ 3D box corners", "px", 1e-3)
    front = np.all(z > 0, axis=1)
    err = np.zeros(1)
    if np.any(front):  # stored as float32: allow its rounding of large coordinates
        err = np.abs(uv[front] - f["box3d_corners_uv"][front]) - 1e-6 * np.abs(uv[front])
    c.add(float(max(err.max(initial=0), 0.0)), where)
    if "instance" in f:
        _check_mask_in_box(report, ctx, f, corners, where)


def _check_mask_in_box(
    report: VerifyReport, ctx: _Ctx, f: dict[str, Any], corners_c: np.ndarray, where: str
) -> None:
    """Every mask pixel's center lies in the projection of its object's 3D box (1 px slack).
    With lens distortion the box's edges are sampled densely (distortion bends them)."""
    import cv2

    inst = f["instance"]
    h, w = inst.shape
    dist = f.get("dist_coeffs")
    if dist is not None:  # 12 edges x 32 points
        t = np.linspace(0.0, 1.0, 32)[None, :, None]
        a, b = corners_c[:, BOX_EDGES[:, 0]], corners_c[:, BOX_EDGES[:, 1]]
        corners_c = (a[:, :, None] + t * (b - a)[:, :, None]).reshape(len(corners_c), -1, 3)
    c = report.check("mask_in_box3d", "mask pixels outside the projected 3D box", "pixels", 0)
    worst = 0
    for i in np.nonzero(f["visible_pixels"] if "visible_pixels" in f else [])[0]:
        if np.any(corners_c[i, :, 2] <= 1e-6):
            continue  # the box crosses the camera plane: its projection is unbounded
        uv, _ = project(f["K"], corners_c[i], dist)
        hull = cv2.convexHull(np.round(uv * 16).astype(np.int32))
        poly = np.zeros((h + 2, w + 2), np.uint8)  # one pixel of border: hulls may leave
        cv2.fillConvexPoly(poly, hull + 16, 1, lineType=cv2.LINE_8, shift=4)
        poly = cv2.dilate(poly, np.ones((3, 3), np.uint8))[1:-1, 1:-1]
        worst = max(worst, int(np.sum((inst == i + 1) & (poly == 0))))
    c.add(worst, where)


def _check_amodal(report: VerifyReport, ctx: _Ctx, f: dict[str, Any], where: str) -> None:
    if "box2d_amodal" not in f:
        return
    inst = f["instance"] if "instance" in f else None
    h, w = f["depth_m"].shape if "depth_m" in f else (0, 0)
    if inst is not None:
        h, w = inst.shape
    masks = unpack_masks(f["amodal_masks"], f["box2d_amodal"], f["amodal_pixels"], h, w)
    tight, amodal = f["box2d_tight"] if "box2d_tight" in f else None, f["box2d_amodal"]
    c_box = report.check("tight_in_amodal", "tight box inside the amodal box", "px", 0)
    c_mask = report.check(
        "visible_in_amodal", "visible pixels outside the amodal mask", "pixels", 0
    )
    c_area = report.check("amodal_pixels", "amodal_pixels == amodal mask area", "pixels", 0)
    c_vis = report.check("visibility", "visibility == visible / amodal pixels", "", 1e-6)
    worst_box = worst_mask = worst_area = 0
    worst_vis = 0.0
    present = f["amodal_pixels"] > 0
    if inst is not None:
        present |= np.bincount(inst.ravel(), minlength=len(amodal) + 1)[1 : len(amodal) + 1] > 0
    for i in np.nonzero(present)[0]:
        if ctx.stuff[ctx.class_of[i + 1]]:
            continue  # no amodal labels for 'stuff' (floor, walls)
        m = masks.get(i + 1)
        area = 0 if m is None else int(m.sum())
        worst_area = max(worst_area, abs(area - int(f["amodal_pixels"][i])))
        if tight is not None and tight[i, 2] > tight[i, 0]:
            out = np.concatenate([amodal[i, :2] - tight[i, :2], tight[i, 2:] - amodal[i, 2:]])
            worst_box = max(worst_box, int(out.max()))
        if inst is not None:
            vis = inst == i + 1
            n_vis = int(vis.sum())
            worst_mask = max(worst_mask, int(np.sum(vis & ~m)) if m is not None else n_vis)
            if area:
                worst_vis = max(worst_vis, abs(n_vis / area - float(f["visibility"][i])))
    c_box.add(worst_box, where)
    c_mask.add(worst_mask, where)
    c_area.add(worst_area, where)
    c_vis.add(worst_vis, where)


def _check_keypoints(report: VerifyReport, ctx: _Ctx, f: dict[str, Any], where: str) -> None:
    if "keypoints_uv" not in f:
        return
    g = ctx.ep.g["keypoints"]
    obj = g["instance_id"][()] - 1
    pos_o = g["position_o"][()]
    t = f["extrinsics_w2c"] @ ctx.object_poses(int(f["tick"]))[obj]
    p_c = np.einsum("kij,kj->ki", t[:, :3, :3], pos_o) + t[:, :3, 3]
    uv, z = project(f["K"], p_c, f.get("dist_coeffs"))
    front = z > 0
    c = report.check("keypoints", "keypoints == projection of object poses", "px", 1e-3)
    c.add(float(np.abs(uv[front] - f["keypoints_uv"][front]).max(initial=0)), where)
    h, w = f["depth_m"].shape
    vis = f["keypoints_visibility"]
    on = inside_image(uv[:, 0], uv[:, 1], w, h) & front
    c = report.check("keypoint_flags", "keypoint flags agree with the image bounds", "", 0)
    c.add(int(np.sum((vis == 0) & on & (z >= ctx.near)) + np.sum((vis > 0) & ~on)), where)


def _check_normals(report: VerifyReport, ctx: _Ctx, f: dict[str, Any], where: str) -> None:
    if "normals_c" not in f or "depth_m" not in f:
        return
    n = f["normals_c"]
    d = normals_from_depth(f["depth_m"], f["K"], f.get("dist_coeffs"))
    ok = (np.linalg.norm(d, axis=-1) > 0.5) & (np.linalg.norm(n, axis=-1) > 0.5)
    if "instance" in f:  # away from object borders
        inst = f["instance"]
        same = np.ones_like(ok)
        same[1:-1, 1:-1] = (
            (inst[1:-1, 1:-1] == inst[1:-1, 2:])
            & (inst[1:-1, 1:-1] == inst[1:-1, :-2])
            & (inst[1:-1, 1:-1] == inst[2:, 1:-1])
            & (inst[1:-1, 1:-1] == inst[:-2, 1:-1])
        )
        ok &= same
    c = report.check("normals", "median angle between normals and depth gradients", "deg", 5.0)
    unit = report.check("normals_unit", "normals are unit vectors on surfaces", "", 1e-4)
    has = f["depth_m"] > 0
    unit.add(float(np.abs(np.linalg.norm(n[has], axis=-1) - 1).max(initial=0)), where)
    if np.sum(ok) < 10:
        return
    cos = np.clip(np.einsum("ij,ij->i", n[ok], d[ok]), -1, 1)
    c.add(float(np.degrees(np.median(np.arccos(cos)))), where)


def _check_flow(
    report: VerifyReport,
    ctx: _Ctx,
    f: dict[str, Any],
    nxt: dict[str, Any],
    where: str,
) -> None:
    status = f["flow_fwd_status"]
    v, u = np.nonzero(status)
    if len(u) == 0:
        return
    flow = f["flow_fwd_px"][v, u].astype(np.float64)
    dist = f.get("dist_coeffs")
    x_c0 = backproject(f["depth_m"], f["K"], dist)[v, u]
    pose0, pose1 = f["pose_w"], nxt["pose_w"]
    x_w0 = x_c0 @ pose0[:3, :3].T + pose0[:3, 3]
    t_c1_w = invert_pose(pose1)
    target = np.stack([u, v], 1) + flow
    # 1. flow == projection of the point moved by its scene flow (any object, any joint)
    x_w1 = x_w0 + f["scene_flow_fwd_w"][v, u]
    x_c1 = x_w1 @ t_c1_w[:3, :3].T + t_c1_w[:3, 3]
    uv1, z1 = project(nxt["K"], x_c1, dist)
    front = z1 > 0
    c = report.check("flow_scene_flow", "flow == projected scene flow", "px", 1e-2)
    c.add(float(np.abs(uv1[front] - target[front]).max(initial=0)), where)
    # 2. flow == motion of the object's stored poses (objects without joints)
    inst = f["instance"][v, u]
    rigid = np.array([k != "urdf" for k in ctx.kinds])[inst - 1]
    if np.any(rigid):
        p0 = ctx.object_poses(int(f["tick"]))
        p1 = ctx.object_poses(int(nxt["tick"]))
        m = (p1 @ invert_pose(p0))[inst[rigid] - 1]
        x_w1r = np.einsum("nij,nj->ni", m[:, :3, :3], x_w0[rigid]) + m[:, :3, 3]
        x_c1r = x_w1r @ t_c1_w[:3, :3].T + t_c1_w[:3, 3]
        uv1r, z1r = project(nxt["K"], x_c1r, dist)
        ok = z1r > 0
        c = report.check("flow_poses", "flow == motion of stored object poses", "px", 1e-2)
        c.add(float(np.abs(uv1r[ok] - target[rigid][ok]).max(initial=0)), where)
    # 3. points marked visible are not behind the next frame's surface (1% depth slack)
    vis = (status[v, u] == 1) & front
    if np.any(vis):
        d1 = np.where(nxt["depth_m"] > 0, nxt["depth_m"], np.inf)
        h, w = d1.shape
        t = target[vis]
        u0 = np.clip(np.floor(t[:, 0]).astype(int), 0, w - 1)
        v0 = np.clip(np.floor(t[:, 1]).astype(int), 0, h - 1)
        u1, v1 = np.minimum(u0 + 1, w - 1), np.minimum(v0 + 1, h - 1)
        dmax = np.maximum.reduce([d1[v0, u0], d1[v0, u1], d1[v1, u0], d1[v1, u1]])
        c = report.check(
            "flow_visible_depth", "visible flow targets behind the next depth", "pixels", 0
        )
        c.add(int(np.sum(z1[vis] > dmax * 1.01 + 1e-3)), where)


def _lidar_check(
    report: VerifyReport, ctx: _Ctx, f: dict[str, Any], lidar: str, where: str
) -> None:
    """LiDAR points agree with the camera frame taken at the sweep's end.

    The camera and the LiDAR see from different places, so a point may be hidden from the
    camera (behind its surface: fine) but never *in front* of the surface the camera sees, and
    never where the camera sees nothing. Points on objects that move during the sweep are left
    out (they were measured at earlier instants; de-skewing compensates the sensor's motion
    only). Where the depths agree, the ids must agree.
    """
    ep = ctx.ep
    if LIDAR_POINTS not in ep.fields(lidar) or "depth_m" not in f:
        return
    times = ep.g["sensors"][lidar]["time"][()]
    j = int(np.argmin(np.abs(times - float(f["time"]))))
    if abs(times[j] - float(f["time"])) > 1e-9:
        return  # no LiDAR sweep ends at this camera frame's time
    fields = [LIDAR_POINTS] + ([LIDAR_INSTANCE] if LIDAR_INSTANCE in ep.fields(lidar) else [])
    lf = ep.frame(lidar, j, fields=[*fields, "pose_w"])
    tick = int(f["tick"])
    moving = np.zeros(len(ctx.kinds) + 1, bool)
    speed = np.linalg.norm(ctx.state["linear_velocity_w"][tick], axis=1)
    spin = np.linalg.norm(ctx.state["angular_velocity_w"][tick], axis=1)
    moving[1:] = (speed > 1e-3) | (spin > 1e-3)
    keep = (  # weather returns (instance 0: fog, rain, snow) are not surfaces
        ~moving[lf[LIDAR_INSTANCE]] & (lf[LIDAR_INSTANCE] > 0)
        if LIDAR_INSTANCE in lf
        else np.ones(len(lf[LIDAR_POINTS]), bool)
    )
    t_c_s = f["extrinsics_w2c"] @ lf["pose_w"]
    p_c = lf[LIDAR_POINTS][keep] @ t_c_s[:3, :3].T + t_c_s[:3, 3]
    uv, z = project(f["K"], p_c, f.get("dist_coeffs"))
    depth = f["depth_m"]
    h, w = depth.shape
    on = inside_image(uv[:, 0], uv[:, 1], w, h) & (z > ctx.near)
    if not np.any(on):
        return
    px = np.rint(uv[on]).astype(int)
    d = depth[px[:, 1], px[:, 0]]
    tol = np.maximum(0.01 * z[on], 0.02)
    # a point is in front of the surface only if it is nearer than every pixel around its
    # projection (at grazing angles depth changes by many cm from one pixel to the next)
    sky = np.where(depth > 0, depth, np.inf).astype(np.float32)
    dmin = -_max3x3(-sky)[px[:, 1], px[:, 0]]
    nothing = _max3x3(depth)[px[:, 1], px[:, 0]] == 0
    in_front = (z[on] < dmin - tol) | nothing
    c = report.check(
        "lidar_depth", "static LiDAR points in front of the camera's surface", "share", 0.01
    )
    c.add(float(np.mean(in_front)), where, items=int(np.sum(on)))
    agree = np.abs(d - z[on]) <= tol
    if LIDAR_INSTANCE in lf and "instance" in f and np.any(agree):
        # the id must appear at the projected pixel or one of its 8 neighbours (sub-pixel
        # rounding at silhouettes)
        pts_ids = lf[LIDAR_INSTANCE][keep][on][agree]
        ids = np.pad(f["instance"], 1, mode="edge")
        pu, pv = px[agree, 0] + 1, px[agree, 1] + 1
        found = np.zeros(len(pts_ids), bool)
        for dv in (-1, 0, 1):
            for du in (-1, 0, 1):
                found |= ids[pv + dv, pu + du] == pts_ids
        c = report.check("lidar_ids", "LiDAR ids absent around their camera pixel", "share", 0.01)
        c.add(1.0 - float(np.mean(found)), where, items=int(np.sum(agree)))


def _max3x3(a: np.ndarray) -> np.ndarray:
    import cv2

    a32 = np.nan_to_num(
        a.astype(np.float32), posinf=np.finfo(np.float32).max, neginf=-np.finfo(np.float32).max
    )
    return cv2.dilate(a32, np.ones((3, 3), np.uint8))
