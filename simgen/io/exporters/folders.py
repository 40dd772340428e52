"""Plain folders of standard files, one folder per sensor.

Layout::

    OUT/classes.json                       class names and 'stuff' flags
    OUT/<camera>/rgb/<episode>_<frame>.png       8-bit RGB
    OUT/<camera>/depth/<episode>_<frame>.png     16-bit depth in millimeters (0 = no surface
                                                 or farther than 65.535 m)
    OUT/<camera>/instance/<episode>_<frame>.png  16-bit instance ids (0 = background)
    OUT/<camera>/semantic/<episode>_<frame>.png  16-bit class ids
    OUT/<camera>/cameras.jsonl             per frame: stem, episode, frame, time, K, pose_w (+ dist_coeffs)
    OUT/<lidar>/points/<episode>_<frame>.ply     binary PLY (x, y, z in the sensor frame,
                                                 intensity and instance when stored), when
                                                 the dataset has LiDAR
    OUT/objects.jsonl                      per episode: its objects (id, name, class)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from simgen.io.exporters.common import (
    ExportSummary,
    cameras,
    class_is_stuff,
    json_default,
    mkdirs,
    open_complete,
    prepare_out,
    write_png,
)
from simgen.io.layout import LIDAR_INSTANCE, LIDAR_INTENSITY, LIDAR_POINTS
from simgen.io.reader import Episode

IMAGES = {"rgb": "rgb", "depth_m": "depth", "instance": "instance", "semantic": "semantic"}
LIDAR_EXTRA = (LIDAR_INTENSITY, LIDAR_INSTANCE)  # stored per point when the LiDAR has them


def depth_png(depth_m: np.ndarray) -> np.ndarray:
    """uint16 millimeters; 0 where there is no surface or the depth exceeds 65.535 m."""
    mm = np.rint(depth_m.astype(np.float64) * 1000.0)
    mm[(mm > 65535) | (depth_m <= 0)] = 0
    return mm.astype(np.uint16)


def write_ply(path: Path, points: np.ndarray, extra: dict[str, np.ndarray]) -> None:
    """Binary little-endian PLY with float x, y, z and the given per-point properties."""
    props = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    kinds = {"<f4": "float", "<u2": "ushort"}
    cols = [np.asarray(points, np.float32).reshape(-1, 3)]
    for name, values in extra.items():
        dt = "<u2" if np.issubdtype(values.dtype, np.integer) else "<f4"
        props.append((name, dt))
        cols.append(values.reshape(-1, 1))
    rec = np.empty(len(cols[0]), dtype=props)
    rec["x"], rec["y"], rec["z"] = cols[0][:, 0], cols[0][:, 1], cols[0][:, 2]
    for (name, dt), col in zip(props[3:], cols[1:], strict=True):
        rec[name] = col[:, 0].astype(dt)
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(rec)}\n"
        + "".join(f"property {kinds[dt]} {name}\n" for name, dt in props)
        + "end_header\n"
    )
    with path.open("wb") as fh:
        fh.write(header.encode("ascii"))
        fh.write(rec.tobytes())


def export_folders(
    dataset: str | Path, out: str | Path, *, force: bool = False, sensors: list[str] | None = None
) -> ExportSummary:
    """Write every camera frame (and LiDAR sweep) as standard image / point-cloud files."""
    t0 = time.perf_counter()
    out = Path(out)
    with open_complete(Path(dataset)) as ds:
        prepare_out(out, force, "folders", Path(dataset))
        stuff = class_is_stuff(ds)
        (out / "classes.json").write_text(
            json.dumps(
                [{"id": i, "name": n, "stuff": bool(stuff[i])} for i, n in enumerate(ds.classes)],
                indent=1,
            )
            + "\n"
        )
        summary = ExportSummary("folders", out)
        with (out / "objects.jsonl").open("w") as objects:
            for ep in ds:
                objects.write(json.dumps({"episode": ep.index, "objects": ep.objects}) + "\n")
                for cam in cameras(ep, sensors):
                    summary.frames += _camera(ep, cam, out / cam)
                for name, kind in ep.sensors.items():
                    if kind == "lidar" and LIDAR_POINTS in ep.fields(name):
                        summary.files[name] = summary.files.get(name, 0) + _lidar(
                            ep, name, out / name
                        )
    summary.seconds = time.perf_counter() - t0
    return summary


def _camera(ep: Episode, cam: str, folder: Path) -> int:
    have = set(ep.fields(cam))
    kinds = {k: v for k, v in IMAGES.items() if k in have}
    mkdirs(*(folder / v for v in kinds.values()))
    fields = [*kinds, "time", "K", "pose_w", *(["dist_coeffs"] if "dist_coeffs" in have else [])]
    with (folder / "cameras.jsonl").open("a") as meta:
        for k in range(ep.num_frames(cam)):
            f = ep.frame(cam, k, fields=fields)
            name = f"{ep.index:06d}_{k:06d}"
            for key, sub in kinds.items():
                img = depth_png(f[key]) if key == "depth_m" else f[key]
                write_png(folder / sub / f"{name}.png", img)
            row: dict[str, Any] = {
                "stem": name,
                "episode": ep.index,
                "frame": k,
                "time": f["time"],
                "K": f["K"],
                "pose_w": f["pose_w"],
            }
            if "dist_coeffs" in f:  # OpenCV (k1, k2, p1, p2, k3) of a distorted camera
                row["dist_coeffs"] = f["dist_coeffs"]
            meta.write(json.dumps(row, default=json_default) + "\n")
    return ep.num_frames(cam)


def _lidar(ep: Episode, name: str, folder: Path) -> int:
    mkdirs(folder / "points")
    extra = [k for k in LIDAR_EXTRA if k in ep.fields(name)]
    for k in range(ep.num_frames(name)):
        f = ep.frame(name, k, fields=[LIDAR_POINTS, *extra])
        write_ply(
            folder / "points" / f"{ep.index:06d}_{k:06d}.ply",
            f[LIDAR_POINTS],
            {e: np.asarray(f[e]) for e in extra},
        )
    return ep.num_frames(name)
