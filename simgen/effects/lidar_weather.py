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
  cross-section ``sigma = pi D^2 / 4`` at range r intercepts ``f = min(1, sigma / A(r))`` of
  the beam and returns ``rho_p f (R_ref / r)^2 exp(-2 alpha r)``; the hard target keeps
  ``1 - sum f`` of its power. Only particles that could be detected (return above the
  threshold) are sampled: per beam their number is Poisson with mean
  ``int N(D) int A(r) dr dD`` over the detectable (D, r) region. ``rho_p``: snow 0.9 (fresh
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
    m = int(round(width / _DR))
    r = np.arange(1, int(round((_R0_MAX + width) / _DR)) + 1) * _DR  # r > 0
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
    r0 = np.arange(0, int(round(_R0_MAX / _DR)) + 1, 5) * _DR
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

    def area(self, r: np.ndarray) -> np.ndarray:
        d = self.diameter_m + self.divergence_rad * np.asarray(r)
        return np.pi / 4.0 * d * d

    def area_integral(self, r: np.ndarray) -> np.ndarray:
        """``int_0^r A(s) ds``."""
        d0, th = self.diameter_m, self.divergence_rad
        return np.pi / 12.0 / th * ((d0 + th * np.asarray(r)) ** 3 - d0**3)

    def inverse_area_integral(self, v: np.ndarray) -> np.ndarray:
        d0, th = self.diameter_m, self.divergence_rad
        return (np.cbrt(d0**3 + 12.0 * th * np.asarray(v) / np.pi) - d0) / th


@dataclass(frozen=True)
class ParticleReturns:
    """The strongest particle return of each beam and the beam share particles block."""

    intensity: np.ndarray  # (n,) 0 where none
    range_m: np.ndarray  # (n,)
    blocked: np.ndarray  # (n,) share of the beam intercepted in front of the target, <= 1
    count: int  # particles sampled
    expected: float


def crossover(r: np.ndarray) -> np.ndarray:
    """Overlap of transmitter and receiver: 0 below R1, 1 beyond R2, linear between."""
    return np.clip((np.asarray(r) - CROSSOVER_R1_M) / (CROSSOVER_R2_M - CROSSOVER_R1_M), 0, 1)


def particle_intensity(
    rho: float, d_m: np.ndarray, r: np.ndarray, optics: BeamOptics, alpha: float, r_ref: float
) -> tuple[np.ndarray, np.ndarray]:
    """(intensity, intercepted share) of particles of diameter ``d_m`` at ranges ``r``."""
    share = np.minimum(1.0, np.pi / 4.0 * d_m * d_m / optics.area(r))
    seen = rho * share * crossover(r) * (r_ref / r) ** 2 * np.exp(-2.0 * alpha * r)
    return seen, share


def _detectable_range(
    rho: float, d_m: np.ndarray, optics: BeamOptics, alpha: float, r_ref: float, thr: float, r_max: float
) -> np.ndarray:
    """Largest range at which particles of diameter ``d_m`` return at least ``thr`` (beyond the
    crossover the return falls with range; bisection in log range). ``CROSSOVER_R2_M`` where
    none is detectable."""
    lo = np.full(d_m.shape, CROSSOVER_R2_M)
    hi = np.full(d_m.shape, max(r_max, CROSSOVER_R2_M))
    for _ in range(50):
        mid = np.sqrt(lo * hi)
        ok = particle_intensity(rho, d_m, mid, optics, alpha, r_ref)[0] >= thr
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    ok_max = particle_intensity(rho, d_m, np.full(d_m.shape, r_max), optics, alpha, r_ref)[0]
    return np.where(ok_max >= thr, r_max, lo)


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
    """Sample the detectable particles along every beam (``target_range``: the hard target's
    range, inf for none) and return each beam's strongest particle return.

    A size bin b is detectable up to ``r_det[b]``; a beam ending at ``s`` holds, in bin b,
    ``Poisson(n_b (I(min(s, r_det[b])) - I(r_min)))`` particles (``I``: the integral of the beam
    area). With the bins sorted by ``r_det``, the bins below ``s`` count whole and the rest count
    ``I(s) - I(r_min)`` each: every beam's mean, and every particle's bin, come from two
    cumulative sums and a binary search (no beams x bins arrays)."""
    n = target_range.shape[0]
    none = ParticleReturns(np.zeros(n), np.zeros(n), np.zeros(n), 0, 0.0)
    if dsd.empty or n == 0:
        return none
    rho = PARTICLE_REFLECTANCE[dsd.kind]
    edges, density = dsd.bins()
    size_m = dsd.geometric_diameter(edges[1:]) * 1e-3  # largest particle of each bin
    r_det = _detectable_range(rho, size_m, optics, alpha, r_ref, threshold, r_max)
    order = np.argsort(r_det, kind="stable")
    r_sorted, n_sorted = r_det[order], density[order]
    a_min = float(optics.area_integral(r_min))
    full = n_sorted * np.maximum(optics.area_integral(r_sorted) - a_min, 0.0)
    c_full = np.r_[0.0, np.cumsum(full)]  # bins 0..k-1 whole
    c_n = np.r_[0.0, np.cumsum(n_sorted)]

    def split(stop: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = np.searchsorted(r_sorted, stop, side="right")
        open_len = np.maximum(optics.area_integral(stop) - a_min, 0.0)
        return k, c_full[k], open_len * (c_n[-1] - c_n[k])

    end = np.minimum(np.nan_to_num(target_range, posinf=r_max), r_max)
    _, whole, partial = split(end)
    lam = whole + partial
    counts = rng.poisson(lam)
    total = int(counts.sum())
    if total == 0:
        return ParticleReturns(none.intensity, none.range_m, none.blocked, 0, float(lam.sum()))
    beam = np.repeat(np.arange(n), counts)  # sorted by beam
    stop = end[beam]
    k, whole, partial = split(stop)
    u = rng.random(total) * (whole + partial)
    b_sorted = np.empty(total, np.int64)
    w_ = u < whole
    b_sorted[w_] = np.searchsorted(c_full, u[w_], side="right") - 1
    p_ = ~w_
    if np.any(p_):
        span = np.maximum(optics.area_integral(stop[p_]) - a_min, 1e-300)
        b_sorted[p_] = np.searchsorted(c_n, c_n[k[p_]] + (u[p_] - whole[p_]) / span, "right") - 1
    b_sorted = np.clip(b_sorted, 0, len(order) - 1)
    b = order[b_sorted]
    d_m = dsd.geometric_diameter(dsd.sample_sizes(edges, b, rng)) * 1e-3
    top = optics.area_integral(np.minimum(stop, r_det[b]))
    r = optics.inverse_area_integral(a_min + rng.random(total) * (top - a_min))
    inten, share = particle_intensity(rho, d_m, r, optics, alpha, r_ref)
    starts = np.flatnonzero(np.r_[True, beam[1:] != beam[:-1]])
    beams = beam[starts]
    best = np.zeros(n)
    best[beams] = np.maximum.reduceat(inten, starts)
    is_max = inten == best[beam]
    rng_best = np.zeros(n)
    rng_best[beam[is_max]] = r[is_max]
    blocked = np.zeros(n)
    blocked[beams] = np.minimum(np.add.reduceat(share, starts), 1.0)
    return ParticleReturns(best, rng_best, blocked, total, float(lam.sum()))


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
    blocked = np.zeros(n)
    for p in particles:
        blocked = np.minimum(blocked + p.blocked, 1.0)
    hard = hard_intensity * (1.0 - blocked)
    best_i, best_r = hard.copy(), np.where(np.isfinite(hard_range), hard_range, 0.0)
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
