"""Summaries and preview images of a dataset (``simgen inspect``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from simgen.errors import DatasetError, OutputError
from simgen.io.reader import Dataset


def summarize(path: str | Path) -> dict[str, Any]:
    """Rows of (label, value) describing a dataset."""
    p = Path(path)
    with Dataset(p) as ds:
        a = ds.attrs
        rows: list[tuple[str, str]] = [
            (
                "format",
                f"{a.get('format')} v{a.get('format_version')} (simgen {a.get('simgen_version')})",
            ),
            ("scene", str(a.get("scene_path") or "(built in Python)")),
            ("base seed", str(ds.base_seed)),
            ("complete", str(ds.complete)),
            ("episodes", str(len(ds))),
            ("classes", ", ".join(f"{i}:{c}" for i, c in enumerate(ds.classes))),
        ]
        sensors: dict[str, dict[str, Any]] = {}
        total_frames = 0
        for ep in ds:
            for name, kind in ep.sensors.items():
                s = sensors.setdefault(name, {"kind": kind, "frames": 0, "fields": {}})
                n = ep.num_frames(name)
                s["frames"] += n
                total_frames += n
                for key in ep.fields(name):
                    d = ep.g["sensors"][name][key]
                    s["fields"][key] = (
                        f"{d.dtype}{list(d.shape[1:]) if d.attrs.get('layout') == 'per_frame' else list(d.shape)}"
                    )
        for name, s in sensors.items():
            fields = ", ".join(f"{k} {v}" for k, v in sorted(s["fields"].items()))
            rows.append((f"sensor {name}", f"{s['kind']}, {s['frames']} frames: {fields}"))
        rows.append(("frames", str(total_frames)))
        size = (
            sum(f.stat().st_size for f in p.rglob("*.h5") if f.is_file())
            if p.is_dir()
            else p.stat().st_size
        )
        if ds.is_directory:
            rows.insert(1, ("layout", "directory (index.h5 + shards)"))
        rows.append(("size", f"{size / 1e6:.2f} MB"))
        failures, problems = ds.failures(), ds.problems()
        rows.append(("failed episodes", str(len(failures))))
        for f in failures:
            rows.append(
                (
                    f"failed {f.get('index', '?')}",
                    f"seed {f.get('seed', '?')}, {f.get('attempts', '?')} attempts: "
                    f"{f.get('error', '')}",
                )
            )
        for text in problems:
            rows.append(("MISSING", text))
    return {
        "rows": rows,
        "frames": total_frames,
        "sensors": sensors,
        "failures": failures,
        "problems": problems,
    }


def write_frame_images(
    path: str | Path, folder: str | Path, *, episode: int | None, sensor: str | None, frame: int
) -> list[Path]:
    """Write PNGs of one frame: for a camera rgb / depth / instance / semantic / overlay; for a
    LiDAR a bird's-eye view colored by class, the range image, and the points projected onto
    the camera frame nearest in time. Without ``sensor``: the first camera and the first LiDAR."""
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {out}: {e}") from None
    with Dataset(path) as ds:
        if len(ds) == 0:
            raise DatasetError(f"{path}: has no complete episodes")
        ep = ds.episode(ds.episode_indices[0] if episode is None else episode)
        cams = [n for n, k in ep.sensors.items() if k == "camera"]
        lidars = [n for n, k in ep.sensors.items() if k == "lidar"]
        if sensor is not None and sensor not in ep.sensors:
            raise DatasetError(f"no sensor {sensor!r}; sensors: {list(ep.sensors)}")
        if sensor is not None:
            chosen = [sensor]
        else:
            chosen = cams[:1] + lidars[:1]
        if not chosen:
            raise DatasetError(f"episode {ep.index} has no camera or LiDAR")
        written: list[Path] = []
        for name in chosen:
            images = (
                _camera_images(ep, name, frame, len(ds.classes))
                if ep.sensors[name] == "camera"
                else _lidar_images(ep, name, frame, len(ds.classes), cams)
            )
            stem = f"ep{ep.index:06d}_{name}_{frame:04d}"
            for kind, img in images.items():
                p = out / f"{stem}_{kind}.png"
                _write(p, img)
                written.append(p)
    return written


def _write(p: Path, img: np.ndarray) -> None:
    from simgen.viz import write_png

    try:
        write_png(str(p), img)
    except OSError as e:
        raise OutputError(str(e)) from None


def _camera_images(ep: Any, name: str, frame: int, n_classes: int) -> dict[str, np.ndarray]:
    from simgen.viz import colorize_depth, colorize_labels, overlay

    data = ep.frame(name, frame)
    images: dict[str, np.ndarray] = {}
    if "rgb" in data:
        images["rgb"] = data["rgb"]
    if "depth_m" in data:
        images["depth"] = colorize_depth(data["depth_m"])
    if "instance" in data:
        images["instance"] = colorize_labels(data["instance"])
    if "semantic" in data:
        images["semantic"] = colorize_labels(data["semantic"], n_classes)
    if "rgb" in data and "instance" in data:
        images["overlay"] = overlay(data["rgb"], data["instance"])
    return images


def _lidar_images(
    ep: Any, name: str, frame: int, n_classes: int, cams: list[str]
) -> dict[str, np.ndarray]:
    from simgen.geometry import transform_points
    from simgen.viz import bev_image, draw_points, palette, range_image_rgb

    data = ep.frame(name, frame)
    pts = data["points_deskewed_s"].astype(np.float64)
    extent = float(np.percentile(data["range_m"], 98)) if len(pts) else 10.0
    images = {
        "bev": bev_image(pts, data["semantic"], n_classes, extent_m=max(extent, 5.0)),
        "range": range_image_rgb(data["range_image"]),
    }
    t = float(data["time"])
    for cam in cams:
        cam_fields = ep.fields(cam)
        if "rgb" not in cam_fields or ep.num_frames(cam) == 0:
            continue
        times = ep.g["sensors"][cam]["time"][()]
        k = int(np.argmin(np.abs(times - t)))
        fields = [
            "rgb",
            "K",
            "extrinsics_w2c",
            *(["dist_coeffs"] if "dist_coeffs" in cam_fields else []),
        ]
        c = ep.frame(cam, k, fields)
        pts_c = transform_points(c["extrinsics_w2c"] @ data["pose_w"], pts)
        colors = palette(max(n_classes, int(data["semantic"].max(initial=0)) + 1))
        images[f"on_{cam}"] = draw_points(
            c["rgb"], pts_c, c["K"], colors[data["semantic"]], dist=c.get("dist_coeffs")
        )
    return images
