"""The streaming statistics engine behind ``simgen stats``: one pass over a dataset, reading
blocks of frames (bounded bytes) into the accumulators; memory does not grow with the dataset.

    from simgen.quality import compute_stats
    stats = compute_stats("out/street.h5")          # a JSON-ready dict (docs/quality.md)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from simgen.errors import DatasetError, OutputError
from simgen.io.reader import Dataset, Episode
from simgen.io.store import index_ranges
from simgen.quality.accum import Histogram, Moments
from simgen.quality.episodes import ParameterStats, ScenarioStats, dataset_failures
from simgen.quality.images import ImageStats
from simgen.quality.objects import ObjectStats

STATS_VERSION = 1
BLOCK_BYTES = 32 * 2**20  # frames read at once per sensor: at most this many bytes (or 1 frame)

CAMERA_FIELDS = [
    "rgb",
    "depth_m",
    "semantic",
    "instance",
    "visible_pixels",
    "box2d_tight",
    "visibility",
    "truncation",
]
LIDAR_FIELDS = ["range_m", "semantic", "intensity", "ring_elevation", "column_azimuth"]


def depth_histogram() -> Histogram:
    return Histogram(0.01, 1000.0, 75, log=True, unit="m")


class CameraStats:
    """Everything ``simgen stats`` measures on one camera."""

    def __init__(self, classes: list[str], stuff: list[bool]) -> None:
        self.images = ImageStats()
        self.objects = ObjectStats(classes, stuff)
        self.depth = depth_histogram()
        self.resolutions: set[tuple[int, int]] = set()
        self.frames = 0

    def add_block(
        self, b: dict[str, np.ndarray], object_class: np.ndarray, where: list[dict[str, Any]]
    ) -> None:
        self.frames += _length(b)
        if "rgb" in b:
            self.images.add_images(b["rgb"])
        if "depth_m" in b:
            d = b["depth_m"]
            self.depth.add(d[d > 0])
        labels = b.get("semantic", b.get("instance"))
        if labels is None:
            return
        f, h, w = labels.shape[:3]
        self.resolutions.add((int(w), int(h)))
        n = len(object_class)
        c = len(self.objects.classes)
        if "semantic" in b:
            sem = b["semantic"]
        else:
            lut = np.concatenate([[0], object_class]).astype(np.int64)
            sem = lut[np.minimum(b["instance"], n)]
        class_pixels = _per_frame_bincount(sem, c)
        if "visible_pixels" in b and "box2d_tight" in b:
            visible, boxes = b["visible_pixels"], b["box2d_tight"]
        elif "instance" in b:
            visible, boxes = _boxes_from_masks(b["instance"], n)
        else:
            visible, boxes = np.zeros((f, n), np.int32), np.zeros((f, n, 4), np.int32)
        self.objects.add_frames(
            class_pixels=class_pixels,
            visible_pixels=visible,
            boxes=boxes,
            object_class=object_class,
            width=int(w),
            height=int(h),
            visibility=b.get("visibility"),
            truncation=b.get("truncation"),
            where=where,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "resolutions": sorted([list(r) for r in self.resolutions]),
            "images": self.images.to_json(),
            "objects": self.objects.to_json(),
            "depth_m": self.depth.to_json(),
        }


def _per_frame_bincount(labels: np.ndarray, c: int) -> np.ndarray:
    """(F, c) counts of each label value per frame (values >= c ignored)."""
    f = labels.shape[0]
    lab = np.asarray(labels).reshape(f, -1).astype(np.int64)
    lab = np.where(lab < c, lab, c)
    offs = (np.arange(f, dtype=np.int64) * (c + 1))[:, None]
    return np.bincount((lab + offs).ravel(), minlength=f * (c + 1)).reshape(f, c + 1)[:, :c]


def _boxes_from_masks(instance: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    from simgen.labels.boxes import mask_boxes

    boxes, counts = zip(*(mask_boxes(m, n) for m in instance), strict=True)
    return np.stack(counts), np.stack(boxes)


class LidarStats:
    """Ranges, intensities, points per sweep, return rate and points per class of one LiDAR."""

    def __init__(self, classes: list[str]) -> None:
        self.classes = classes
        self.frames = 0
        self.range = Histogram(0.05, 500.0, 60, log=True, unit="m")
        self.intensity = Histogram(0.0, 1.0, 20)
        self.points_per_frame = Histogram(1.0, 1e7, 56, log=True, unit="points")
        self.return_rate = Histogram(0.0, 1.0, 20, unit="returns / beams")
        self.class_points = np.zeros(len(classes), np.int64)

    def add_block(self, b: dict[str, np.ndarray]) -> None:
        if "range_m_offsets" not in b:
            return
        off = b["range_m_offsets"]
        per_frame = np.diff(off)
        self.frames += len(per_frame)
        self.range.add(b["range_m"])
        if "intensity" in b:
            self.intensity.add(b["intensity"])
        self.points_per_frame.add(per_frame)
        if "ring_elevation" in b and "column_azimuth" in b:
            beams = len(b["ring_elevation"]) * len(b["column_azimuth"])
            self.return_rate.add(per_frame / max(beams, 1))
        if "semantic" in b:
            sem = np.minimum(b["semantic"].astype(np.int64), len(self.classes))
            self.class_points += np.bincount(sem, minlength=len(self.classes) + 1)[
                : len(self.classes)
            ]

    def to_json(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "range_m": self.range.to_json(),
            "intensity": self.intensity.to_json(),
            "points_per_frame": self.points_per_frame.to_json(),
            "return_rate": self.return_rate.to_json(),
            "class_points": {
                c: int(n) for c, n in zip(self.classes, self.class_points, strict=True)
            },
        }


def _object_class(ep: Episode) -> np.ndarray:
    """Class id per object, indexed by ``instance_id - 1``."""
    objs = ep.objects
    n = max((o["instance_id"] for o in objs), default=0)
    out = np.zeros(n, np.int64)
    for o in objs:
        out[o["instance_id"] - 1] = o["class_id"]
    return out


def _block_frames(ep: Episode, sensor: str, fields: list[str]) -> int:
    """Frames per block so that one block's arrays stay under BLOCK_BYTES."""
    g = ep.g["sensors"][sensor]
    n = max(ep.num_frames(sensor), 1)
    per_frame = 0
    for key in fields:
        if key in g:
            ds = g[key]
            if ds.attrs.get("layout") != "constant":
                per_frame += ds.size * ds.dtype.itemsize // n
    return int(max(1, BLOCK_BYTES // max(per_frame, 1)))


def _camera_fields(ep: Episode, sensor: str) -> list[str]:
    """The camera arrays to read: the instance map only where the labels derived from it
    (semantic, visible pixels, boxes) are not stored."""
    g = ep.g["sensors"][sensor]
    if all(k in g for k in ("semantic", "visible_pixels", "box2d_tight")):
        return [f for f in CAMERA_FIELDS if f != "instance"]
    return CAMERA_FIELDS


def dataset_meta(ds: Dataset) -> dict[str, Any]:
    """Provenance and the scene's self-description (for the dataset card)."""
    import hashlib

    a = ds.attrs
    scene = json.loads(a.get("scene_json") or "{}")
    text = str(a.get("scene_text") or "")
    stuff = [bool(x) for x in ds.file["class_is_stuff"][()]] if "class_is_stuff" in ds.file else []
    return {
        "path": str(ds.path),
        "format": a.get("format"),
        "format_version": a.get("format_version"),
        "simgen_version": a.get("simgen_version"),
        "created_utc": a.get("created_utc"),
        "scene_path": a.get("scene_path") or "",
        "base_seed": ds.base_seed,
        "complete": ds.complete,
        "classes": ds.classes,
        "class_is_stuff": stuff or [False] * len(ds.classes),
        "render_backend": _json_or_text(a.get("render_backend", "")),
        "conventions": _json_or_text(a.get("conventions", "")),
        "scene": {
            k: scene.get(k)
            for k in ("name", "description", "license", "intended_use", "limitations")
        },
        "scene_sha256": hashlib.sha256(text.encode()).hexdigest() if text else None,
        "num_scene_objects": len(scene.get("objects", []) or []),
        "sensors": {
            s.get("name"): s.get("kind")
            for s in scene.get("sensors", []) or []
            if isinstance(s, dict)
        },
    }


def _json_or_text(s: Any) -> Any:
    try:
        return json.loads(s) if isinstance(s, str) and s[:1] in "{[" else s
    except ValueError:
        return s


def compute_stats(
    path: str | Path,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Statistics of a whole dataset in one streaming pass (see docs/quality.md for the keys).
    ``progress(done, total)`` is called after each episode."""
    t0 = time.perf_counter()
    with Dataset(path) as ds:
        meta = dataset_meta(ds)
        classes, stuff = meta["classes"], meta["class_is_stuff"]
        scene_json = json.loads(ds.attrs.get("scene_json") or "{}")
        scene_dir = str(Path(meta["scene_path"]).parent) if meta["scene_path"] else None
        params = ParameterStats(scene_json, scene_dir)
        scenarios = ScenarioStats(scene_json)
        cameras: dict[str, CameraStats] = {}
        lidars: dict[str, LidarStats] = {}
        frames: dict[str, int] = {}
        steps: dict[str, int] = {}  # frames per block, by sensor (from its first episode)
        episode_frames = Moments()
        indices = ds.episode_indices
        for done, index in enumerate(indices, 1):
            ep = ds.episode(index)
            params.add_episode(ep.params, ep.per_frame())
            scenarios.add_episode(ep.scenarios(), ep.events())
            oc = _object_class(ep)
            total = 0
            for name, kind in ep.sensors.items():
                n = ep.num_frames(name)
                frames[name] = frames.get(name, 0) + n
                total += n
                if kind == "camera":
                    cam = cameras.setdefault(name, CameraStats(classes, stuff))
                    fields = _camera_fields(ep, name)
                    step = steps.setdefault(name, _block_frames(ep, name, fields))
                    for a, blk in _blocks(ep, name, fields, step):
                        where = [
                            {"episode": ep.index, "sensor": name, "frame": a + i}
                            for i in range(_length(blk))
                        ]
                        cam.add_block(blk, oc, where)
                elif kind == "lidar":
                    lid = lidars.setdefault(name, LidarStats(classes))
                    step = steps.setdefault(name, _block_frames(ep, name, LIDAR_FIELDS))
                    for _, blk in _blocks(ep, name, LIDAR_FIELDS, step):
                        lid.add_block(blk)
            episode_frames.add(np.array([total]))
            if progress is not None:
                progress(done, len(indices))
        seconds = time.perf_counter() - t0
        n_frames = sum(frames.values())
        return {
            "stats_version": STATS_VERSION,
            "dataset": meta,
            "episodes": len(indices),
            "episode_indices": index_ranges(indices),
            "frames": {
                "total": n_frames,
                "per_sensor": frames,
                "per_episode": episode_frames.to_json(),
            },
            "cameras": {k: v.to_json() for k, v in cameras.items()},
            "lidars": {k: v.to_json() for k, v in lidars.items()},
            **params.result(),
            **scenarios.result(),
            "failures": dataset_failures(ds),
            "problems": ds.problems(),
            "seconds": seconds,
            "frames_per_second": n_frames / seconds if seconds > 0 else 0.0,
        }


def _blocks(
    ep: Episode, sensor: str, fields: list[str], step: int
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """(first frame, arrays) of consecutive blocks of ``step`` frames."""
    n = ep.num_frames(sensor)
    for a in range(0, n, step):
        yield a, ep.frame_block(sensor, a, min(n, a + step), fields)


def _length(block: dict[str, np.ndarray]) -> int:
    for key in ("rgb", "semantic", "instance", "depth_m"):
        if key in block:
            return int(block[key].shape[0])
    return 0


def save_stats(stats: dict[str, Any], path: str | Path) -> Path:
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".partial")
        tmp.write_text(json.dumps(stats, indent=1, default=_json_default) + "\n")
        tmp.replace(p)
    except OSError as e:
        raise OutputError(f"cannot write {p}: {e}") from None
    return p


def load_stats(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise DatasetError(f"{p}: not a readable statistics file ({e})") from None
    if not isinstance(d, dict) or d.get("stats_version") != STATS_VERSION:
        raise DatasetError(f"{p}: not a simgen statistics file (stats_version {STATS_VERSION})")
    return d


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, set):
        return sorted(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
