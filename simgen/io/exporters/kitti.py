"""KITTI object format (image_2, label_2, calib, velodyne) from a simgen dataset.

Layout::

    OUT/training/image_2/000000.png ...
    OUT/training/label_2/000000.txt     type trunc occl alpha x1 y1 x2 y2 h w l x y z ry
    OUT/training/calib/000000.txt       P0..P3, R0_rect, Tr_velo_to_cam, Tr_imu_to_velo
    OUT/training/velodyne/000000.bin    float32 (x, y, z, intensity), when LiDAR exists
    OUT/ImageSets/train.txt             every frame id
    OUT/mapping.csv                     id -> episode, camera, frame (and the LiDAR frame)

KITTI's label frame is a *rectified* camera frame whose y axis points down along gravity, so an
upright object turns only about y. simgen cameras may look down or roll, so the exporter levels
the camera frame: ``R0_rect`` rotates camera coordinates into the gravity-aligned frame (z =
the optical axis projected on the ground, y = world down), and ``P2 = K @ R0_rect.T`` (zero
translation) projects that frame into the image. For a level camera ``R0_rect`` is the identity
and ``P2 = [K | 0]``. Tools that only multiply by the matrices (``P2 @ R0_rect @ Tr_velo_to_cam``)
are exact; tools that read fx, cx out of P2 assume a level camera.

3D boxes: height is the box edge closest to vertical, length the next of the object's x, y, z
axes, width the last; ``rotation_y`` turns the length axis about the rectified y axis;
``location`` is the bottom center (rectified frame). Boxes of objects tilted away from upright
are approximated (KITTI boxes only turn about y). ``alpha = rotation_y - atan2(x, z)``.
2D boxes are the tight (visible) boxes: left, top, right, bottom pixel indices.
``truncated`` comes from the amodal labels when present, else from the projected 3D box;
``occluded`` is 0 (visibility >= 0.99), 1 (>= 0.5), 2 (less) or 3 (unknown: no amodal labels).

``Tr_velo_to_cam`` maps the LiDAR sensor frame of the sweep taken at the camera frame's time
(the ragged ``points_xyz_s`` of a ``lidar`` sensor; ``intensity`` when stored) into the camera.
Without LiDAR there is no velodyne folder and ``Tr_velo_to_cam`` maps the camera's body frame
(x forward, y left, z up, like a Velodyne) into the camera.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from simgen.errors import DatasetError
from simgen.geometry import quat_to_matrix
from simgen.io.exporters.common import (
    ExportSummary,
    class_is_stuff,
    frames,
    mkdirs,
    open_complete,
    prepare_out,
    require,
    write_png,
)
from simgen.io.layout import LIDAR_INTENSITY, LIDAR_POINTS
from simgen.io.reader import Episode
from simgen.sensors.camera import R_BODY_OPTICAL

FIELDS = [
    "rgb",
    "time",
    "extrinsics_w2c",
    "K",
    "box2d_tight",
    "visible_pixels",
    "box3d_center_c",
    "box3d_quat_wxyz_c",
    "box3d_size",
    "box3d_corners_uv",
    "visibility",
    "truncation",
]


def level_rotation(t_c_w: np.ndarray) -> np.ndarray:
    """``R0_rect``: camera (OpenCV) coordinates -> gravity-aligned rectified coordinates."""
    down = -t_c_w[:3, :3] @ np.array([0.0, 0.0, 1.0])  # world down, in the camera frame
    ahead = np.array([0.0, 0.0, 1.0])  # the optical axis
    if abs(ahead @ down) > 0.9:  # looking (nearly) straight down or up: use the image's up
        ahead = np.array([0.0, -1.0, 0.0]) * np.sign(ahead @ down)
    z = ahead - (ahead @ down) * down
    z /= np.linalg.norm(z)
    x = np.cross(down, z)
    return np.stack([x, down, z])  # rows: the rectified axes in camera coordinates


def kitti_box(center_c: np.ndarray, quat_c: np.ndarray, size: np.ndarray, r0: np.ndarray):  # type: ignore[no-untyped-def]
    """(h, w, l), bottom-center location and rotation_y of a 3D box, rectified frame."""
    axes = r0 @ quat_to_matrix(quat_c)  # object axes (columns) in the rectified frame
    up = int(np.argmax(np.abs(axes[1])))
    length_axis, width_axis = (i for i in range(3) if i != up)
    h, w, l_ = size[up], size[width_axis], size[length_axis]
    a = axes[:, length_axis]
    ry = math.atan2(-a[2], a[0])
    loc = r0 @ center_c + np.array([0.0, h / 2.0, 0.0])
    return (h, w, l_), loc, _wrap(ry)


def kitti_corners(dims: tuple[float, float, float], loc: np.ndarray, ry: float) -> np.ndarray:
    """(8, 3) box corners in the rectified frame, as KITTI's devkit computes them."""
    h, w, l_ = dims
    x = np.array([l_, l_, -l_, -l_, l_, l_, -l_, -l_]) / 2
    y = np.array([0, 0, 0, 0, -h, -h, -h, -h], float)
    z = np.array([w, -w, -w, w, w, -w, -w, w]) / 2
    c, s = math.cos(ry), math.sin(ry)
    r = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return (r @ np.stack([x, y, z])).T + loc


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def occlusion_level(visibility: float | None) -> int:
    if visibility is None or math.isnan(visibility):
        return 3
    return 0 if visibility >= 0.99 else 1 if visibility >= 0.5 else 2


def box_truncation(corners_uv: np.ndarray, width: int, height: int) -> float:
    """Share of the projected 3D box's bounding rectangle outside the image."""
    if not np.all(np.isfinite(corners_uv)):
        return 1.0
    lo, hi = corners_uv.min(0) - 0.5, corners_uv.max(0) + 0.5
    area = float(np.prod(hi - lo))
    ilo, ihi = np.maximum(lo, -0.5), np.minimum(hi, [width - 0.5, height - 0.5])
    inside = float(np.prod(np.clip(ihi - ilo, 0, None)))
    return 1.0 - inside / area if area > 0 else 0.0


def export_kitti(
    dataset: str | Path,
    out: str | Path,
    *,
    force: bool = False,
    sensors: list[str] | None = None,
    lidar: str | None = None,
) -> ExportSummary:
    """Write every camera frame as a KITTI object sample (one id per frame)."""
    t0 = time.perf_counter()
    out = Path(out)
    with open_complete(Path(dataset)) as ds:
        prepare_out(out, force, "kitti", Path(dataset))
        root = out / "training"
        dirs = {d: root / d for d in ("image_2", "label_2", "calib", "velodyne")}
        mkdirs(dirs["image_2"], dirs["label_2"], dirs["calib"], out / "ImageSets")
        stuff = class_is_stuff(ds)
        classes = ds.classes
        summary = ExportSummary("kitti", out)
        ids = []
        with (out / "mapping.csv").open("w") as mapping:
            mapping.write("id,episode,camera,frame,lidar,lidar_frame\n")
            last_ep, objects, lidar_name = -1, [], None
            for ep, cam, k, f in frames(ds, sensors, FIELDS):
                if ep.index != last_ep:
                    last_ep, objects = ep.index, ep.objects
                    lidar_name = _lidar(ep, lidar)
                require(
                    ep,
                    cam,
                    ["rgb", "box3d_center_c", "box2d_tight"],
                    "KITTI needs RGB and boxes: add 'boxes' to the camera's labels",
                )
                if "dist_coeffs" in ep.fields(cam):
                    raise DatasetError(
                        f"camera {cam!r} has lens distortion, which KITTI's calibration cannot "
                        "express; export it as coco, yolo or folders, or render without "
                        "'distortion'"
                    )
                kid = f"{summary.frames:06d}"
                ids.append(kid)
                write_png(dirs["image_2"] / f"{kid}.png", f["rgb"])
                r0 = level_rotation(f["extrinsics_w2c"])
                tr, lidar_k = _velodyne(ep, f, lidar_name, dirs["velodyne"] / f"{kid}.bin")
                _write_calib(dirs["calib"] / f"{kid}.txt", f["K"], r0, tr)
                lines = _labels(f, r0, objects, classes, stuff)
                (dirs["label_2"] / f"{kid}.txt").write_text("".join(line + "\n" for line in lines))
                summary.objects += len(lines)
                summary.frames += 1
                mapping.write(
                    f"{kid},{ep.index},{cam},{k},{lidar_name or ''},"
                    f"{'' if lidar_k is None else lidar_k}\n"
                )
        (out / "ImageSets" / "train.txt").write_text("".join(i + "\n" for i in ids))
        summary.files = {"frames": summary.frames}
    summary.seconds = time.perf_counter() - t0
    return summary


def _lidar(ep: Episode, chosen: str | None) -> str | None:
    lidars = [n for n, k in ep.sensors.items() if k == "lidar"]
    if chosen is not None:
        if chosen not in lidars:
            raise DatasetError(f"episode {ep.index} has no LiDAR {chosen!r}; LiDARs: {lidars}")
        return chosen
    for name in lidars:
        if LIDAR_POINTS in ep.fields(name):
            return name
    return None


def _velodyne(
    ep: Episode, f: dict[str, Any], lidar: str | None, path: Path
) -> tuple[np.ndarray, int | None]:
    """Tr_velo_to_cam (4x4) and the LiDAR frame written to ``path`` (None: no LiDAR)."""
    if lidar is None:
        tr = np.eye(4)
        tr[:3, :3] = R_BODY_OPTICAL.T  # camera body frame -> optical frame
        return tr, None
    times = ep.g["sensors"][lidar]["time"][()]
    j = int(np.argmin(np.abs(times - float(f["time"]))))
    fields = [LIDAR_POINTS, "pose_w"]
    if LIDAR_INTENSITY in ep.fields(lidar):
        fields.append(LIDAR_INTENSITY)
    lf = ep.frame(lidar, j, fields=fields)
    pts = np.asarray(lf[LIDAR_POINTS], np.float32).reshape(-1, 3)
    inten = lf.get(LIDAR_INTENSITY, np.zeros(len(pts)))
    data = np.concatenate([pts, np.asarray(inten, np.float32).reshape(-1, 1)], 1)
    mkdirs(path.parent)
    data.astype("<f4").tofile(path)
    return f["extrinsics_w2c"] @ lf["pose_w"], j


def _write_calib(path: Path, k: np.ndarray, r0: np.ndarray, tr: np.ndarray) -> None:
    p2 = np.zeros((3, 4))
    p2[:, :3] = k @ r0.T

    def row(name: str, m: np.ndarray) -> str:
        return name + ": " + " ".join(f"{x:.12e}" for x in np.asarray(m).ravel()) + "\n"

    text = "".join(row(f"P{i}", p2) for i in range(4))
    text += (
        row("R0_rect", r0) + row("Tr_velo_to_cam", tr[:3]) + row("Tr_imu_to_velo", np.eye(4)[:3])
    )
    path.write_text(text)


def _labels(
    f: dict[str, Any],
    r0: np.ndarray,
    objects: list[dict[str, Any]],
    classes: list[str],
    stuff: np.ndarray,
) -> list[str]:
    h_img, w_img = f["rgb"].shape[:2]
    lines = []
    for o in objects:
        i = o["instance_id"] - 1
        if stuff[o["class_id"]] or f["visible_pixels"][i] == 0:
            continue
        dims, loc, ry = kitti_box(
            f["box3d_center_c"][i], f["box3d_quat_wxyz_c"][i], f["box3d_size"][i], r0
        )
        if loc[2] <= 0:
            continue
        u0, v0, u1, v1 = (int(x) for x in f["box2d_tight"][i])
        if "truncation" in f and not math.isnan(float(f["truncation"][i])):
            trunc = float(f["truncation"][i])
        else:
            trunc = box_truncation(f["box3d_corners_uv"][i], w_img, h_img)
        vis = float(f["visibility"][i]) if "visibility" in f else None
        alpha = _wrap(ry - math.atan2(loc[0], loc[2]))
        h, w, l_ = dims
        lines.append(
            f"{classes[o['class_id']]} {min(max(trunc, 0.0), 1.0):.2f} {occlusion_level(vis)} "
            f"{alpha:.4f} {u0:.2f} {v0:.2f} {u1 - 1:.2f} {v1 - 1:.2f} "
            f"{h:.4f} {w:.4f} {l_:.4f} {loc[0]:.4f} {loc[1]:.4f} {loc[2]:.4f} {ry:.4f}"
        )
    return lines
