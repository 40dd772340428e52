"""Labels of a cast LiDAR sweep, computed chunk by chunk on the ray caster's threads.

:class:`SweepLabels` turns the hits of a sweep (:func:`simgen.sensors.sweep_cast.cast_sweep`)
into the frame's arrays in two passes per chunk of columns, each run on a worker thread (Embree
releases the GIL while tracing, numpy inside its loops, so labeling overlaps the tracing of other
chunks and, in part, the labeling of other chunks):

1. :meth:`SweepLabels.rays`, per ray, as soon as the chunk is traced: intensity
   (:func:`simgen.sensors.lidar.intensity`'s formula, same float32 operations), detection
   (hit, within range, above the threshold), the noisy measurement (the ray's own draws) and the
   five range images;
2. :meth:`SweepLabels.points`, per detected return, once every chunk's counts are known: the
   clean and the noisy point lists, written straight into their rows of the output arrays.

Formulas and conventions: docs/lidar.md; array layout: docs/dataset-format.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from simgen.sensors.lidar import NoiseDraws, apply_draws
from simgen.sensors.sweep_cast import Chunk

if TYPE_CHECKING:
    from simgen.run.lidar_capture import EpisodeGeometry, LidarSetup

F32 = np.float32


class SweepLabels:
    """The arrays of one sweep, filled chunk by chunk (see the module docstring).

    ``rel`` (S, 4, 4): sensor frame at each sector -> at the sweep end (None: it did not move).
    ``noise``: the noise draws of every ray of the sweep, in firing order (set before the
    first :meth:`rays`; None when the model has no noise).
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
        self.rel_r = (
            None if rel is None else np.ascontiguousarray(rel[:, :3, :3].transpose(0, 2, 1), F32)
        )
        self.rel_t = None if rel is None else rel[:, :3, 3].astype(F32)
        self.noise: NoiseDraws | None = None
        self.inten = np.empty(c * n, F32)
        self.valid = np.empty(c * n, bool)
        self.noisy_valid = np.empty(c * n, bool)
        self.noisy_range = np.empty(c * n, F32)
        self.range_image = np.empty((c, n), F32)
        self.intensity_image = np.empty((c, n), F32)
        self.instance_image = np.empty((c, n), np.uint16)
        self.semantic_image = np.empty((c, n), np.uint16)
        self.range_image_noisy = np.empty((c, n), F32)

    # -- pass 1: per ray -----------------------------------------------------------------------

    def rays(self, ch: Chunk) -> tuple[Chunk, int, int]:
        """Intensity, detection, noise and range images of a chunk; returns it with its counts
        of clean and noisy returns.

        ``I = min(1, rho cos(theta) exp(-2 alpha R) (R_ref / R)^2)``; a miss has rho = 0."""
        ch = self._detect(ch)
        return self._images_and_noise(ch)

    def _detect(self, ch: Chunk) -> Chunk:
        """Fill ``inten`` and ``valid`` of the chunk's rays; returns the chunk (a subclass may
        return a changed one, e.g. with weather returns)."""
        m = self.model
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
        return ch

    def _images_and_noise(self, ch: Chunk) -> tuple[Chunk, int, int]:
        m, c = self.model, self.model.channels
        inten, valid = self.inten[ch.a : ch.b], self.valid[ch.a : ch.b]
        # range images: each row computed in firing order, then copied transposed (C, columns)
        cols = slice(ch.c0, ch.c1)
        self.range_image[:, cols] = (ch.t * valid).reshape(-1, c).T
        self.intensity_image[:, cols] = (inten * valid).reshape(-1, c).T
        hit = np.where(valid, ch.part, -1)
        self.instance_image[:, cols] = np.take(self.inst, hit, mode="wrap").reshape(-1, c).T
        self.semantic_image[:, cols] = np.take(self.sem, hit, mode="wrap").reshape(-1, c).T
        n_valid = int(np.count_nonzero(valid))
        if self.noise is None:
            self.range_image_noisy[:, cols] = self.range_image[:, cols]
            return ch, n_valid, n_valid
        noisy_valid, noisy_range = self.noisy_valid[ch.a : ch.b], self.noisy_range[ch.a : ch.b]
        noisy = apply_draws(m, ch.t, inten, self.noise.part(ch.a, ch.b))
        np.logical_and(valid, noisy.keep, out=noisy_valid)
        np.multiply(noisy.range_m, noisy_valid, out=noisy_range)
        self.range_image_noisy[:, cols] = noisy_range.reshape(-1, c).T
        return ch, n_valid, int(np.count_nonzero(noisy_valid))

    # -- pass 2: per point ---------------------------------------------------------------------

    def allocate(self, p: int, q: int) -> None:
        """The point arrays of ``p`` clean and ``q`` noisy returns."""
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
        self.noisy_index = np.empty(q, np.int32)
        self.noisy_points_s = np.empty((q, 3), F32)
        self.noisy_range_m = np.empty(q, F32)

    def points(self, ch: Chunk, offset: int, noisy_offset: int) -> None:
        """Write the returns of a chunk (firing order) to rows ``offset...`` of the point arrays,
        its noisy returns to rows ``noisy_offset...`` of the noisy ones."""
        c, s = self.model.channels, self.setup
        i = np.flatnonzero(self.valid[ch.a : ch.b])  # ray within the chunk
        col = i // c
        ring = i - col * c
        col += ch.c0
        rows = slice(offset, offset + i.size)
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
        pts = self.points_s[rows]
        _scaled_dirs(s.pattern.dirs_cols[:, ch.a : ch.b], i, r, pts)
        self._deskew(ch, col, pts, self.points_deskewed_s[rows])
        # noisy returns: the clean returns of their rays, measured with noise
        if self.noise is None:  # every clean return, unchanged
            q = slice(noisy_offset, noisy_offset + i.size)
            self.noisy_index[q] = np.arange(offset, offset + i.size)
            self.noisy_range_m[q] = r
            self.noisy_points_s[q] = pts
            return
        kept = np.flatnonzero(np.take(self.noisy_valid[ch.a : ch.b], i, mode="clip"))
        q = slice(noisy_offset, noisy_offset + kept.size)
        np.add(kept, offset, out=self.noisy_index[q])
        j = np.take(i, kept, mode="clip")
        rn = np.take(self.noisy_range[ch.a : ch.b], j, out=self.noisy_range_m[q], mode="clip")
        _scaled_dirs(s.pattern.dirs_cols[:, ch.a : ch.b], j, rn, self.noisy_points_s[q])

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

    def arrays(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(per-frame arrays, ragged arrays) of the frame."""
        names = ("range_image", "intensity_image", "instance_image", "semantic_image")
        arrays = {k: getattr(self, k) for k in (*names, "range_image_noisy")}
        ragged = {
            k: getattr(self, k)
            for k in (
                "points_s",
                "points_deskewed_s",
                "range_m",
                "intensity",
                "instance",
                "semantic",
                "ring",
                "column",
                "azimuth",
                "time_offset",
                "cos_incidence",
                "noisy_index",
                "noisy_points_s",
                "noisy_range_m",
            )
        }
        return arrays, ragged


def _scaled_dirs(dirs_cols: np.ndarray, i: np.ndarray, r: np.ndarray, out: np.ndarray) -> None:
    """``out = dirs[i] * r[:, None]`` from directions stored by coordinate (3, n): three 1-D
    gathers and products (faster than a gather of rows and a broadcast product)."""
    tmp = np.empty(i.size, F32)
    for k in range(3):
        np.take(dirs_cols[k], i, out=tmp, mode="clip")
        np.multiply(tmp, r, out=out[:, k])


# -- weather ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeatherModel:
    """What the label pass needs of a sweep's weather (simgen.effects; docs/weather.md)."""

    state: Any  # simgen.effects.state.WeatherState
    reflectivity: np.ndarray  # (P,) float64 per visual part, wet ground applied
    optics: Any  # simgen.effects.lidar_weather.BeamOptics
    weather_class: int  # class id of 'weather' returns
    rng: Callable[[int, str], np.random.Generator]  # (chunk index, kind) -> generator


class WeatherSweepLabels(SweepLabels):
    """:class:`SweepLabels` under fog, rain, snow or wet ground: each beam returns the strongest
    of its hard target (attenuated two ways by the total extinction), the fog's backscatter and
    the particles along it (Hahner et al. 2021, 2022; simgen.effects.lidar_weather). Weather
    returns have instance 0, class ``weather`` and cos incidence 1; they are drawn per chunk
    from the chunk's own streams, so a sweep is the same whatever thread labels which chunk."""

    def __init__(
        self,
        setup: LidarSetup,
        geo: EpisodeGeometry,
        semantic_lut: np.ndarray,
        rel: np.ndarray | None,
        weather: WeatherModel,
    ) -> None:
        super().__init__(setup, geo, semantic_lut, rel)
        self.w = weather
        p = geo.part_instance.shape[0] - 1  # the weather pseudo-part sits before the miss entry
        self.weather_part = p
        self.inst = np.concatenate([geo.part_instance[:p], [0, 0]]).astype(np.uint16)
        self.sem = np.concatenate(
            [semantic_lut[geo.part_instance[:p]], [weather.weather_class, 0]]
        ).astype(np.uint16)

    def _detect(self, ch: Chunk) -> Chunk:
        from simgen.effects.lidar_weather import (
            BACKSCATTER_PER_EXTINCTION,
            sample_particle_returns,
            strongest_returns,
        )
        from simgen.sensors.lidar import intensity

        m, ws = self.model, self.w.state
        hit = ch.part >= 0
        t = ch.t.astype(np.float64)
        hard_range = np.where(hit, t, np.inf)
        alpha = m.attenuation + ws.extinction_per_m
        hard_i = np.zeros(t.shape[0])
        hard_i[hit] = intensity(
            self.w.reflectivity[ch.part[hit]], ch.cos[hit], t[hit], alpha, m.reference_range
        )
        common = {
            "alpha": alpha,
            "r_ref": m.reference_range,
            "threshold": m.threshold,
            "r_min": m.min_range,
            "r_max": m.max_range,
        }
        particles = [
            sample_particle_returns(
                dsd, hard_range, self.w.optics, rng=self.w.rng(ch.index, dsd.kind), **common
            )
            for dsd in (ws.rain, ws.snow)
            if not dsd.empty
        ]
        chosen = strongest_returns(
            hard_range,
            hard_i,
            fog_beta=BACKSCATTER_PER_EXTINCTION * ws.fog_extinction_per_m,
            particles=particles,
            rng=self.w.rng(ch.index, "fog"),
            **common,
        )
        got = chosen.range_m > 0
        is_w = got & chosen.is_weather
        part = np.where(got, np.where(is_w, self.weather_part, ch.part), -1).astype(ch.part.dtype)
        new = dataclasses.replace(
            ch,
            t=np.where(got, chosen.range_m, ch.t).astype(F32),
            part=part,
            cos=np.where(is_w, F32(1.0), np.where(got, ch.cos, F32(0.0))).astype(F32),
        )
        self.inten[ch.a : ch.b] = np.where(got, np.minimum(chosen.intensity, 1.0), 0.0)
        self.valid[ch.a : ch.b] = got
        return new
