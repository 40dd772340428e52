"""YOLO detection and segmentation labels (Ultralytics layout) from a simgen dataset.

Layout::

    OUT/images/<episode>_<camera>_<frame>.png
    OUT/labels/<same stem>.txt          detection: class cx cy w h (normalized)
    OUT/data.yaml                       detection dataset (train and val: images)
    OUT/segment/images -> ../images     the same images (a relative symlink)
    OUT/segment/labels/<same stem>.txt  segmentation: class x1 y1 x2 y2 ... (normalized polygon)
    OUT/segment/data.yaml

YOLO class indices are the dataset's 'thing' classes in class-table order, from 0 (listed in
``names``). Coordinates are normalized by the image size in pixel-edge units (pixel u spans
[u, u+1]). A mask of several pieces becomes one polygon that visits each piece through
zero-width bridges, so it rasterizes back to the same pieces.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from simgen.io.exporters.common import (
    ExportSummary,
    class_is_stuff,
    frames,
    mkdirs,
    open_complete,
    prepare_out,
    require,
    stem,
    write_png,
)
from simgen.labels.boxes import mask_boxes

FIELDS = ["rgb", "instance", "box2d_tight"]


def mask_polygon(mask: np.ndarray) -> np.ndarray:
    """(M, 2) polygon (pixel-edge coordinates) covering a boolean mask's pieces."""
    import cv2

    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    pieces = [c.reshape(-1, 2).astype(np.float64) + 0.5 for c in contours if len(c) >= 1]
    if not pieces:
        return np.zeros((0, 2))
    pieces.sort(key=lambda p: (p[:, 0].min(), p[:, 1].min()))
    path = pieces[0]
    for piece in pieces[1:]:
        # bridge from the closest point of the path so far to the closest point of the piece
        d = np.linalg.norm(path[:, None, :] - piece[None, :, :], axis=-1)
        a, b = np.unravel_index(int(np.argmin(d)), d.shape)
        loop = np.concatenate([piece[b:], piece[: b + 1]])
        path = np.concatenate([path[: a + 1], loop, path[a:]])
    return path


def export_yolo(
    dataset: str | Path, out: str | Path, *, force: bool = False, sensors: list[str] | None = None
) -> ExportSummary:
    """Write detection labels, segmentation labels and both data.yaml files into ``out``."""
    t0 = time.perf_counter()
    out = Path(out)
    with open_complete(Path(dataset)) as ds:
        prepare_out(out, force, "yolo", Path(dataset))
        images, det, seg = out / "images", out / "labels", out / "segment" / "labels"
        mkdirs(images, det, seg)
        link = out / "segment" / "images"
        if not link.exists():
            os.symlink(os.path.join("..", "images"), link, target_is_directory=True)
        stuff = class_is_stuff(ds)
        things = [c for c in range(1, len(ds.classes)) if not stuff[c]]
        yolo_id = {c: i for i, c in enumerate(things)}
        names = {i: ds.classes[c] for c, i in yolo_id.items()}
        for folder in (out, out / "segment"):
            _data_yaml(folder / "data.yaml", names)
        summary = ExportSummary("yolo", out)
        last_ep, class_of = -1, {}
        for ep, cam, k, f in frames(ds, sensors, FIELDS):
            if ep.index != last_ep:
                last_ep = ep.index
                class_of = {o["instance_id"]: o["class_id"] for o in ep.objects}
            require(ep, cam, ["rgb", "instance"], "YOLO needs RGB images and instance masks")
            name = stem(ep, cam, k)
            write_png(images / f"{name}.png", f["rgb"])
            det_lines, seg_lines = _lines(f, class_of, yolo_id)
            (det / f"{name}.txt").write_text("".join(line + "\n" for line in det_lines))
            (seg / f"{name}.txt").write_text("".join(line + "\n" for line in seg_lines))
            summary.frames += 1
            summary.objects += len(det_lines)
        summary.files = {"images": summary.frames}
    summary.seconds = time.perf_counter() - t0
    return summary


def _lines(
    f: dict[str, np.ndarray], class_of: dict[int, int], yolo_id: dict[int, int]
) -> tuple[list[str], list[str]]:
    inst = f["instance"]
    h, w = inst.shape
    boxes = f["box2d_tight"] if "box2d_tight" in f else mask_boxes(inst, len(class_of))[0]
    det, seg = [], []
    for i in np.unique(inst):
        i = int(i)
        if i == 0 or class_of[i] not in yolo_id:
            continue
        c = yolo_id[class_of[i]]
        u0, v0, u1, v1 = (float(x) for x in boxes[i - 1])
        det.append(
            f"{c} {(u0 + u1) / 2 / w:.6f} {(v0 + v1) / 2 / h:.6f} "
            f"{(u1 - u0) / w:.6f} {(v1 - v0) / h:.6f}"
        )
        poly = mask_polygon(inst == i)
        if len(poly) >= 3:
            coords = " ".join(f"{x / w:.6f} {y / h:.6f}" for x, y in poly)
            seg.append(f"{c} {coords}")
    return det, seg


def _data_yaml(path: Path, names: dict[int, Any]) -> None:
    import yaml

    doc = {"path": str(path.parent.resolve()), "train": "images", "val": "images", "names": names}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
