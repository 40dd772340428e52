"""Streaming accumulators with bounded memory: fixed-bin histograms and running moments.

Every statistic of ``simgen stats`` is one of these, fed block by block and never holding the
samples. Both merge (two histograms over the same bins add up), so statistics of several cameras
or shards pool exactly, and both round-trip through JSON (:meth:`to_json` / ``from_json``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Moments:
    """Count, mean, variance, min and max of a stream (Chan et al.'s parallel update)."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    def add(self, values: np.ndarray) -> None:
        v = np.asarray(values).ravel()
        if v.dtype.kind == "f":
            v = v[np.isfinite(v)]
        self.add_finite(v)

    def add_finite(self, v: np.ndarray) -> None:
        """Add a 1-D array of finite values (in its own dtype; sums accumulate in float64,
        shifted by the first value against cancellation)."""
        if v.size == 0:
            return
        if v.dtype.kind in "bu":
            v = v.astype(np.int64)
        n = int(v.size)
        shift = v[0]
        d = v - shift
        s = float(d.sum(dtype=np.float64))
        s2 = float(np.square(d, dtype=np.float64).sum())  # no BLAS (threads contend under load)
        self.merge(
            Moments(
                n,
                float(shift) + s / n,
                max(s2 - s * s / n, 0.0),
                float(v.min()),
                float(v.max()),
            )
        )

    def merge(self, other: Moments) -> None:
        if other.count == 0:
            return
        n = self.count + other.count
        d = other.mean - self.mean
        self.mean += d * other.count / n
        self.m2 += other.m2 + d * d * self.count * other.count / n
        self.count = n
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.count) if self.count else 0.0

    def to_json(self) -> dict[str, Any]:
        if self.count == 0:
            return {"count": 0, "mean": None, "std": None, "min": None, "max": None}
        return {
            "count": self.count,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Moments:
        n = int(d.get("count", 0))
        if n == 0:
            return cls()
        return cls(n, float(d["mean"]), float(d["std"]) ** 2 * n, float(d["min"]), float(d["max"]))


@dataclass
class Histogram:
    """Counts in fixed bins between ``lo`` and ``hi`` (linear, or in log10 when ``log``), plus
    values below and above the range and the moments of every finite value added. Bins are
    half-open ``[e_i, e_i+1)`` except the last, which includes ``hi``.

    :meth:`integer` histograms have one bin per integer ``lo, lo + 1, ..., hi - 1`` (edges at
    half-integers)."""

    lo: float
    hi: float
    bins: int
    log: bool = False
    unit: str = ""
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    under: int = 0
    over: int = 0
    moments: Moments = field(default_factory=Moments)

    def __post_init__(self) -> None:
        if self.counts.size == 0:
            self.counts = np.zeros(self.bins, np.int64)
        if self.log and self.lo <= 0:
            raise ValueError("a log histogram needs lo > 0")

    @classmethod
    def integer(cls, lo: int, hi: int, unit: str = "") -> Histogram:
        return cls(lo - 0.5, hi - 0.5, hi - lo, unit=unit)

    @property
    def edges(self) -> np.ndarray:
        if self.log:
            return np.logspace(math.log10(self.lo), math.log10(self.hi), self.bins + 1)
        return np.linspace(self.lo, self.hi, self.bins + 1)

    def add(self, values: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Add values (NaN and inf are skipped; a log histogram counts values <= 0 as under)."""
        v = np.asarray(values).ravel()
        w = None if weights is None else np.asarray(weights, np.int64).ravel()
        if v.dtype.kind == "f":
            ok = np.isfinite(v)
            if not ok.all():
                v = v[ok]
                w = None if w is None else w[ok]
        elif v.dtype.kind in "bu":
            v = v.astype(np.int64)
        if v.size == 0:
            return
        if w is None:
            self.moments.add_finite(v)
        else:
            self._weighted_moments(v.astype(np.float64), w)
        if self.log:
            tiny = np.finfo(v.dtype).tiny if v.dtype.kind == "f" else 1e-300
            x = np.log10(np.maximum(v, tiny))
            a, b = math.log10(self.lo), math.log10(self.hi)
        else:
            x, a, b = v, self.lo, self.hi
        t = (x - a) * (self.bins / (b - a))
        idx = np.floor(t)
        idx[t == self.bins] = self.bins - 1  # the last bin is closed
        np.clip(idx, -1, self.bins, out=idx)
        idx = idx.astype(np.intp) + 1  # 0 = under, bins + 1 = over
        c = np.bincount(idx, weights=w, minlength=self.bins + 2)
        c = np.rint(c).astype(np.int64) if w is not None else c.astype(np.int64)
        self.under += int(c[0])
        self.over += int(c[-1])
        self.counts += c[1:-1]

    def _weighted_moments(self, v: np.ndarray, w: np.ndarray) -> None:
        n = int(w.sum())
        if n == 0:
            return
        mean = float((v * w).sum() / n)
        m2 = float((w * (v - mean) ** 2).sum())
        nz = w > 0
        self.moments.merge(Moments(n, mean, m2, float(v[nz].min()), float(v[nz].max())))

    def add_counts(self, counts: np.ndarray) -> None:
        """Add counts already binned on this histogram's bins (a pixel-value histogram)."""
        c = np.asarray(counts, np.int64)
        self.counts += c
        centers = self.centers
        self._weighted_moments(centers, c)

    @property
    def centers(self) -> np.ndarray:
        e = self.edges
        return np.sqrt(e[:-1] * e[1:]) if self.log else 0.5 * (e[:-1] + e[1:])

    @property
    def total(self) -> int:
        return int(self.counts.sum()) + self.under + self.over

    def merge(self, other: Histogram) -> None:
        if (other.lo, other.hi, other.bins, other.log) != (self.lo, self.hi, self.bins, self.log):
            raise ValueError("histograms over different bins do not merge")
        self.counts += other.counts
        self.under += other.under
        self.over += other.over
        self.moments.merge(other.moments)

    def copy(self) -> Histogram:
        return Histogram.from_json(self.to_json())

    def to_json(self) -> dict[str, Any]:
        return {
            "lo": self.lo,
            "hi": self.hi,
            "bins": self.bins,
            "log": self.log,
            "unit": self.unit,
            "counts": [int(c) for c in self.counts],
            "under": self.under,
            "over": self.over,
            **self.moments.to_json(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Histogram:
        return cls(
            float(d["lo"]),
            float(d["hi"]),
            int(d["bins"]),
            bool(d.get("log", False)),
            str(d.get("unit", "")),
            np.asarray(d["counts"], np.int64),
            int(d.get("under", 0)),
            int(d.get("over", 0)),
            Moments.from_json(d),
        )


def cdf_distances(a: Histogram, b: Histogram) -> tuple[float, float]:
    """(KS, W1) between two histograms over the same bins, with under- and overflow as mass at
    the ends. KS is the largest difference of the binned CDFs (0..1); W1 is the earth mover's
    distance between the binned distributions in units of the histogram's axis (log10 units for
    a log histogram) divided by the axis' span, so 0..1 as well."""
    if (a.lo, a.hi, a.bins, a.log) != (b.lo, b.hi, b.bins, b.log):
        raise ValueError("histograms over different bins cannot be compared")
    pa, pb = _masses(a), _masses(b)
    if pa is None or pb is None:
        return math.nan, math.nan
    ca, cb = np.cumsum(pa), np.cumsum(pb)
    ks = float(np.abs(ca - cb).max())
    # mass at under/over sits at the ends; each inner bin has width 1/bins of the span
    w1 = float(np.abs(ca - cb)[:-1].sum() / (a.bins + 1))
    return ks, w1


def _masses(h: Histogram) -> np.ndarray | None:
    c = np.concatenate([[h.under], h.counts, [h.over]]).astype(np.float64)
    s = c.sum()
    return None if s == 0 else c / s
