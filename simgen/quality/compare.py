"""Compare two datasets (simgen or COCO): distances per statistic and a domain-gap summary.

Each side is reduced to the same histograms (:mod:`simgen.quality.images`,
:mod:`simgen.quality.objects`; a simgen dataset pools its cameras). For each histogram:

* **KS**: the largest difference of the two (binned) CDFs, 0..1;
* **W1**: the earth mover's distance between the binned distributions, as a share of the
  histogram's span (log10 span for log histograms), 0..1;

and for class frequencies the **total variation** distance between the shares of instances per
class name (0..1; classes present on one side only count fully). The summary orders the
statistics by distance (KS, or TV for classes), largest first, and says which way each differs.
A dataset compared with itself gives 0 everywhere.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from simgen.quality.accum import Histogram, cdf_distances
from simgen.quality.images import ImageStats
from simgen.quality.objects import ObjectStats

SMALL, LARGE = 0.1, 0.25

#: statistic -> (where, key, words for "B lower" and "B higher")
STATISTICS: dict[str, tuple[str, str, tuple[str, str]]] = {
    "brightness": ("measures", "brightness", ("darker", "brighter")),
    "contrast": ("measures", "contrast", ("less contrast", "more contrast")),
    "saturation": ("measures", "saturation", ("less saturated", "more saturated")),
    "sharpness": ("measures", "sharpness", ("blurrier", "sharper")),
    "edge density": ("measures", "edge_density", ("fewer edges", "more edges")),
    "red values": ("channels", "red", ("less red", "more red")),
    "green values": ("channels", "green", ("less green", "more green")),
    "blue values": ("channels", "blue", ("less blue", "more blue")),
    "box size": ("objects", "box_size", ("smaller boxes", "larger boxes")),
    "box aspect": ("objects", "box_aspect", ("taller boxes", "wider boxes")),
    "box center x": ("objects", "box_center_x", ("boxes further left", "boxes further right")),
    "box center y": ("objects", "box_center_y", ("boxes higher up", "boxes lower down")),
    "instances per image": (
        "objects",
        "instances_per_frame",
        ("fewer instances per image", "more instances per image"),
    ),
}


def image_set(stats: dict[str, Any], sensors: list[str] | None = None) -> dict[str, Any]:
    """The comparable part of statistics: ``images`` and ``objects`` (a COCO result as is; a
    simgen result with its cameras, or those named, pooled)."""
    if "cameras" not in stats:
        return {"name": stats["source"]["path"], "kind": "coco", **stats}
    cams = [c for c in stats["cameras"] if sensors is None or c in sensors]
    images, objects = ImageStats(), None
    for c in cams:
        images.merge(ImageStats.from_json(stats["cameras"][c]["images"]))
        o = ObjectStats.from_json(stats["cameras"][c]["objects"])
        if objects is None:
            objects = o
        else:
            objects.merge(o)
    if objects is None:
        objects = ObjectStats(["background"], [False])
    return {
        "name": stats["dataset"]["path"],
        "kind": "simgen",
        "cameras": cams,
        "images": images.to_json(),
        "objects": objects.to_json(),
    }


def _hist(side: dict[str, Any], where: str, key: str) -> Histogram | None:
    d = side["objects"].get(key) if where == "objects" else side["images"][where].get(key)
    return Histogram.from_json(d) if d else None


def class_shares(objects: dict[str, Any]) -> dict[str, float]:
    counts = {n: c["instances"] for n, c in objects["classes"].items() if c["instances"] > 0}
    total = sum(counts.values())
    return {n: v / total for n, v in counts.items()} if total else {}


def level(distance: float) -> str:
    if not math.isfinite(distance):
        return "n/a"
    return "small" if distance < SMALL else ("moderate" if distance < LARGE else "large")


def compare_stats(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Distances between two image sets (:func:`image_set` results), largest gap first."""
    rows: list[dict[str, Any]] = []
    for name, (where, key, words) in STATISTICS.items():
        ha, hb = _hist(a, where, key), _hist(b, where, key)
        if ha is None or hb is None or ha.total == 0 or hb.total == 0:
            continue
        ks, w1 = cdf_distances(ha, hb)
        ma, mb = ha.moments.mean, hb.moments.mean
        rows.append(
            {
                "statistic": name,
                "key": f"{where}.{key}",
                "metric": "KS",
                "distance": ks,
                "ks": ks,
                "w1": w1,
                "mean_a": ma,
                "mean_b": mb,
                "level": level(ks),
                "summary": _sentence(name, ks, ma, mb, words),
            }
        )
    sa, sb = class_shares(a["objects"]), class_shares(b["objects"])
    classes = sorted(set(sa) | set(sb))
    if sa and sb:
        tv = 0.5 * sum(abs(sa.get(c, 0.0) - sb.get(c, 0.0)) for c in classes)
        only_a = [c for c in classes if c not in sb]
        only_b = [c for c in classes if c not in sa]
        extra = []
        if only_a:
            extra.append("only in A: " + ", ".join(only_a))
        if only_b:
            extra.append("only in B: " + ", ".join(only_b))
        rows.append(
            {
                "statistic": "class frequencies",
                "key": "objects.classes",
                "metric": "TV",
                "distance": tv,
                "ks": None,
                "w1": None,
                "mean_a": None,
                "mean_b": None,
                "level": level(tv),
                "summary": f"class frequencies: total variation {tv:.3f} ({level(tv)})"
                + (f"; {'; '.join(extra)}" if extra else ""),
            }
        )
    rows.sort(key=lambda r: -r["distance"] if math.isfinite(r["distance"]) else 1.0)
    return {
        "a": _describe(a),
        "b": _describe(b),
        "distances": rows,
        "class_shares": {c: [sa.get(c, 0.0), sb.get(c, 0.0)] for c in classes},
        "summary": [r["summary"] for r in rows if r["level"] != "small"]
        or ["no statistic differs by more than a small amount (all distances < 0.1)"],
    }


def _describe(side: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": side["name"],
        "kind": side["kind"],
        "images": side["images"]["frames"],
        "instances": sum(c["instances"] for c in side["objects"]["classes"].values()),
    }


def _sentence(name: str, d: float, ma: float, mb: float, words: tuple[str, str]) -> str:
    lv = level(d)
    if lv == "small" or ma == mb:
        return f"{name}: KS {d:.3f} ({lv})"
    return f"{name}: B {words[1] if mb > ma else words[0]} (mean {mb:.3g} vs {ma:.3g}), KS {d:.3f} ({lv})"


def load_side(path: str | Path, sensors: list[str] | None = None) -> dict[str, Any]:
    """Statistics of a simgen dataset or a COCO dataset, as an image set."""
    from simgen.quality.coco import coco_stats, is_coco
    from simgen.quality.engine import compute_stats

    if is_coco(path):
        return image_set(coco_stats(path))
    return image_set(compute_stats(path), sensors)


def compare(a: str | Path, b: str | Path, sensors: list[str] | None = None) -> dict[str, Any]:
    """Compare dataset ``a`` with ``b`` (either a simgen dataset or a COCO dataset)."""
    return compare_stats(load_side(a, sensors), load_side(b, sensors))
