"""Cheap self-checks of every frame's labels, run by the writer before a frame is stored.

A frame whose labels contradict each other (an instance id that is not in the episode's object
table, a 2D box outside the image, an object pixel without a valid depth) is a bug in simgen or
in a plugin; storing it would leave a dataset that silently lies. The writer raises
:class:`~simgen.errors.LabelCheckError` instead, naming the check, the sensor, the frame and the
offending value: the episode fails (a parallel run records it as failed, with its seed and this
error) and nothing of it is committed.

The checks are linear passes over arrays the frame already holds (no sorting, no search), a
small share of a frame's time (docs/reliability.md gives the measured cost). ``simgen verify``
runs the thorough cross-checks on a written dataset.

Checks (each skipped when its arrays are absent):

* ``instance_ids``: every id in a camera's ``instance`` image or a LiDAR's ``instance`` /
  ``instance_image`` is 0 (nothing) or an ``instance_id`` of the object table;
* ``box2d_in_image``: every non-empty ``box2d_tight`` ``[u0, v0, u1, v1)`` lies in the image
  (0 <= u0 < u1 <= width, 0 <= v0 < v1 <= height), empty ones are all zero, and a box is
  non-empty exactly where ``visible_pixels`` > 0;
* ``depth_on_objects``: ``depth_m`` is finite and > 0 wherever ``instance`` > 0.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from simgen.errors import LabelCheckError
from simgen.run.records import SensorFrame

CHECKS = ("instance_ids", "box2d_in_image", "depth_on_objects")


class LabelChecker:
    """The checks of one episode (knows its object table)."""

    def __init__(self, instance_ids: Iterable[int]) -> None:
        ids = np.asarray(sorted(int(i) for i in instance_ids), np.int64)
        self.n = len(ids)
        # ids 1..N (what simgen writes): a maximum is enough; otherwise a lookup table
        self.contiguous = bool(np.array_equal(ids, np.arange(1, self.n + 1)))
        self.known = np.zeros(int(ids.max(initial=0)) + 1, bool)
        self.known[ids] = True
        self.known[0] = True  # background / no return

    def check(self, f: SensorFrame) -> None:
        """Raise :class:`LabelCheckError` if the frame's labels are inconsistent."""
        a = f.arrays
        for key, ids in (
            ("instance", a.get("instance")),
            ("instance", f.ragged.get("instance")),
            ("instance_image", a.get("instance_image")),
        ):
            if ids is not None:
                self._ids(f, key, ids)
        inst = a.get("instance")
        if "box2d_tight" in a:
            shape = next((a[k].shape[:2] for k in ("instance", "depth_m", "rgb") if k in a), None)
            if shape is not None:
                self._boxes(f, a["box2d_tight"], a.get("visible_pixels"), shape)
        if inst is not None and "depth_m" in a:
            self._depth(f, inst, a["depth_m"])

    def _ids(self, f: SensorFrame, key: str, ids: np.ndarray) -> None:
        if ids.size == 0:
            return
        top = int(ids.max())
        if self.contiguous and top <= self.n and int(ids.min()) >= 0:
            return
        bad = ids[(ids < 0) | (ids >= len(self.known))]
        if bad.size == 0:
            bad = ids[~self.known[ids]]
        if bad.size:
            _fail(
                "instance_ids",
                f,
                f"{key} holds id {int(bad.flat[0])}, which is not in the object table "
                f"(ids {_id_range(self.known)})",
            )

    def _boxes(
        self,
        f: SensorFrame,
        boxes: np.ndarray,
        visible: np.ndarray | None,
        shape: tuple[int, ...],
    ) -> None:
        h, w = int(shape[0]), int(shape[1])
        b = np.asarray(boxes).reshape(-1, 4)
        filled = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        inside = (b[:, 0] >= 0) & (b[:, 1] >= 0) & (b[:, 2] <= w) & (b[:, 3] <= h)
        empty_ok = np.all(b == 0, axis=1)
        bad = np.nonzero(~((filled & inside) | (~filled & empty_ok)))[0]
        if bad.size:
            i = int(bad[0])
            _fail(
                "box2d_in_image",
                f,
                f"box2d_tight of instance {i + 1} is {b[i].tolist()}, outside the "
                f"{w}x{h} image [0, {w}) x [0, {h}) (or inverted)",
            )
        if visible is not None and len(visible) == len(b):
            off = np.nonzero(filled != (np.asarray(visible) > 0))[0]
            if off.size:
                i = int(off[0])
                _fail(
                    "box2d_in_image",
                    f,
                    f"instance {i + 1} has visible_pixels {int(visible[i])} but box2d_tight "
                    f"{b[i].tolist()}",
                )

    def _depth(self, f: SensorFrame, inst: np.ndarray, depth: np.ndarray) -> None:
        if inst.shape != depth.shape[: inst.ndim]:
            return
        d = np.where(inst > 0, depth, np.float32(1.0))
        ok = np.isfinite(d) & (d > 0)
        if not ok.all():
            v, u = np.argwhere(~ok)[0]
            _fail(
                "depth_on_objects",
                f,
                f"depth_m is {float(depth[v, u])} at pixel (u={u}, v={v}) of instance "
                f"{int(inst[v, u])} (must be finite and > 0 on objects)",
            )


def _fail(check: str, f: SensorFrame, detail: str) -> None:
    raise LabelCheckError(
        f"label self-check {check!r} failed: sensor {f.sensor!r} frame {f.index} "
        f"(t = {f.time:.4f} s): {detail}; the episode is not stored"
    )


def _id_range(known: np.ndarray) -> str:
    ids = np.nonzero(known)[0]
    ids = ids[ids > 0]
    if len(ids) == 0:
        return "none"
    if len(ids) == int(ids[-1]) and int(ids[0]) == 1:
        return f"1..{int(ids[-1])}"
    return ", ".join(str(int(i)) for i in ids[:20])
