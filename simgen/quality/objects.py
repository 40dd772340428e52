"""Object statistics of labeled images: classes, boxes, visibility (pure, streaming).

An *instance* is an object of a thing class with at least one visible pixel in a frame (what a
COCO export annotates); stuff classes (floor, road) count only by pixel coverage. Boxes are the
tight 2D boxes ``[u0, v0, u1, v1)`` of the visible mask, measured relative to the image so that
datasets of other resolutions compare:

* relative size ``sqrt(w * h / (W * H))`` (0..1), aspect ``log2(w / h)`` (0 = square),
* center ``((u0 + u1) / 2 / W, (v0 + v1) / 2 / H)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from simgen.quality.accum import Histogram

MAX_INSTANCES_BIN = 100  # instances per frame: one bin per count 0..99, more as overflow
NOTHING_VISIBLE_EXAMPLES = 20


def box_measures(boxes: np.ndarray, width: int, height: int) -> dict[str, np.ndarray]:
    """Relative size, aspect (log2 w/h) and relative center of (n, 4) ``[u0, v0, u1, v1)`` boxes
    in a W x H image (boxes with zero width or height are left out)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    ok = (w > 0) & (h > 0)
    b, w, h = b[ok], w[ok], h[ok]
    return {
        "box_size": np.sqrt(w * h / (width * height)),
        "box_aspect": np.log2(w / h),
        "box_center_x": (b[:, 0] + b[:, 2]) / 2 / width,
        "box_center_y": (b[:, 1] + b[:, 3]) / 2 / height,
    }


def _box_histograms() -> dict[str, Histogram]:
    return {
        "box_size": Histogram(0.0, 1.0, 50, unit="sqrt(box area / image area)"),
        "box_aspect": Histogram(-4.0, 4.0, 48, unit="log2(width / height)"),
        "box_center_x": Histogram(0.0, 1.0, 20, unit="u / W"),
        "box_center_y": Histogram(0.0, 1.0, 20, unit="v / H"),
    }


@dataclass
class ClassCounts:
    instances: int = 0  # (frame, object) pairs with visible pixels (things only)
    frames: int = 0  # frames in which the class has visible pixels
    pixels: int = 0  # labeled pixels over all frames

    def to_json(self) -> dict[str, int]:
        return {"instances": self.instances, "frames": self.frames, "pixels": self.pixels}


class ObjectStats:
    """Per class counts and coverage, instances per frame, box geometry histograms; optionally
    visibility and truncation (from the ``amodal`` labels)."""

    def __init__(self, classes: list[str], stuff: list[bool]) -> None:
        self.classes = list(classes)
        self.stuff = list(stuff)
        self.frames = 0
        self.pixels = 0  # all pixels of all frames
        self.per_class = {c: ClassCounts() for c in self.classes}
        self.boxes = _box_histograms()
        self.instances_per_frame = Histogram.integer(0, MAX_INSTANCES_BIN, unit="instances")
        self.visibility = Histogram(0.0, 1.0, 20, unit="visible / amodal pixels")
        self.truncation = Histogram(0.0, 1.0, 20, unit="share outside the image")
        self.nothing_visible = 0
        self.nothing_visible_examples: list[dict[str, Any]] = []

    def add_frames(
        self,
        *,
        class_pixels: np.ndarray,
        visible_pixels: np.ndarray,
        boxes: np.ndarray,
        object_class: np.ndarray,
        width: int,
        height: int,
        visibility: np.ndarray | None = None,
        truncation: np.ndarray | None = None,
        where: list[dict[str, Any]] | None = None,
    ) -> None:
        """Add a block of F frames of one camera.

        ``class_pixels`` (F, C) labeled pixels per class id; ``visible_pixels`` (F, N) per object
        (index ``instance_id - 1``); ``boxes`` (F, N, 4) tight boxes; ``object_class`` (N,) class
        id of each object; ``visibility``/``truncation`` (F, N) or None; ``where`` one record
        per frame naming it (for the examples of frames with nothing visible)."""
        f = class_pixels.shape[0]
        self.frames += f
        self.pixels += f * width * height
        c = len(self.classes)
        cp = np.zeros((f, c), np.int64)
        cp[:, : min(c, class_pixels.shape[1])] = class_pixels[:, :c]
        for cid, name in enumerate(self.classes):
            pc = self.per_class[name]
            pc.pixels += int(cp[:, cid].sum())
            pc.frames += int((cp[:, cid] > 0).sum())
        thing = ~np.asarray(self.stuff, bool)[object_class] & (object_class > 0)
        visible = (visible_pixels > 0) & thing[None, :]
        per_frame = visible.sum(axis=1)
        self.instances_per_frame.add(per_frame)
        for cid in np.unique(object_class[thing]):
            self.per_class[self.classes[cid]].instances += int(
                visible[:, object_class == cid].sum()
            )
        chosen = np.asarray(boxes)[visible]
        for k, v in box_measures(chosen, width, height).items():
            self.boxes[k].add(v)
        in_view = visible_pixels > 0
        if visibility is not None:
            self.visibility.add(np.asarray(visibility)[in_view & thing[None, :]])
        if truncation is not None:
            self.truncation.add(np.asarray(truncation)[in_view & thing[None, :]])
        for empty in np.nonzero(per_frame == 0)[0]:
            self.nothing_visible += 1
            if where is not None and len(self.nothing_visible_examples) < NOTHING_VISIBLE_EXAMPLES:
                self.nothing_visible_examples.append(where[int(empty)])

    def merge(self, other: ObjectStats) -> None:
        """Pool another camera's statistics (classes matched by name)."""
        self.frames += other.frames
        self.pixels += other.pixels
        for name, pc in other.per_class.items():
            mine = self.per_class.setdefault(name, ClassCounts())
            mine.instances += pc.instances
            mine.frames += pc.frames
            mine.pixels += pc.pixels
        for k, h in other.boxes.items():
            self.boxes[k].merge(h)
        self.instances_per_frame.merge(other.instances_per_frame)
        self.visibility.merge(other.visibility)
        self.truncation.merge(other.truncation)
        self.nothing_visible += other.nothing_visible

    def to_json(self) -> dict[str, Any]:
        stuff = dict(zip(self.classes, self.stuff, strict=True))
        return {
            "frames": self.frames,
            "pixels": self.pixels,
            "classes": {
                name: {
                    **pc.to_json(),
                    "stuff": bool(stuff.get(name, False)),
                    "pixel_coverage": pc.pixels / self.pixels if self.pixels else 0.0,
                }
                for name, pc in self.per_class.items()
            },
            "instances_per_frame": self.instances_per_frame.to_json(),
            **{k: h.to_json() for k, h in self.boxes.items()},
            "visibility": self.visibility.to_json(),
            "truncation": self.truncation.to_json(),
            "nothing_visible": {
                "frames": self.nothing_visible,
                "share": self.nothing_visible / self.frames if self.frames else 0.0,
                "examples": self.nothing_visible_examples,
            },
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ObjectStats:
        names = list(d["classes"])
        s = cls(names, [bool(d["classes"][n].get("stuff", False)) for n in names])
        s.frames = int(d["frames"])
        s.pixels = int(d.get("pixels", 0))
        for n in names:
            c = d["classes"][n]
            s.per_class[n] = ClassCounts(int(c["instances"]), int(c["frames"]), int(c["pixels"]))
        s.boxes = {k: Histogram.from_json(d[k]) for k in _box_histograms()}
        s.instances_per_frame = Histogram.from_json(d["instances_per_frame"])
        s.visibility = Histogram.from_json(d["visibility"])
        s.truncation = Histogram.from_json(d["truncation"])
        nv = d.get("nothing_visible", {})
        s.nothing_visible = int(nv.get("frames", 0))
        s.nothing_visible_examples = list(nv.get("examples", []))
        return s
