"""What every exporter shares: the output folder, frame iteration, image files."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simgen.errors import DatasetError, OutputError
from simgen.io.reader import Dataset, Episode

#: Written into every export folder; ``--force`` clears only folders that hold it.
MARKER = "simgen-export.json"


@dataclass
class ExportSummary:
    format: str
    out: Path
    frames: int = 0
    objects: int = 0  # annotations / label lines written
    seconds: float = 0.0
    files: dict[str, int] = field(default_factory=dict)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def prepare_out(out: Path, force: bool, fmt: str, dataset: Path) -> None:
    """Create the export folder. A non-empty folder is refused unless ``force``; with ``force``
    a previous simgen export there is cleared, any other folder is written into."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise OutputError(f"{out} is not empty; pass --force to export into it anyway")
        if (out / MARKER).is_file():
            for child in out.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MARKER).write_text(
            json.dumps(
                {
                    "format": fmt,
                    "dataset": str(dataset),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                },
                indent=1,
            )
            + "\n"
        )
    except OSError as e:
        raise OutputError(f"cannot write into {out}: {e}") from None


def mkdirs(*paths: Path) -> None:
    for p in paths:
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create {p}: {e}") from None


def open_complete(path: Path) -> Dataset:
    ds = Dataset(path)
    if not ds.complete:
        why = ds.incomplete_reason()
        ds.close()
        raise DatasetError(f"{path}: the dataset is incomplete: {why}")
    return ds


def cameras(ep: Episode, chosen: list[str] | None) -> list[str]:
    names = [n for n, k in ep.sensors.items() if k == "camera"]
    if chosen:
        missing = [c for c in chosen if c not in names]
        if missing:
            raise DatasetError(
                f"episode {ep.index} has no camera {missing[0]!r}; cameras: {', '.join(names)}"
            )
        return [c for c in names if c in chosen]
    return names


def require(ep: Episode, camera: str, fields: list[str], why: str) -> None:
    have = set(ep.fields(camera))
    missing = [f for f in fields if f not in have]
    if missing:
        raise DatasetError(
            f"camera {camera!r} of episode {ep.index} has no {', '.join(missing)}; {why}"
        )


def frames(
    ds: Dataset, chosen: list[str] | None, fields: list[str]
) -> Iterator[tuple[Episode, str, int, dict[str, np.ndarray]]]:
    """(episode, camera, frame index, arrays) of every camera frame, episode by episode; only
    ``fields`` that the camera has are read."""
    for ep in ds:
        for cam in cameras(ep, chosen):
            have = set(ep.fields(cam))
            want = [f for f in fields if f in have]
            for k in range(ep.num_frames(cam)):
                yield ep, cam, k, ep.frame(cam, k, fields=want)


def write_png(path: Path, image: np.ndarray) -> None:
    import cv2

    img = image[..., ::-1] if image.ndim == 3 else image
    if not cv2.imwrite(str(path), np.ascontiguousarray(img)):
        raise OutputError(f"cannot write {path}")


def scene_keypoint_names(ds: Dataset) -> dict[str, list[str]]:
    """Keypoint names per class, in first-declaration order over the scene's objects."""
    scene = json.loads(ds.attrs["scene_json"])
    out: dict[str, list[str]] = {}
    for o in scene.get("objects", []):
        names = out.setdefault(o["class"], [])
        for k in o.get("keypoints") or {}:
            if k not in names:
                names.append(k)
    return out


def class_is_stuff(ds: Dataset) -> np.ndarray:
    f = ds.file
    if "class_is_stuff" in f:
        return np.asarray(f["class_is_stuff"][()], bool)
    return np.zeros(len(ds.classes), bool)


def episode_keypoints(ep: Episode) -> dict[int, list[tuple[int, str]]]:
    """instance id -> [(row in the keypoint table, name)]."""
    out: dict[int, list[tuple[int, str]]] = {}
    if "keypoints" not in ep.g:
        return out
    g = ep.g["keypoints"]
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in g["name"][()]]
    for row, (inst, name) in enumerate(zip(g["instance_id"][()], names, strict=True)):
        out.setdefault(int(inst), []).append((row, name))
    return out


def stem(ep: Episode, camera: str, k: int) -> str:
    return f"{ep.index:06d}_{camera}_{k:06d}"


def json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)
