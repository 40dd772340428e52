"""Rain and snow as particle populations (pure numpy): size distributions, fall speeds,
extinction, and seeded sampling of the particles in a volume.

Sources (docs/weather.md):

* rain drop sizes: Marshall & Palmer (1948), ``N(D) = N0 exp(-Lambda D)`` with
  ``N0 = 8000 m^-3 mm^-1``, ``Lambda = 4.1 R^-0.21 mm^-1`` (R in mm/h);
* snowflake sizes: Gunn & Marshall (1958), ``N0 = 3800 R^-0.87 m^-3 mm^-1``,
  ``Lambda = 2.55 R^-0.48 mm^-1`` (R = melted-water rate in mm/h), as used by Hahner et al.
  (CVPR 2022) for LiDAR snowfall. Gunn & Marshall's D is the diameter of the melted flake;
  the flake itself is larger: with the snow density of Brandes et al. (2007),
  ``rho_s = 0.178 D_s^-0.922 g cm^-3`` (D_s in mm), mass conservation
  ``D^3 = 0.178 D_s^2.078`` gives the flake diameter used for its size, cross-section and
  fall speed;
* rain fall speed: Atlas, Srivastava & Sekhon (1973), a fit to Gunn & Kinzer's (1949)
  measurements, ``v = 9.65 - 10.3 exp(-0.6 D)`` m/s;
* snow fall speed: Locatelli & Hobbs (1974), aggregates of unrimed dendrites,
  ``v = 0.8 D^0.16`` m/s;
* extinction of particles much larger than the wavelength (visible light and 905 nm alike):
  extinction efficiency 2 (the extinction paradox), so
  ``alpha = integral of 2 (pi D_g^2 / 4) N(D) dD`` over the whole distribution, with D_g the
  geometric diameter (``pi N0 / Lambda^3`` for rain).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Sizes sampled, mm. Drops above ~6 mm break up; smaller particles are neither seen nor
#: detected individually (they still count in the extinction, which uses the whole distribution).
RAIN_D_MM = (0.1, 6.0)
SNOW_D_MM = (0.1, 10.0)
#: Bins of the size distribution used for sampling.
SIZE_BINS = 48


@dataclass(frozen=True)
class SizeDistribution:
    """An exponential particle size distribution ``N(D) = n0 exp(-lam D)`` (D in mm, N in
    m^-3 mm^-1) of one kind of particle."""

    kind: str  # "rain" or "snow"
    rate_mm_h: float
    n0: float  # m^-3 mm^-1
    lam: float  # 1/mm
    d_min: float  # mm, smallest particle sampled
    d_max: float  # mm

    @staticmethod
    def rain(rate_mm_h: float) -> SizeDistribution:
        lam = 4.1 * rate_mm_h**-0.21 if rate_mm_h > 0 else math.inf
        return SizeDistribution("rain", rate_mm_h, 8000.0, lam, *RAIN_D_MM)

    @staticmethod
    def snow(rate_mm_h: float) -> SizeDistribution:
        if rate_mm_h <= 0:
            return SizeDistribution("snow", rate_mm_h, 0.0, math.inf, *SNOW_D_MM)
        return SizeDistribution(
            "snow", rate_mm_h, 3800.0 * rate_mm_h**-0.87, 2.55 * rate_mm_h**-0.48, *SNOW_D_MM
        )

    @property
    def empty(self) -> bool:
        return self.rate_mm_h <= 0 or self.n0 <= 0

    def number_density(self, d_lo: float | None = None, d_hi: float | None = None) -> float:
        """Particles per m^3 with diameters in [d_lo, d_hi] mm (default: the sampled range)."""
        if self.empty:
            return 0.0
        lo = self.d_min if d_lo is None else d_lo
        hi = self.d_max if d_hi is None else d_hi
        return self.n0 / self.lam * (math.exp(-self.lam * lo) - math.exp(-self.lam * hi))

    @property
    def extinction_per_m(self) -> float:
        """Extinction coefficient, 1/m: ``int 2 (pi D_g^2 / 4) N(D) dD`` (mm^2 m^-3 = 1e-6 /m);
        ``pi N0 / Lambda^3`` for rain."""
        if self.empty:
            return 0.0
        if self.kind == "rain":
            return math.pi * self.n0 / self.lam**3 * 1e-6
        d = np.linspace(0.0, 40.0 / self.lam, 4001)[1:]
        f = np.pi / 2.0 * self.geometric_diameter(d) ** 2 * self.n0 * np.exp(-self.lam * d)
        return float(np.sum(f) * (d[1] - d[0]) * 1e-6)

    def geometric_diameter(self, d_mm: np.ndarray) -> np.ndarray:
        """Size (mm) of particles of distribution diameter ``d_mm``: the drop itself for rain,
        the flake of that melted diameter for snow (Brandes et al. 2007 density)."""
        d = np.asarray(d_mm, np.float64)
        if self.kind == "rain":
            return d
        return (d**3 / 0.178) ** (1.0 / 2.078)

    def fall_speed(self, d_mm: np.ndarray) -> np.ndarray:
        """Terminal fall speed, m/s, of particles of distribution diameter ``d_mm``."""
        d = np.asarray(d_mm, np.float64)
        if self.kind == "rain":
            return np.maximum(9.65 - 10.3 * np.exp(-0.6 * d), 0.0)
        return 0.8 * self.geometric_diameter(d) ** 0.16

    def bins(self) -> tuple[np.ndarray, np.ndarray]:
        """Bin edges (SIZE_BINS + 1,) in mm (log-spaced) and the number density (m^-3) in each."""
        edges = np.geomspace(self.d_min, self.d_max, SIZE_BINS + 1)
        if self.empty:
            return edges, np.zeros(SIZE_BINS)
        cdf = -self.n0 / self.lam * np.exp(-self.lam * edges)
        return edges, np.diff(cdf)

    def sample_sizes(self, edges: np.ndarray, bin_index: np.ndarray, rng: np.random.Generator):
        """Diameters (mm) inside the given bins, distributed as N(D) within each bin."""
        lo, hi = edges[bin_index], edges[bin_index + 1]
        u = rng.random(len(bin_index))
        a, b = np.exp(-self.lam * lo), np.exp(-self.lam * hi)
        return -np.log(a - u * (a - b)) / self.lam


def poisson_counts(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson counts for an array of expected values (the number of particles in a volume)."""
    return rng.poisson(np.maximum(expected, 0.0))
