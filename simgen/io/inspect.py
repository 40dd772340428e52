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
    return {"rows": rows, "frames": total_frames, "sensors": sensors}


def write_frame_images(
    path: str | Path, folder: str | Path, *, episode: int | None, sensor: str | None, frame: int
) -> list[Path]:
    """Write rgb / depth / instance / semantic / overlay PNGs of one camera frame."""
    from simgen.viz import colorize_depth, colorize_labels, overlay, write_png

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
        if not cams:
            raise DatasetError(f"episode {ep.index} has no camera")
        name = sensor or cams[0]
        if name not in cams:
            raise DatasetError(f"no camera {name!r}; cameras: {cams}")
        data = ep.frame(name, frame)
        stem = f"ep{ep.index:06d}_{name}_{frame:04d}"
        written = []
        images: dict[str, np.ndarray] = {}
        if "rgb" in data:
            images["rgb"] = data["rgb"]
        if "depth_m" in data:
            images["depth"] = colorize_depth(data["depth_m"])
        if "instance" in data:
            images["instance"] = colorize_labels(data["instance"])
        if "semantic" in data:
            images["semantic"] = colorize_labels(data["semantic"], len(ds.classes))
        if "rgb" in data and "instance" in data:
            images["overlay"] = overlay(data["rgb"], data["instance"])
        for kind, img in images.items():
            p = out / f"{stem}_{kind}.png"
            write_png(str(p), img)
            written.append(p)
    return written
