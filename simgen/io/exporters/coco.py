"""COCO instances (detection, segmentation, keypoints) from a simgen dataset.

Layout::

    OUT/images/<episode>_<camera>_<frame>.png
    OUT/annotations/instances.json

One image per camera frame; one annotation per visible object of a 'thing' class, with its
visible mask as pycocotools RLE, the tight box, the area (mask pixels), ``iscrowd: 0`` and, where
the class declares keypoints, COCO keypoints ``[x, y, v] * n`` (pixel coordinates as in the
dataset, v = 0 / 1 / 2: outside the image / hidden / visible; x = y = 0 when v = 0). Extra
fields: ``amodal_bbox``, ``visibility``, ``truncation`` (with the ``amodal`` label),
``simgen_instance_id`` and ``simgen_object``. Categories use the dataset's class ids.

The JSON is streamed: images and annotations go to temporary files while frames are exported
and are joined at the end, so memory stays bounded.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import IO, Any

import numpy as np

from simgen.io.exporters.common import (
    ExportSummary,
    class_is_stuff,
    episode_keypoints,
    frames,
    json_default,
    mkdirs,
    open_complete,
    prepare_out,
    require,
    scene_keypoint_names,
    stem,
    write_png,
)
from simgen.labels.boxes import mask_boxes

FIELDS = [
    "rgb",
    "instance",
    "box2d_tight",
    "box2d_amodal",
    "visibility",
    "truncation",
    "keypoints_uv",
    "keypoints_visibility",
]


def categories(ds: Any) -> list[dict[str, Any]]:
    stuff = class_is_stuff(ds)
    kp = scene_keypoint_names(ds)
    out = []
    for cid, name in enumerate(ds.classes):
        if cid == 0 or stuff[cid]:
            continue
        cat: dict[str, Any] = {"id": cid, "name": name, "supercategory": "thing"}
        if kp.get(name):
            cat["keypoints"] = kp[name]
            cat["skeleton"] = []
        out.append(cat)
    return out


def export_coco(
    dataset: str | Path, out: str | Path, *, force: bool = False, sensors: list[str] | None = None
) -> ExportSummary:
    """Write the dataset's camera frames as a COCO instances dataset in ``out``."""
    t0 = time.perf_counter()
    out = Path(out)
    with open_complete(Path(dataset)) as ds:
        prepare_out(out, force, "coco", Path(dataset))
        images_dir, ann_dir = out / "images", out / "annotations"
        mkdirs(images_dir, ann_dir)
        cats = categories(ds)
        things = {c["id"]: c for c in cats}
        summary = ExportSummary("coco", out)
        img_tmp, ann_tmp = ann_dir / ".images.part", ann_dir / ".annotations.part"
        with img_tmp.open("w") as fi, ann_tmp.open("w") as fa:
            last_ep, kp_table, names = -1, {}, {}
            for ep, cam, k, f in frames(ds, sensors, FIELDS):
                if ep.index != last_ep:
                    last_ep = ep.index
                    kp_table = episode_keypoints(ep)
                    names = {o["instance_id"]: o for o in ep.objects}
                require(ep, cam, ["rgb", "instance"], "COCO needs RGB images and instance masks")
                name = stem(ep, cam, k) + ".png"
                write_png(images_dir / name, f["rgb"])
                summary.frames += 1
                h, w = f["instance"].shape
                image_id = summary.frames
                _write_item(
                    fi,
                    {
                        "id": image_id,
                        "file_name": name,
                        "width": w,
                        "height": h,
                        "simgen_episode": ep.index,
                        "simgen_camera": cam,
                        "simgen_frame": k,
                    },
                )
                for ann in _annotations(f, names, things, kp_table):
                    summary.objects += 1
                    ann.update(id=summary.objects, image_id=image_id)
                    _write_item(fa, ann)
        path = ann_dir / "instances.json"
        _assemble(path, cats, img_tmp, ann_tmp, dataset)
        summary.files = {"images": summary.frames, "annotations": 1}
    summary.seconds = time.perf_counter() - t0
    return summary


def _annotations(
    f: dict[str, np.ndarray],
    objects: dict[int, dict[str, Any]],
    things: dict[int, dict[str, Any]],
    kp_table: dict[int, list[tuple[int, str]]],
) -> list[dict[str, Any]]:
    from pycocotools import mask as mask_utils

    inst = f["instance"]
    n = len(objects)
    boxes = f["box2d_tight"] if "box2d_tight" in f else mask_boxes(inst, n)[0]
    out = []
    for i in np.unique(inst):
        i = int(i)
        if i == 0 or objects[i]["class_id"] not in things:
            continue
        cat = things[objects[i]["class_id"]]
        mask = np.asfortranarray((inst == i).astype(np.uint8))
        rle = mask_utils.encode(mask)
        u0, v0, u1, v1 = (int(x) for x in boxes[i - 1])
        ann: dict[str, Any] = {
            "category_id": cat["id"],
            "segmentation": {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")},
            "area": float(mask_utils.area(rle)),
            "bbox": [u0, v0, u1 - u0, v1 - v0],
            "iscrowd": 0,
            "simgen_instance_id": i,
            "simgen_object": objects[i]["name"],
        }
        if "box2d_amodal" in f:
            a = [int(x) for x in f["box2d_amodal"][i - 1]]
            ann["amodal_bbox"] = [a[0], a[1], a[2] - a[0], a[3] - a[1]]
            ann["visibility"] = _num(f["visibility"][i - 1])
            ann["truncation"] = _num(f["truncation"][i - 1])
        if "keypoints" in cat:
            ann.update(_keypoints(f, cat["keypoints"], kp_table.get(i, [])))
        out.append(ann)
    return out


def _keypoints(
    f: dict[str, np.ndarray], names: list[str], rows: list[tuple[int, str]]
) -> dict[str, Any]:
    flat = [0.0] * (3 * len(names))
    by_name = {name: row for row, name in rows}
    count = 0
    if "keypoints_uv" in f:
        for j, name in enumerate(names):
            row = by_name.get(name)
            if row is None:
                continue
            v = int(f["keypoints_visibility"][row])
            if v > 0:
                u, vv = (float(x) for x in f["keypoints_uv"][row])
                flat[3 * j : 3 * j + 3] = [u, vv, v]
                count += 1
    return {"keypoints": flat, "num_keypoints": count}


def _num(x: Any) -> float | None:
    v = float(x)
    return None if math.isnan(v) else v


def _write_item(fh: IO[str], item: dict[str, Any]) -> None:
    if fh.tell():
        fh.write(",\n")
    fh.write(json.dumps(item, default=json_default))


def _assemble(
    path: Path, cats: list[dict[str, Any]], images: Path, anns: Path, dataset: Any
) -> None:
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w") as fh:
        info = {"description": f"simgen export of {dataset}", "version": "1.0"}
        fh.write('{"info": ' + json.dumps(info) + ', "licenses": [], ')
        fh.write('"categories": ' + json.dumps(cats) + ',\n"images": [\n')
        with images.open() as src:
            shutil.copyfileobj(src, fh)
        fh.write('\n],\n"annotations": [\n')
        with anns.open() as src:
            shutil.copyfileobj(src, fh)
        fh.write("\n]}\n")
    os.replace(tmp, path)
    images.unlink()
    anns.unlink()
