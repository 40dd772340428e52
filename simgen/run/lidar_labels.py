"""Labels of a cast LiDAR sweep, computed chunk by chunk on the ray caster's threads.

:class:`SweepLabels` turns the hits of a sweep (:func:`simgen.sensors.sweep_cast.cast_sweep`)
into the frame's arrays in two passes per chunk of columns, each run on a worker thread (numpy
releases the GIL in its loops, Embree while tracing, so chunks overlap one another):

1. :meth:`SweepLabels.rays`, per ray, as soon as the chunk is traced: intensity
   (:func:`simgen.sensors.lidar.intensity`'s formula, same float32 operations), detection
   (hit, within range, above the threshold) and the range images;
2. :meth:`SweepLabels.points`, per detected return, once every chunk's count is known: the
   point list, written straight into its rows of the output arrays.

The noisy cloud (:meth:`SweepLabels.pack`) is derived from the clean one afterwards.
Formulas and conventions: docs/lidar.md; array layout: docs/dataset-format.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simgen.sensors.lidar import NoisyReturns
from simgen.sensors.sweep_cast import Chunk

if TYPE_CHECKING:
    from simgen.run.lidar_capture import EpisodeGeometry, LidarSetup

F32 = np.float32


class SweepLabels:
    """The arrays of one sweep, filled chunk by chunk (see the module docstring).

    ``rel`` (S, 4, 4): sensor frame at each sector -> at the sweep end (None: it did not move).
    """

    def __init__(
        self,
        setup: LidarSetup,
        geo: EpisodeGeometry,
        semantic_lut: np.ndarray,
        rel: np.ndarray | None,
    ) -> None:
        self.setup = setup
        self.model = m = setup.model
        c, n = m.channels, m.columns
        self.refl = geo.part_reflectivity
        self.inst = geo.part_instance
        self.sem = semantic_lut[geo.part_instance]
        self.rel_r = None if rel is None else rel[:, :3, :3].transpose(0, 2, 1).astype(F32)
        self.rel_t = None if rel is None else rel[:, :3, 3].astype(F32)
        self.inten = np.empty(c * n, F32)
        self.valid = np.empty(c * n, bool)
        self.range_image = np.empty((c, n), F32)
        self.intensity_image = np.empty((c, n), F32)
        self.instance_image = np.empty((c, n), np.uint16)
        self.semantic_image = np.empty((c, n), np.uint16)

    # -- pass 1: per ray -----------------------------------------------------------------------

    def rays(self, ch: Chunk) -> tuple[Chunk, int]:
        """Intensity, detection and range images of a chunk; returns it with its return count.

        ``I = min(1, rho cos(theta) exp(-2 alpha R) (R_ref / R)^2)``; a miss has rho = 0."""
        m, c = self.model, self.model.channels
        inten = self.inten[ch.a : ch.b]
        np.take(self.refl, ch.part, out=inten, mode="wrap")  # part -1 (miss) reads the 0
        inten *= ch.cos
        r = np.maximum(ch.t, F32(1e-6))
        if m.attenuation > 0:
            e = r * F32(-2.0 * m.attenuation)
            inten *= np.exp(e, out=e)
        r *= r
        inten *= np.divide(F32(m.reference_range**2), r, out=r)
        np.minimum(inten, F32(1.0), out=inten)
        valid = self.valid[ch.a : ch.b]
        if m.threshold > 0:  # a miss has intensity 0
            np.greater_equal(inten, F32(m.threshold), out=valid)
        else:
            np.greater_equal(ch.part, 0, out=valid)
        if m.min_range > 0:
            valid &= ch.t >= F32(m.min_range)
        cols = slice(ch.c0, ch.c1)
        v = valid.reshape(-1, c).T  # (C, columns): the range-image layout
        np.multiply(ch.t.reshape(-1, c).T, v, out=self.range_image[:, cols])
        np.multiply(inten.reshape(-1, c).T, v, out=self.intensity_image[:, cols])
        hit = np.where(valid, ch.part, -1).reshape(-1, c).T
        self.instance_image[:, cols] = np.take(self.inst, hit, mode="wrap")
        self.semantic_image[:, cols] = np.take(self.sem, hit, mode="wrap")
        return ch, int(np.count_nonzero(valid))

    # -- pass 2: per point ---------------------------------------------------------------------

    def allocate(self, p: int) -> None:
        """The point arrays of ``p`` returns."""
        self.points_s = np.empty((p, 3), F32)
        self.points_deskewed_s = np.empty((p, 3), F32)
        self.range_m = np.empty(p, F32)
        self.intensity = np.empty(p, F32)
        self.cos_incidence = np.empty(p, F32)
        self.instance = np.empty(p, np.uint16)
        self.semantic = np.empty(p, np.uint16)
        self.ring = np.empty(p, np.uint16)
        self.column = np.empty(p, np.uint16)
        self.azimuth = np.empty(p, F32)
        self.time_offset = np.empty(p, F32)
        self.pixel = np.empty(p, np.int64)  # index into the flattened range image

    def points(self, ch: Chunk, offset: int) -> None:
        """Write the returns of a chunk (firing order) to rows ``offset...`` of the point arrays."""
        c, s = self.model.channels, self.setup
        col, ring = np.nonzero(self.valid[ch.a : ch.b].reshape(-1, c))
        k = ring.size
        rows = slice(offset, offset + k)
        i = col * c + ring  # ray within the chunk
        col += ch.c0
        r = np.take(ch.t, i, out=self.range_m[rows], mode="clip")
        np.take(self.inten[ch.a : ch.b], i, out=self.intensity[rows], mode="clip")
        np.take(ch.cos, i, out=self.cos_incidence[rows], mode="clip")
        hit = np.take(ch.part, i, mode="clip")
        np.take(self.inst, hit, out=self.instance[rows], mode="wrap")
        np.take(self.sem, hit, out=self.semantic[rows], mode="wrap")
        self.ring[rows] = ring
        self.column[rows] = col
        np.take(s.column_azimuth, col, out=self.azimuth[rows], mode="clip")
        np.take(s.column_time, col, out=self.time_offset[rows], mode="clip")
        np.multiply(ring, self.model.columns, out=self.pixel[rows])
        self.pixel[rows] += col
        pts = np.take(
            s.pattern.dirs_s[ch.a : ch.b], i, axis=0, out=self.points_s[rows], mode="clip"
        )
        pts *= r[:, None]
        self._deskew(ch, col, pts, self.points_deskewed_s[rows])

    def _deskew(self, ch: Chunk, col: np.ndarray, pts: np.ndarray, out: np.ndarray) -> None:
        if self.rel_r is None or self.rel_t is None:
            out[...] = pts
            return
        pattern = self.setup.pattern
        s0, s1 = int(pattern.column_sector[ch.c0]), int(pattern.column_sector[ch.c1 - 1]) + 1
        bounds = np.searchsorted(col, pattern.sector_columns[s0 : s1 + 1])
        bounds[0], bounds[-1] = 0, col.size
        for j, s in enumerate(range(s0, s1)):
            a, b = bounds[j], bounds[j + 1]
            np.matmul(pts[a:b], self.rel_r[s], out=out[a:b])
            out[a:b] += self.rel_t[s]

    # -- the frame -----------------------------------------------------------------------------

    def pack(self, noisy: NoisyReturns) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(per-frame arrays, ragged arrays) of the frame, with the noisy cloud of ``noisy``."""
        keep = np.flatnonzero(noisy.keep)
        r_noisy = noisy.range_m[keep]
        noisy_img = np.zeros(self.range_image.shape, F32)
        noisy_img.reshape(-1)[self.pixel[keep]] = r_noisy
        noisy_pts = np.take(self.points_s, keep, axis=0)
        noisy_pts *= (r_noisy / self.range_m[keep])[:, None]
        arrays: dict[str, np.ndarray] = {
            "range_image": self.range_image,
            "intensity_image": self.intensity_image,
            "instance_image": self.instance_image,
            "semantic_image": self.semantic_image,
            "range_image_noisy": noisy_img,
        }
        ragged: dict[str, np.ndarray] = {
            "points_s": self.points_s,
            "points_deskewed_s": self.points_deskewed_s,
            "range_m": self.range_m,
            "intensity": self.intensity,
            "instance": self.instance,
            "semantic": self.semantic,
            "ring": self.ring,
            "column": self.column,
            "azimuth": self.azimuth,
            "time_offset": self.time_offset,
            "cos_incidence": self.cos_incidence,
            "noisy_index": keep.astype(np.int32),
            "noisy_points_s": noisy_pts,
            "noisy_range_m": r_noisy,
        }
        return arrays, ragged
