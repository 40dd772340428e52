"""Statistics of a dataset in COCO format (a folder of images + an instances JSON), measured
exactly as ``simgen stats`` measures a camera, so the two compare bin for bin.

Accepted paths: a folder holding ``annotations/*.json`` and ``images/`` (what ``simgen export
--format coco`` writes), or the annotations JSON itself (images are looked up next to it, in
``images/`` beside it, or in ``../images/``). The annotations file is read whole (as every COCO
tool does); images are streamed one at a time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from simgen.errors import DatasetError
from simgen.quality.images import ImageStats
from simgen.quality.objects import ObjectStats


def is_coco(path: str | Path) -> bool:
    p = Path(path)
    if p.is_file():
        return p.suffix == ".json"
    return p.is_dir() and any((p / "annotations").glob("*.json"))


def locate(path: str | Path) -> tuple[Path, Path]:
    """(annotations JSON, images folder) of a COCO dataset path."""
    p = Path(path)
    if p.is_dir():
        found = sorted((p / "annotations").glob("*.json"))
        if not found:
            raise DatasetError(f"{p}: no annotations/*.json (not a COCO folder)")
        instances = [f for f in found if f.name.startswith("instances")]
        ann = (instances or found)[0]
        images = p / "images"
        return ann, images if images.is_dir() else p
    if not p.is_file():
        raise DatasetError(f"{p}: no such COCO annotations file or folder")
    for cand in (p.parent / "images", p.parent.parent / "images", p.parent):
        if cand.is_dir():
            return p, cand
    return p, p.parent  # pragma: no cover - p.parent always exists


def load_annotations(path: Path) -> dict[str, Any]:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path}: not a readable COCO annotations file ({e})") from None
    if not isinstance(d, dict) or "images" not in d or "annotations" not in d:
        raise DatasetError(f"{path}: not COCO instances (needs 'images' and 'annotations')")
    return d


def coco_stats(
    path: str | Path, *, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Image and object statistics of a COCO dataset (the ``images``/``objects`` parts of a
    camera in ``simgen stats``). Crowd annotations (``iscrowd: 1``) are left out."""
    t0 = time.perf_counter()
    ann_path, images_dir = locate(path)
    d = load_annotations(ann_path)
    cats = sorted(d.get("categories", []), key=lambda c: c["id"])
    names = ["background", *(str(c["name"]) for c in cats)]
    cat_index = {c["id"]: i + 1 for i, c in enumerate(cats)}
    by_image: dict[Any, list[dict[str, Any]]] = {}
    for a in d["annotations"]:
        if not a.get("iscrowd", 0) and a.get("category_id") in cat_index:
            by_image.setdefault(a["image_id"], []).append(a)
    images, objects = ImageStats(), ObjectStats(names, [False] * len(names))
    missing: list[str] = []
    for done, img in enumerate(d["images"], 1):
        _add_image(
            img, by_image.get(img["id"], []), images_dir, cat_index, images, objects, missing
        )
        if progress is not None:
            progress(done, len(d["images"]))
    seconds = time.perf_counter() - t0
    return {
        "source": {
            "kind": "coco",
            "path": str(path),
            "annotations": str(ann_path),
            "images_dir": str(images_dir),
            "images": len(d["images"]),
            "missing_images": len(missing),
            "missing_examples": missing[:10],
        },
        "images": images.to_json(),
        "objects": objects.to_json(),
        "seconds": seconds,
    }


def _add_image(
    img: dict[str, Any],
    anns: list[dict[str, Any]],
    images_dir: Path,
    cat_index: dict[Any, int],
    images: ImageStats,
    objects: ObjectStats,
    missing: list[str],
) -> None:
    file = images_dir / str(img["file_name"])
    bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
    if bgr is None:
        missing.append(str(img["file_name"]))
        w, h = int(img.get("width", 0)), int(img.get("height", 0))
    else:
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        images.add_images(rgb[None])
        h, w = rgb.shape[:2]
        w, h = int(img.get("width") or w), int(img.get("height") or h)
    if w <= 0 or h <= 0:
        return
    n = len(anns)
    boxes = np.zeros((1, n, 4), np.float64)
    oc = np.zeros(n, np.int64)
    class_pixels = np.zeros((1, len(objects.classes)), np.int64)
    for i, a in enumerate(anns):
        x, y, bw, bh = (float(v) for v in a["bbox"])
        boxes[0, i] = (x, y, x + bw, y + bh)
        oc[i] = cat_index[a["category_id"]]
        class_pixels[0, oc[i]] += round(float(a.get("area", bw * bh)))
    objects.add_frames(
        class_pixels=class_pixels,
        visible_pixels=np.ones((1, n), np.int64),
        boxes=boxes,
        object_class=oc,
        width=w,
        height=h,
        where=[{"image": str(img["file_name"])}],
    )
