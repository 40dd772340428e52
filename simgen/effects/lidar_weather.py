"""LiDAR returns under weather (pure numpy; seeded): attenuation, fog backscatter, returns from
rain drops and snowflakes, strongest-return selection.

Intensities are simgen's normalized LiDAR intensity (docs/lidar.md): a Lambertian target of
reflectance ``rho`` at normal incidence and range ``R`` returns
``rho (R_ref / R)^2 exp(-2 alpha R)``, where ``pi * rho`` is ``pi * beta_0`` in the lidar
equation (``beta_0 = rho / pi``, the target's differential reflectivity).

* **Fog** (Hahner et al., "Fog Simulation on Real LiDAR Point Clouds for 3D Object Detection in
  Adverse Weather", ICCV 2021): the received power is the transmitted pulse
  ``P(t) = P0 sin^2(pi t / (2 tau_H))`` (0 <= t <= 2 tau_H) convolved with the impulse
  response ``xi(r) exp(-2 alpha r) beta(r) / r^2``. A hard target gives the peak above; the fog
  itself (a soft target of backscattering coefficient ``beta = 0.046 / MOR`` sr^-1 m^-1, MOR =
  ln(20) / alpha) gives, in the same normalization,

      I_fog(R) = pi R_ref^2 beta * int_{R - c tau_H}^{min(R, R0)} sin^2(pi (R - r) / (c tau_H))
                 xi(r) exp(-2 alpha r) / r^2 dr

  (fog behind the hard target at R0 is hidden). ``xi`` is the overlap of transmitter and
  receiver: 0 below ``R1 = 0.9 m``, 1 beyond ``R2 = 1.0 m``, linear between. The peak of
  ``I_fog`` over R (at ``R_fog``) competes with the attenuated hard return: the stronger one
  is the return (strongest-return mode). The fog return's range gets Hahner's released code's
  noise (variant "v4"): ``R_fog + 10 m * Beta(2, 20)``.
* **Rain and snow** (after Hahner et al., "LiDAR Snowfall Simulation for Robust 3D Object
  Detection", CVPR 2022): particles of the size distribution lie along each beam, whose
  diameter grows as ``d0 + theta r`` (exit diameter, full divergence). A particle of
  cross-section ``sigma = pi D^2 / 4`` at range r intercepts ``min(1, sigma / A(r))`` of the
  beam and returns ``rho_p min(1, sigma / A(r)) (R_ref / r)^2 exp(-2 alpha r)``. Per beam, the
  particles form a Poisson process, so the strongest particle return has a closed-form
  distribution (:func:`sample_particle_returns` draws it directly). ``rho_p``: snow 0.9 (fresh
  snow's reflectance in the near infrared, Warren 1982); a rain drop backscatters like a
  Lambertian disc of 0.097 (the same backscatter-to-extinction ratio as Hahner's fog droplets,
  ``beta / alpha = 0.046 / ln 20`` sr^-1, times the extinction efficiency 2, times pi).
* **Attenuation**: every return is attenuated by ``exp(-2 alpha R)`` with
  ``alpha = attenuation_per_m + fog + rain + snow`` extinctions (fewer far returns).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from simgen.effects.precipitation import SizeDistribution

C_LIGHT = 299_792_458.0
#: Hahner et al. (ICCV 2021) defaults: half-power pulse width, crossover ranges, backscatter.
PULSE_TAU_H_S = 20e-9
CROSSOVER_R1_M = 0.9
CROSSOVER_R2_M = 1.0
BACKSCATTER_PER_EXTINCTION = 0.046 / math.log(20.0)  # beta / alpha, 1/sr
#: Range noise of fog returns (Hahner et al.'s released code, noise variant v4).
FOG_RANGE_NOISE_M = 10.0
FOG_RANGE_NOISE_BETA = (2.0, 20.0)
#: Equivalent Lambertian reflectance of particles at 905 nm.
PARTICLE_REFLECTANCE = {"snow": 0.9, "rain": 2.0 * math.pi * BACKSCATTER_PER_EXTINCTION}
#: Integration step of the fog response and largest target range tabulated, m.
_DR = 0.02
_R0_MAX = 40.0


@lru_cache(maxsize=64)
def _fog_table(alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R0 grid, max_R J(R; R0), argmax R) of the fog integral without its ``beta`` factor:
    ``J(R; R0) = int sin^2(pi (R - r) / (c tau_H)) xi(r) exp(-2 alpha r) / r^2 dr`` over
    ``r in [R - c tau_H, min(R, R0)]``."""
    width = C_LIGHT * PULSE_TAU_H_S  # range extent of the pulse, m
    m = round(width / _DR)
    r = np.arange(1, round((_R0_MAX + width) / _DR) + 1) * _DR  # r > 0
    xi = np.clip((r - CROSSOVER_R1_M) / (CROSSOVER_R2_M - CROSSOVER_R1_M), 0.0, 1.0)
    f = xi * np.exp(-2.0 * alpha * r) / (r * r)
    # S[i, j] = sum over window offsets 0..j (from the far end of the pulse) of k * f * dr
    offs = np.arange(m)  # R - r = (m - 1 - j) * dr for window index j
    kern = np.sin(np.pi * (m - 1 - offs) * _DR / width) ** 2
    n_r = len(r)
    rows = np.arange(n_r)[:, None] - (m - 1) + offs[None, :]  # index of r for R = r[i]
    valid = rows >= 0
    terms = np.where(valid, kern[None, :] * f[np.clip(rows, 0, None)], 0.0) * _DR
    s = np.cumsum(terms, axis=1)  # s[i, j]: r from R - width up to r[rows[i, j]]
    r0 = np.arange(0, round(_R0_MAX / _DR) + 1, 5) * _DR
    # for R0, window entries with r <= R0 count: j <= j_max(i) = idx(R0) - i + m - 1
    i0 = np.floor(r0 / _DR + 1e-9).astype(np.int64) - 1  # index of the last r <= R0
    jmax = np.clip(i0[:, None] - np.arange(n_r)[None, :] + m - 1, -1, m - 1)
    j = np.where(jmax >= 0, jmax, 0)
    vals = np.where(jmax >= 0, s[np.arange(n_r)[None, :], j], 0.0)
    best = vals.argmax(axis=1)
    return r0, vals[np.arange(len(r0)), best], r[best]


def fog_response(alpha: float, r0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peak of the fog integral J (without beta) and its range, for hard targets at ``r0``
    (inf: no target)."""
    grid, peak, where = _fog_table(round(float(alpha), 9))
    x = np.minimum(np.nan_to_num(r0, posinf=grid[-1]), grid[-1])
    return np.interp(x, grid, peak), np.interp(x, grid, where)


@dataclass(frozen=True)
class BeamOptics:
    divergence_rad: float  # full angle
    diameter_m: float  # at the exit

    def area(self, r: np.ndarray | float) -> np.ndarray:
        d = self.diameter_m + self.divergence_rad * np.asarray(r)
        return np.pi / 4.0 * d * d

    def area_integral(self, r: np.ndarray | float) -> np.ndarray:
        """``int_0^r A(s) ds``."""
        d0, th = self.diameter_m, self.divergence_rad
        return np.pi / 12.0 / th * ((d0 + th * np.asarray(r)) ** 3 - d0**3)

    def inverse_area_integral(self, v: np.ndarray | float) -> np.ndarray:
        d0, th = self.diameter_m, self.divergence_rad
        return (np.cbrt(d0**3 + 12.0 * th * np.asarray(v) / np.pi) - d0) / th


@dataclass(frozen=True)
class ParticleReturns:
    """The strongest particle return of each beam."""

    intensity: np.ndarray  # (n,) 0 where none
    range_m: np.ndarray  # (n,)
    count: int  # beams with a detectable particle
    expected: float  # expected number of detectable particles, all beams


#: Intensity levels and end ranges of the tables of the particle sampler.
_LEVELS = 96
_ENDS = 192


def particle_intensity(
    rho: float, d_m: np.ndarray, r: np.ndarray, optics: BeamOptics, alpha: float, r_ref: float
) -> np.ndarray:
    """Return of particles of geometric diameter ``d_m`` at ranges ``r`` (beyond the
    crossover): ``rho * min(1, sigma / A(r)) * (R_ref / r)^2 * exp(-2 alpha r)``."""
    share = np.minimum(1.0, np.pi / 4.0 * d_m * d_m / optics.area(r))
    return rho * share * (r_ref / r) ** 2 * np.exp(-2.0 * alpha * r)


def _reach(
    rho: float,
    d_m: np.ndarray,
    levels: np.ndarray,
    optics: BeamOptics,
    alpha: float,
    r_ref: float,
    r0: float,
    r_max: float,
) -> np.ndarray:
    """(levels, bins): the largest range in [r0, r_max] at which a particle of each size still
    returns each intensity level (r0 where it never does). The return falls with range."""
    lo = np.full((len(levels), len(d_m)), r0)
    hi = np.full_like(lo, r_max)
    x = levels[:, None]
    for _ in range(40):
        mid = np.sqrt(lo * hi)
        ok = particle_intensity(rho, d_m[None, :], mid, optics, alpha, r_ref) >= x
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    at_max = particle_intensity(rho, d_m, np.full(d_m.shape, r_max), optics, alpha, r_ref)
    return np.where(at_max[None, :] >= x, r_max, lo)


@dataclass(frozen=True)
class _Tables:
    """What the particle sampler needs for one sensor and weather (cached across sweeps)."""

    density: np.ndarray  # (B,) particles per m^3 in each size bin
    levels: np.ndarray  # (X,) intensity levels, threshold .. top
    reach: np.ndarray  # (X, B) largest range at which each size returns each level
    ends: np.ndarray  # (S,) beam end ranges
    table: np.ndarray  # (S, X) L(x; s)
    bands: np.ndarray  # (S * X * B,) per (s, x) row: row index + cumulative share of each bin
    i0: float  # beam volume up to r0


@lru_cache(maxsize=16)
def _tables(
    dsd: SizeDistribution,
    optics: BeamOptics,
    alpha: float,
    r_ref: float,
    threshold: float,
    r_min: float,
    r_max: float,
) -> _Tables | None:
    rho = PARTICLE_REFLECTANCE[dsd.kind]
    edges, density = dsd.bins()
    size_m = dsd.geometric_diameter(np.sqrt(edges[1:] * edges[:-1])) * 1e-3
    r0 = max(r_min, CROSSOVER_R2_M)
    if r_max <= r0:
        return None
    top = float(
        particle_intensity(rho, size_m, np.full(size_m.shape, r0), optics, alpha, r_ref).max()
    )
    if top <= threshold:
        return None
    levels = np.geomspace(threshold, top, _LEVELS)
    reach = _reach(rho, size_m, levels, optics, alpha, r_ref, r0, r_max)  # (X, B)
    i0 = float(optics.area_integral(r0))
    ends = np.geomspace(r0, r_max, _ENDS)
    per_bin = density * np.maximum(
        optics.area_integral(np.minimum(ends[:, None, None], reach[None])) - i0, 0.0
    )  # (S, X, B)
    band = per_bin - np.concatenate([per_bin[:, 1:], np.zeros_like(per_bin[:, :1])], axis=1)
    cdf = np.cumsum(np.maximum(band, 0.0), axis=-1)
    cdf /= np.maximum(cdf[..., -1:], 1e-300)
    # row r's shares lie in [r, r + 1]: one sorted array, searched for r + u (exact sampling)
    rows = np.arange(cdf.shape[0] * cdf.shape[1], dtype=np.float64).reshape(cdf.shape[:2])
    bands = (cdf + rows[..., None]).ravel()
    return _Tables(density, levels, reach, ends, per_bin.sum(-1), bands, i0)


def sample_particle_returns(
    dsd: SizeDistribution,
    target_range: np.ndarray,
    optics: BeamOptics,
    *,
    alpha: float,
    r_ref: float,
    threshold: float,
    r_min: float,
    r_max: float,
    rng: np.random.Generator,
) -> ParticleReturns:
    """The strongest particle return of every beam (``target_range``: the hard target's range,
    inf for none), drawn from its exact distribution rather than from every particle.

    Particles of size bin b lie along the beam as a Poisson process of density ``n_b A(r)``
    (``n_b`` per m^3, ``A`` the beam area) from ``r0 = max(r_min, R2)`` to the beam's end ``s``.
    A particle returns at least ``x`` up to the range ``r_b(x)``, so the number returning at
    least ``x`` is Poisson with mean
    ``L(x; s) = sum_b n_b (I(min(s, r_b(x))) - I(r0))^+`` (``I`` = integral of ``A``), and the
    strongest return X has ``P(X < x) = exp(-L(x; s))``: with ``E ~ Exp(1)``, X solves
    ``L(X; s) = E``; no particle is detected when ``E >= L(threshold; s)`` (computed exactly per
    beam). ``L`` is tabulated on 96 intensity levels x 192 end ranges (linear in s between them,
    log-linear in x); the bin of the strongest particle is drawn in proportion to the bins'
    share of ``L`` in its intensity band, and its range is where that size
    returns X. The cost depends on the beams, not on the number of particles. The beam share
    the particles intercept is left to the mean extinction (``exp(-2 alpha R)``)."""
    n = target_range.shape[0]
    zeros = np.zeros(n)
    tab = (
        None
        if dsd.empty or n == 0
        else _tables(
            dsd, optics, float(alpha), float(r_ref), float(threshold), float(r_min), float(r_max)
        )
    )
    if tab is None:
        return ParticleReturns(zeros, zeros.copy(), 0, 0.0)
    end = np.minimum(np.nan_to_num(target_range, posinf=r_max), r_max)
    lam = _lam_threshold(end, tab.reach[0], tab.density, optics, tab.i0)  # exact mean count
    e = np.asarray(rng.exponential(size=n))
    idx = np.flatnonzero(e < lam)
    if idx.size == 0:
        return ParticleReturns(zeros, zeros.copy(), 0, float(lam.sum()))
    ends, table, levels = tab.ends, tab.table, tab.levels
    s_b, e_b = end[idx], e[idx]
    # ends are log-spaced: the interval of each beam's end in closed form
    k = np.clip(
        np.floor(np.log(s_b / ends[0]) / np.log(ends[-1] / ends[0]) * (_ENDS - 1)).astype(np.int64),
        0,
        _ENDS - 2,
    )
    w = np.clip((s_b - ends[k]) / (ends[k + 1] - ends[k]), 0.0, 1.0)
    flat = table.ravel()
    row0, row1 = k * _LEVELS, (k + 1) * _LEVELS  # the rows around each beam's end

    def lam_at(j: np.ndarray) -> np.ndarray:
        return (1.0 - w) * flat[row0 + j] + w * flat[row1 + j]

    lo = np.zeros(idx.size, np.int64)  # invariant: L(lo) >= e, or lo = 0
    hi = np.full(idx.size, _LEVELS - 1, np.int64)
    above = lam_at(hi) >= e_b  # stronger than every level: the top one
    for _ in range(int(np.ceil(np.log2(_LEVELS)))):
        mid = (lo + hi) // 2
        ok = lam_at(mid) >= e_b
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    hi = np.minimum(lo + 1, _LEVELS - 1)
    la, lb = lam_at(lo), lam_at(hi)
    t = np.clip(np.where(la > lb, (la - e_b) / np.maximum(la - lb, 1e-300), 0.0), 0.0, 1.0)
    lo[above], hi[above], t[above] = _LEVELS - 1, _LEVELS - 1, 0.0
    x = levels[lo] * (levels[hi] / levels[lo]) ** t
    row = np.where(w < 0.5, k, k + 1) * _LEVELS + lo
    n_bins = tab.density.shape[0]
    query = row + rng.random(idx.size)
    order = np.argsort(query)  # sorted queries search much faster
    pos = np.empty(idx.size, np.int64)
    pos[order] = np.searchsorted(tab.bands, query[order])
    b = np.clip(pos - row * n_bins, 0, n_bins - 1)
    reach = tab.reach
    r = reach[lo, b] * (reach[hi, b] / reach[lo, b]) ** t
    intensity, rng_out = zeros.copy(), zeros.copy()
    intensity[idx] = x
    rng_out[idx] = np.minimum(r, s_b)
    return ParticleReturns(intensity, rng_out, int(idx.size), float(lam.sum()))


def _lam_threshold(
    end: np.ndarray, reach0: np.ndarray, density: np.ndarray, optics: BeamOptics, i0: float
) -> np.ndarray:
    """``L(threshold; s)`` for every beam end ``s``: bins whose reach is below ``s`` count whole,
    the others up to ``s`` (two cumulative sums over the bins sorted by reach)."""
    order = np.argsort(reach0, kind="stable")
    r_sorted, n_sorted = reach0[order], density[order]
    full = n_sorted * np.maximum(optics.area_integral(r_sorted) - i0, 0.0)
    c_full = np.r_[0.0, np.cumsum(full)]
    c_n = np.r_[0.0, np.cumsum(n_sorted)]
    kk = np.searchsorted(r_sorted, end, side="right")
    open_len = np.maximum(optics.area_integral(end) - i0, 0.0)
    return c_full[kk] + open_len * (c_n[-1] - c_n[kk])


@dataclass(frozen=True)
class WeatherReturns:
    """Per beam: the chosen return after weather."""

    range_m: np.ndarray  # (n,) 0 where no return
    intensity: np.ndarray  # (n,)
    is_weather: np.ndarray  # (n,) bool: the return comes from fog, rain or snow
    fog_returns: int
    particle_returns: int


def strongest_returns(
    hard_range: np.ndarray,
    hard_intensity: np.ndarray,
    *,
    fog_beta: float,
    alpha: float,
    r_ref: float,
    threshold: float,
    r_min: float,
    r_max: float,
    particles: list[ParticleReturns],
    rng: np.random.Generator,
) -> WeatherReturns:
    """Choose each beam's return among the hard target (``hard_intensity`` already attenuated;
    0 or range inf where none), the fog and the particles (strongest return)."""
    n = hard_range.shape[0]
    best_i = np.asarray(hard_intensity, np.float64).copy()
    best_r = np.where(np.isfinite(hard_range), hard_range, 0.0)
    weather = np.zeros(n, bool)
    fog_n = part_n = 0
    if fog_beta > 0:
        peak, where = fog_response(alpha, hard_range)
        fog_i = np.pi * r_ref**2 * fog_beta * peak
        take = (fog_i > best_i) & (fog_i >= threshold)
        k = int(take.sum())
        if k:
            a, b = FOG_RANGE_NOISE_BETA
            noisy = where[take] + FOG_RANGE_NOISE_M * rng.beta(a, b, k)
            best_i[take], best_r[take], weather[take] = fog_i[take], noisy, True
            fog_n = k
    for p in particles:
        take = (p.intensity > best_i) & (p.intensity >= threshold)
        best_i[take], best_r[take], weather[take] = p.intensity[take], p.range_m[take], True
        part_n += int(take.sum())
    ok = (best_i >= threshold) & (best_r >= r_min) & (best_r <= r_max) & (best_r > 0)
    return WeatherReturns(
        np.where(ok, best_r, 0.0), np.where(ok, best_i, 0.0), weather & ok, fog_n, part_n
    )
