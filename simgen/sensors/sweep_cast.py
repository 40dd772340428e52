"""Cast a whole LiDAR sweep at once, each sector against the world as it was at its own step.

While a sweep runs the episode loop only records poses (the sensor's and those of the parts that
move, at every sector's step; :mod:`simgen.run.lidar_capture`). At the sweep end
:func:`cast_sweep` casts every ray:

* against the parts that never move: every sector's rays leave from that sector's sensor pose,
  in world coordinates; the sweep is cut into chunks of columns traced by the caster's threads;
* against each part that moves: the rays that can reach it, moved into the part's frame at each
  sector's instant, in one Embree call per part for the whole sweep (instancing on the rays).
  Which rays can reach a part follows from the pattern: the part's bounding box, seen from the
  sensor, lies in a cone; the cone lies in a band of elevations (a run of rings) and an
  interval of azimuths (a set of columns) per sector (:func:`reachable_rays`).

The moving parts are traced on the calling thread while the pool traces the static chunks; each
chunk then takes the nearer of the two hits per ray and is handed, on its worker thread, to a
caller-supplied ``label`` function, so labeling overlaps tracing.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from simgen.geometry import invert_pose
from simgen.sensors.raycast import MIN_RAYS_PER_THREAD, CastScene, origins

T = TypeVar("T")

#: Angular margin (rad) of the reachable-ray bounds: float32 rays that graze a box are kept.
MARGIN = 1e-5


@dataclass(frozen=True)
class SweepPattern:
    """A sweep's rays in the sensor frame, in firing order: column by column, top ring first
    (ray ``i`` is ring ``i % C`` of column ``i // C``); a sector is a run of columns."""

    dirs_s: np.ndarray  # (N * C, 3) float32
    dirs_cols: np.ndarray  # (3, N * C) float32, the same by coordinate
    elevation: np.ndarray  # (C,) rad, descending
    azimuth: np.ndarray  # (N,) rad: column c at fov / 2 - (c + 1/2) fov / N
    fov: float  # horizontal field of view, rad
    column_sector: np.ndarray  # (N,) int, non-decreasing
    sector_columns: np.ndarray  # (S + 1,) column bounds of the sectors
    chunks: np.ndarray  # (K + 1,) column bounds of the chunks traced and labeled together

    @property
    def channels(self) -> int:
        return int(self.elevation.shape[0])

    @property
    def columns(self) -> int:
        return int(self.azimuth.shape[0])


def sweep_pattern(
    dirs_s: np.ndarray,
    elevation: np.ndarray,
    azimuth: np.ndarray,
    fov: float,
    column_sector: np.ndarray,
    chunk_rays: int = MIN_RAYS_PER_THREAD,
) -> SweepPattern:
    """The pattern of directions ``dirs_s`` (C, N, 3) at ``elevation`` (C,) x ``azimuth`` (N,),
    the columns evenly spread over ``fov`` (:func:`simgen.sensors.lidar.lidar_model`)."""
    c, n = dirs_s.shape[:2]
    if np.any(np.diff(column_sector) < 0):  # pragma: no cover - sweep_timing guarantees
        raise AssertionError("sectors must be runs of consecutive columns")
    sectors = int(column_sector.max()) + 1 if n else 0
    step = max(1, chunk_rays // max(c, 1))
    rays = np.ascontiguousarray(dirs_s.transpose(1, 0, 2).reshape(-1, 3), np.float32)
    return SweepPattern(
        rays,
        np.ascontiguousarray(rays.T),
        np.asarray(elevation, np.float64),
        np.asarray(azimuth, np.float64),
        float(fov),
        np.asarray(column_sector),
        np.searchsorted(column_sector, np.arange(sectors + 1)),
        np.unique(np.append(np.arange(0, n, step), n)),
    )


@dataclass(frozen=True)
class Chunk:
    """Columns ``[c0, c1)`` (rays ``[a, b)``) of a cast sweep: views of the sweep's arrays."""

    index: int
    c0: int
    c1: int
    a: int
    b: int
    t: np.ndarray  # (b - a,) float32 hit distance; t_max where nothing was hit
    part: np.ndarray  # (b - a,) int32 part hit, -1 = none
    cos: np.ndarray  # (b - a,) float32 |cos incidence|, 0 = none


def rotate(d: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``r @ d`` for directions stored by coordinate, (3, n) -> (3, n) float32, element by
    element: no BLAS threads, and the same result for a ray whatever block it is computed in."""
    out = np.empty(d.shape, np.float32)
    tmp = np.empty(d.shape[1], np.float32)
    for k in range(3):
        np.multiply(d[0], r[k, 0], out=out[k])
        out[k] += np.multiply(d[1], r[k, 1], out=tmp)
        out[k] += np.multiply(d[2], r[k, 2], out=tmp)
    return out


def cast_sweep(
    scene: CastScene,
    pattern: SweepPattern,
    sensor_w: np.ndarray,
    parts_w: np.ndarray,
    t_max: float,
    label: Callable[[Chunk], T],
    meanwhile: Callable[[], object] | None = None,
) -> list[T]:
    """Cast a sweep: sector ``s`` from sensor pose ``sensor_w[s]`` (S, 4, 4) with the moving
    parts at ``parts_w[s]`` (S, M, 4, 4). Returns ``label(chunk)`` of every chunk, in order.

    The pool traces the static parts chunk by chunk while the calling thread traces the moving
    parts, then runs ``meanwhile()``; chunks are labeled once both are done."""
    n, c = pattern.dirs_s.shape[0], pattern.channels
    t = np.full(n, t_max, np.float32)
    part = np.empty(n, np.int32)
    cos = np.empty(n, np.float32)
    # runs of sectors cast from the same pose (the whole sweep for a sensor that stays still)
    rot = np.ascontiguousarray(sensor_w[:, :3, :3], np.float32)
    org = np.ascontiguousarray(sensor_w[:, :3, 3], np.float32)
    key = np.concatenate([rot.reshape(-1, 9), org], axis=1)
    first = np.concatenate([[0], np.flatnonzero(np.any(key[1:] != key[:-1], axis=1)) + 1])
    run_cols = np.append(pattern.sector_columns[first], pattern.columns)
    moving = _MovingHits(n, t_max) if scene.moving_parts.size else None
    done = threading.Event()

    def trace(k: int) -> None:
        c0, c1 = int(pattern.chunks[k]), int(pattern.chunks[k + 1])
        j = int(np.searchsorted(run_cols, c0, "right")) - 1
        while run_cols[j] < c1:  # the runs of sectors (or parts of runs) in this chunk
            a, b = max(int(run_cols[j]), c0) * c, min(int(run_cols[j + 1]), c1) * c
            s = first[j]
            d = rotate(pattern.dirs_cols[:, a:b], rot[s]).T  # (n, 3) view; Embree takes strides
            scene.trace_static(origins(org[s], b - a), d, t[a:b], part[a:b], cos[a:b])
            j += 1

    def finish(k: int, traced: Future[None] | None) -> T:
        if traced is not None:
            traced.result()
        done.wait()
        c0, c1 = int(pattern.chunks[k]), int(pattern.chunks[k + 1])
        a, b = c0 * c, c1 * c
        if moving is not None:
            moving.merge_into(a, b, t[a:b], part[a:b], cos[a:b])
        return label(Chunk(k, c0, c1, a, b, t[a:b], part[a:b], cos[a:b]))

    def on_this_thread() -> None:
        try:
            if moving is not None:
                moving.cast(scene, pattern, sensor_w, parts_w)
            if meanwhile is not None:
                meanwhile()
        finally:
            done.set()  # chunks waiting go on (also after an error, which is raised here)

    caster, chunks = scene.caster, range(len(pattern.chunks) - 1)
    if caster.threads == 1:  # no pool: one after the other
        on_this_thread()
        for k in chunks:
            trace(k)
        return [finish(k, None) for k in chunks]
    # every trace is queued before any labeling (no deadlock: a labeling waits only for traces
    # already taken by a worker), so the workers trace while this thread does its part
    traced = [caster.submit(trace, k) for k in chunks]
    labeled = [caster.submit(finish, k, traced[k]) for k in chunks]
    on_this_thread()
    return [f.result() for f in labeled]


class _MovingHits:
    """Nearest hits of the sweep's rays on the moving parts (dense arrays over all rays)."""

    def __init__(self, n: int, t_max: float) -> None:
        self.t = np.full(n, t_max, np.float32)
        self.part = np.full(n, -1, np.int32)
        self.cos = np.zeros(n, np.float32)

    def cast(
        self, scene: CastScene, pattern: SweepPattern, sensor_w: np.ndarray, parts_w: np.ndarray
    ) -> None:
        # sensor frame -> part frame, per sector and part
        to_part = invert_pose(parts_w) @ sensor_w[:, None]  # (S, M, 4, 4)
        idx, sector, bounds = reachable_rays(pattern, scene.box_lo, scene.box_hi, to_part)
        if idx.size == 0:
            return
        m = to_part.shape[1]
        pair = sector * m + np.repeat(np.arange(m), np.diff(bounds))  # (sector, part) of a ray
        rot = np.take(to_part[..., :3, :3].reshape(-1, 9).astype(np.float32), pair, axis=0)
        org = np.take(to_part[..., :3, 3].reshape(-1, 3).astype(np.float32), pair, axis=0)
        d = np.take(pattern.dirs_cols, idx, axis=1)  # (3, K)
        d_l = np.empty((3, idx.size), np.float32)
        for k in range(3):  # d_l = R d, ray by ray (each has its own sector's rotation)
            r = rot[:, 3 * k : 3 * k + 3].T
            np.multiply(r[0], d[0], out=d_l[k])
            d_l[k] += r[1] * d[1]
            d_l[k] += r[2] * d[2]
        d_l = d_l.T  # (K, 3) view; Embree takes strides
        for p in np.flatnonzero(np.diff(bounds)).tolist():
            lo, hi = int(bounds[p]), int(bounds[p + 1])
            j = idx[lo:hi]
            tf = self.t[j]
            hit, cos = scene.trace_part(p, org[lo:hi], d_l[lo:hi], tf)
            j = j[hit]
            self.t[j] = tf[hit]
            self.part[j] = scene.moving_parts[p]
            self.cos[j] = cos

    def merge_into(self, a: int, b: int, t: np.ndarray, part: np.ndarray, cos: np.ndarray) -> None:
        """Keep the nearer hit of rays ``[a, b)`` (a tie goes to the static hit)."""
        nearer = self.t[a:b] < t
        if nearer.any():
            np.copyto(t, self.t[a:b], where=nearer)
            np.copyto(part, self.part[a:b], where=nearer)
            np.copyto(cos, self.cos[a:b], where=nearer)


def reachable_rays(
    pattern: SweepPattern, lo: np.ndarray, hi: np.ndarray, to_part: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rays that can hit each moving part: a superset, from the part's bounding box
    ``[lo, hi]`` (M, 3) in its frame and ``to_part`` (S, M, 4, 4), the sensor frame in the part
    frame at each sector. Returns (ray indices grouped by part, each ray's sector, (M + 1,)
    bounds of each part's group)."""
    c, n = pattern.channels, pattern.columns
    # a part that is not in the world at a sector (not yet spawned, or removed) has NaN poses:
    # it is reachable by no ray of that sector
    absent = ~np.isfinite(to_part).all(axis=(2, 3))  # (S, M)
    if absent.any():
        to_part = np.where(absent[:, :, None, None], np.eye(4), to_part)
    cone = _cones(lo, hi, to_part)  # (S, M) each
    # rings: elevation band [el - theta, el + theta] (elevations are descending)
    neg = -pattern.elevation
    r0 = np.searchsorted(neg, -(cone.el + cone.theta), "left")
    r1 = np.searchsorted(neg, -(cone.el - cone.theta), "right")
    r0[cone.every], r1[cone.every] = 0, c
    # columns: azimuths within w = asin(sin theta / cos el) of the axis, shifted by -2pi, 0, 2pi;
    # column c is at azimuth fov / 2 - (c + 1/2) step, so c(az) = (fov / 2 - az) / step - 1/2
    all_az = cone.every | (np.abs(cone.el) + cone.theta >= math.pi / 2)
    w = np.arcsin(np.minimum(np.sin(cone.theta) / np.maximum(np.cos(cone.el), 1e-12), 1.0))
    step = pattern.fov / n
    shift = np.array([-2 * math.pi, 0.0, 2 * math.pi])[:, None, None]  # (3, 1, 1)
    first = np.ceil((pattern.fov / 2 - (cone.az + w + MARGIN + shift)) / step - 0.5)
    last = np.floor((pattern.fov / 2 - (cone.az - w - MARGIN + shift)) / step - 0.5)
    s_lo = pattern.sector_columns[:-1, None]  # (S, 1) the sector's columns
    s_hi = pattern.sector_columns[1:, None] - 1
    first = np.where(all_az, np.where(shift == 0, s_lo, n), np.maximum(first, s_lo))
    last = np.where(all_az, s_hi, np.minimum(last, s_hi))
    last = np.where(absent[None], first - 1, last)
    # rectangles (rings x columns) of rays, part by part: arrays (M, S, 3) flattened
    ncol = np.maximum(last - first + 1, 0).astype(np.int64).transpose(2, 1, 0).ravel()
    nring = np.broadcast_to((r1 - r0).T[:, :, None], (r0.shape[1], r0.shape[0], 3)).ravel()
    keep = np.flatnonzero(ncol * nring)
    first_col = first.astype(np.int64).transpose(2, 1, 0).ravel()[keep]
    ring0 = np.broadcast_to(r0.T[:, :, None], nring.reshape(-1, r0.shape[0], 3).shape).ravel()
    ncol, nring, ring0 = ncol[keep], nring[keep], ring0[keep]
    sector = (keep // 3) % r0.shape[0]
    part = keep // (3 * r0.shape[0])
    # expand rectangles to columns, then columns to rays
    col = _expand(first_col, ncol)
    per_col = np.repeat(np.arange(keep.size), ncol)
    idx = _expand(col * c + ring0[per_col], nring[per_col])
    rays = ncol * nring
    bounds = np.concatenate([[0], np.cumsum(np.bincount(part, rays, minlength=lo.shape[0]))])
    return idx, np.repeat(sector[per_col], nring[per_col]), bounds.astype(np.int64)


def _expand(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + k) for s, k in zip(start, count)])``, vectorized."""
    ends = np.cumsum(count)
    total = int(ends[-1]) if ends.size else 0
    return np.repeat(start - (ends - count), count) + np.arange(total)


@dataclass(frozen=True)
class _Cones:
    el: np.ndarray  # (S, M) elevation of the cone axis in the sensor frame
    az: np.ndarray  # (S, M) azimuth of the axis
    theta: np.ndarray  # (S, M) half-angle, with the margin
    every: np.ndarray  # (S, M) bool: the box surrounds the sensor or spans 180 deg or more


def _cones(lo: np.ndarray, hi: np.ndarray, to_part: np.ndarray) -> _Cones:
    """Bounding cones, seen from the sensor, of the boxes ``[lo, hi]`` (M, 3). Written with
    x, y, z apart: numpy reductions over an axis of 3 cost far more than the arithmetic."""
    sel = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])  # (8, 3)
    corners = np.stack([lo, hi], axis=1)[:, sel, np.arange(3)]  # (M, 8, 3), part frame
    r, o = to_part[..., :3, :3], to_part[..., :3, 3]  # sensor -> part: p_l = r p_s + o
    # corners in the sensor frame, p_s = r^T (p_l - o), as (S, M, 8) arrays per coordinate
    rel = [corners[None, :, :, j] - o[..., j, None] for j in range(3)]
    cx, cy, cz = (sum(r[..., j, k, None] * rel[j] for j in range(3)) for k in range(3))
    ux, uy, uz = cx.mean(axis=2), cy.mean(axis=2), cz.mean(axis=2)  # the box center
    dist = np.sqrt(ux * ux + uy * uy + uz * uz)
    scale = 1.0 / np.maximum(dist, 1e-12)
    ux, uy, uz = ux * scale, uy * scale, uz * scale
    norms = np.sqrt(cx * cx + cy * cy + cz * cz)
    cos_c = (cx * ux[..., None] + cy * uy[..., None] + cz * uz[..., None]) / np.maximum(
        norms, 1e-12
    )
    theta = np.arccos(np.clip(cos_c.min(axis=-1), -1.0, 1.0)) + MARGIN
    inside = (o >= lo) & (o <= hi)  # o: the sensor origin in the part frames
    every = inside[..., 0] & inside[..., 1] & inside[..., 2]
    every |= (theta >= math.pi / 2) | (dist < 1e-9)
    return _Cones(np.arcsin(np.clip(uz, -1.0, 1.0)), np.arctan2(uy, ux), theta, every)
