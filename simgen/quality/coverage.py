"""Coverage of the randomization space: the sampled values of each declared distribution against
its declared law (pure functions and a bounded-memory accumulator).

Each continuous distribution is decomposed into one or more *dimensions*, each mapped by the
law's CDF to ``u`` in [0, 1] so that ``u`` is uniform when sampling follows the law: a uniform
maps linearly, a normal through its (truncated) CDF, ``in_sphere`` into radius (``(r/R)^3``),
azimuth and polar angle, ``hsv`` into hue, saturation and value, rotations into angle and axis.
On ``u``:

* **coverage** is the share of K equal bins holding at least one sample, with
  ``K = clamp(n // 5, 2, 50)`` for n samples: 5 expected samples per bin, so a law sampled in
  full leaves a bin empty with probability about ``e^-5`` (coverage ~0.99), while a parameter
  sampled in only half its range scores at most ``0.5 + 1/K``;
* the **largest empty interval** is the longest stretch of [0, 1] without a sample (exact to
  1/1024), also given in the parameter's units.

Discrete laws (choice, randint, bernoulli, files) report the share of their values drawn at
least once. ``custom`` samplers have no declared law: only their values' range is reported.
"""

from __future__ import annotations

import colorsys
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import singledispatch
from typing import Any

import numpy as np

from simgen.random.distributions import (
    Bernoulli,
    Choice,
    Custom,
    Distribution,
    IntRange,
    LogUniform,
    Normal,
    Schedule,
    Uniform,
)
from simgen.random.files import Files
from simgen.random.kinds import DISTRIBUTIONS, PerFrame
from simgen.random.spatial import (
    AxisRotation,
    Hsv,
    InBox,
    InDisk,
    InShell,
    InSphere,
    UniformRotation,
    plane_basis,
)

RESOLUTION = 1024  # fine bins of u that the accumulator keeps (min and max value in each)
MIN_BINS, MAX_BINS, PER_BIN = 2, 50, 5
DISPLAY_BINS = 32
MAX_DISCRETE = 1000  # randint ranges wider than this are treated as continuous


def coverage_bins(n: int) -> int:
    """K, the number of equal bins coverage is measured on, for ``n`` samples."""
    return int(min(MAX_BINS, max(MIN_BINS, n // PER_BIN)))


# -- laws -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dim:
    """One dimension of a continuous law: ``to_u`` maps a sampled value (in the field's form)
    to [0, 1], ``to_value`` maps u back to the dimension's own units (for display)."""

    name: str
    unit: str
    to_u: Callable[[Any], float]
    to_value: Callable[[float], float]


@dataclass(frozen=True)
class Law:
    """What a declared distribution promises: continuous dimensions, or a set of values
    (``categories``: canonical JSON strings; ``n_categories`` when only the count is known)."""

    tag: str
    dims: tuple[Dim, ...] = ()
    categories: tuple[str, ...] | None = None
    n_categories: int | None = None
    element: bool = False  # discrete values are lists (choice with k): count each element
    note: str = ""

    @property
    def discrete(self) -> bool:
        return self.n_categories is not None or self.categories is not None


def canonical(v: Any) -> str:
    return json.dumps(v, sort_keys=True)


def declared_text(dist: Distribution) -> str:
    """A distribution in its scene-file form, compact: ``{"uniform": [0.1, 2.0]}``."""
    return json.dumps(dist.model_dump(mode="json", exclude_none=True), separators=(", ", ": "))


def _linear(name: str, lo: float, hi: float, get: Callable[[Any], float], unit: str = "") -> Dim:
    span = hi - lo
    return Dim(name, unit, lambda v: (get(v) - lo) / span, lambda u: lo + u * span)


def _scalar(v: Any) -> float:
    return float(v)


def _component(i: int, of: Callable[[Any], Any] = lambda v: v) -> Callable[[Any], float]:
    """Component ``i`` of a vector value (after ``of``)."""
    return lambda v: float(of(v)[i])


@singledispatch
def law_of(dist: Distribution, ctx: Any = None) -> Law | None:
    """The law of a declared distribution (None: no declared law, e.g. ``custom``)."""
    return None


@law_of.register
def _(d: Uniform, ctx: Any = None) -> Law | None:
    lo, hi = d.uniform
    return Law(d.tag, (_linear("value", lo, hi, _scalar),)) if hi > lo else None


@law_of.register
def _(d: LogUniform, ctx: Any = None) -> Law | None:
    lo, hi = (math.log(x) for x in d.log_uniform)
    if hi <= lo:
        return None
    dim = Dim(
        "value",
        "log",
        lambda v: (math.log(max(float(v), 1e-300)) - lo) / (hi - lo),
        lambda u: math.exp(lo + u * (hi - lo)),
    )
    return Law(d.tag, (dim,))


@law_of.register
def _(d: Normal, ctx: Any = None) -> Law | None:
    from scipy.special import ndtr, ndtri

    p = d.normal
    if p.std <= 0:
        return None
    c0 = float(ndtr((p.low - p.mean) / p.std)) if p.low is not None else 0.0
    c1 = float(ndtr((p.high - p.mean) / p.std)) if p.high is not None else 1.0
    if c1 <= c0:
        return None
    dim = Dim(
        "value",
        "normal CDF",
        lambda v: (float(ndtr((float(v) - p.mean) / p.std)) - c0) / (c1 - c0),
        lambda u: p.mean + p.std * float(ndtri(min(max(c0 + u * (c1 - c0), 1e-12), 1 - 1e-12))),
    )
    return Law(d.tag, (dim,))


@law_of.register
def _(d: IntRange, ctx: Any = None) -> Law | None:
    lo, hi = d.randint
    if hi - lo + 1 > MAX_DISCRETE:
        return Law(d.tag, (_linear("value", lo - 0.5, hi + 0.5, _scalar),))
    return Law(d.tag, categories=tuple(canonical(i) for i in range(lo, hi + 1)))


@law_of.register
def _(d: Choice, ctx: Any = None) -> Law | None:
    c = d.choice
    values = [v for i, v in enumerate(c.values) if c.weights is None or c.weights[i] > 0]
    cats = tuple(dict.fromkeys(canonical(v) for v in values))
    return Law(d.tag, categories=cats, element=c.k is not None)


@law_of.register
def _(d: Bernoulli, ctx: Any = None) -> Law | None:
    cats = tuple(
        canonical(v)
        for v in (False, True)
        if (v and d.bernoulli > 0) or (not v and d.bernoulli < 1)
    )
    return Law(d.tag, categories=cats)


@law_of.register
def _(d: Schedule, ctx: Any = None) -> Law | None:
    (a0, b0), (a1, b1) = d.range_at(0.0), d.range_at(1.0)
    lo, hi = min(a0, a1), max(b0, b1)
    if hi <= lo:
        return None
    dims = (_linear("value", lo, hi, _scalar),)
    return Law(d.tag, dims, note="coverage of the range the schedule spans over the dataset")


@law_of.register
def _(d: PerFrame, ctx: Any = None) -> Law | None:
    inner = law_of(d.inner, ctx)
    if inner is None:
        return None
    return Law(d.tag, inner.dims, inner.categories, inner.n_categories, inner.element, "every tick")


@law_of.register
def _(d: Files, ctx: Any = None) -> Law | None:
    try:
        cats = tuple(canonical(c) for c in d.candidates(ctx))
    except Exception:  # the asset folders are not here (a dataset copied elsewhere)
        n = d.files.pool_size
        return Law(d.tag, n_categories=n) if n else None
    return Law(d.tag, categories=cats)


@law_of.register
def _(d: Custom, ctx: Any = None) -> Law | None:
    return None


@law_of.register
def _(d: InBox, ctx: Any = None) -> Law | None:
    p = d.in_box
    dims = tuple(
        _linear(axis, c - s / 2, c + s / 2, _component(i), "m")
        for i, (axis, c, s) in enumerate(zip("xyz", p.center, p.size, strict=True))
        if s > 0
    )
    return Law(d.tag, dims) if dims else None


def _offset(v: Any, center: Any) -> np.ndarray:
    return np.asarray(v[:3], np.float64) - np.asarray(center, np.float64)


def _direction_dims(center: Any) -> tuple[Dim, Dim]:
    def azimuth(v: Any) -> float:
        d = _offset(v, center)
        return (math.atan2(d[1], d[0]) + math.pi) / (2 * math.pi)

    def polar(v: Any) -> float:
        d = _offset(v, center)
        n = float(np.linalg.norm(d))
        return 0.5 if n == 0 else (d[2] / n + 1) / 2

    return (
        Dim("azimuth", "deg", azimuth, lambda u: math.degrees(u * 2 * math.pi - math.pi)),
        Dim("polar", "cos", polar, lambda u: 2 * u - 1),
    )


def _radial(inner: float, outer: float, power: int, center: Any) -> Dim:
    a, b = inner**power, outer**power
    return Dim(
        "radius",
        "m",
        lambda v: (float(np.linalg.norm(_offset(v, center))) ** power - a) / (b - a),
        lambda u: (a + u * (b - a)) ** (1 / power),
    )


@law_of.register
def _(d: InSphere, ctx: Any = None) -> Law | None:
    p = d.in_sphere
    return Law(d.tag, (_radial(0.0, p.radius, 3, p.center), *_direction_dims(p.center)))


@law_of.register
def _(d: InShell, ctx: Any = None) -> Law | None:
    p = d.in_shell
    if p.outer <= p.inner:
        return None
    return Law(d.tag, (_radial(p.inner, p.outer, 3, p.center), *_direction_dims(p.center)))


@law_of.register
def _(d: InDisk, ctx: Any = None) -> Law | None:
    p = d.in_disk
    u_axis, v_axis = plane_basis(p.normal)

    def angle(v: Any) -> float:
        o = _offset(v, p.center)
        return (math.atan2(float(o @ v_axis), float(o @ u_axis)) + math.pi) / (2 * math.pi)

    dims = (
        _radial(p.inner, p.radius, 2, p.center),
        Dim("angle", "deg", angle, lambda u: math.degrees(u * 2 * math.pi - math.pi)),
    )
    return Law(d.tag, dims if p.radius > p.inner else dims[1:])


@law_of.register
def _(d: Hsv, ctx: Any = None) -> Law | None:
    p = d.hsv
    h0, h1 = p.hue_deg

    def hsv(v: Any) -> tuple[float, float, float]:
        return colorsys.rgb_to_hsv(*(min(max(float(c), 0.0), 1.0) for c in v[:3]))

    def hue(v: Any) -> float:
        h = hsv(v)[0] * 360.0
        return ((h - h0) % 360.0) / (h1 - h0)

    dims = []
    if h1 > h0:
        dims.append(Dim("hue", "deg", hue, lambda u: h0 + u * (h1 - h0)))
    for i, name in ((1, "saturation"), (2, "value")):
        lo, hi = getattr(p, name)
        if hi > lo:
            dims.append(_linear(name, lo, hi, _component(i, hsv)))
    return Law(d.tag, tuple(dims)) if dims else None


def _quat(v: Any) -> np.ndarray:
    q = v["quat_wxyz"] if isinstance(v, dict) else v
    return np.asarray(q, np.float64)


@law_of.register
def _(d: AxisRotation, ctx: Any = None) -> Law | None:
    from simgen.geometry import euler_deg_to_quat

    p = d.axis_rotation
    lo, hi = p.angle_deg
    if hi <= lo:
        return None
    axis = np.asarray(p.axis, np.float64) / np.linalg.norm(p.axis)
    base = np.asarray(euler_deg_to_quat(p.base_euler_deg), np.float64)
    base_inv = base * np.array([1.0, -1.0, -1.0, -1.0])

    def angle(v: Any) -> float:
        from simgen.random.spatial import _quat_mul

        q = _quat_mul(_quat(v), base_inv)  # the rotation about the axis
        deg = math.degrees(2 * math.atan2(float(q[1:] @ axis), float(q[0])))
        return ((deg - lo) % 360.0) / (hi - lo)

    return Law(d.tag, (Dim("angle", "deg", angle, lambda u: lo + u * (hi - lo)),))


@law_of.register
def _(d: UniformRotation, ctx: Any = None) -> Law | None:
    def angle(v: Any) -> float:  # Haar: the angle's CDF is (t - sin t) / pi
        q = _quat(v)
        t = 2 * math.atan2(float(np.linalg.norm(q[1:])), abs(float(q[0])))
        return (t - math.sin(t)) / math.pi

    def axis(v: Any) -> list[float]:
        q = _quat(v)
        n = float(np.linalg.norm(q[1:]))
        a = q[1:] / n if n > 0 else np.array([0.0, 0.0, 1.0])
        return [float(x) for x in (a if q[0] >= 0 else -a)]

    az, pol = _direction_dims((0.0, 0.0, 0.0))
    dims = (
        Dim("angle", "rad CDF", angle, lambda u: u * math.pi),
        Dim("axis_azimuth", az.unit, lambda v: az.to_u(axis(v)), az.to_value),
        Dim("axis_polar", pol.unit, lambda v: pol.to_u(axis(v)), pol.to_value),
    )
    return Law(d.tag, dims)


# -- declared distributions of a scene --------------------------------------------------------


def _path(base: str, key: str | int) -> str:
    return f"{base}[{key}]" if isinstance(key, int) else (f"{base}.{key}" if base else key)


def declared_distributions(scene_json: dict[str, Any]) -> dict[str, Distribution]:
    """Every distribution in a scene (its validated JSON form) by field path, plus the implicit
    template choice of scatters with several templates (``scatter[i].template``)."""
    out: dict[str, Distribution] = {}

    def walk(v: Any, path: str) -> None:
        if isinstance(v, dict):
            if len(v) == 1 and next(iter(v)) in DISTRIBUTIONS:
                try:
                    out[path] = DISTRIBUTIONS[next(iter(v))].model_validate(v)
                    return
                except ValueError:
                    pass
            for k, x in v.items():
                walk(x, _path(path, k))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                walk(x, _path(path, i))

    walk(scene_json, "")
    for i, sc in enumerate(scene_json.get("scatter", []) or []):
        n = len(sc.get("objects") or [])
        if n > 1:
            out[f"scatter[{i}].template"] = Choice.model_validate(
                {"choice": {"values": list(range(n)), "weights": sc.get("weights")}}
            )
    return out


_INSTANCE = re.compile(r"^(scatter\[\d+\])\.instances\[(\d+)\]\.(.+)$")


def declared_path(key: str, declared: dict[str, Any], sampled: dict[str, Any]) -> str | None:
    """The declared distribution a sampled field path was drawn from. Scattered objects are
    drawn at ``scatter[s].instances[i].<field>`` from the scatter's own fields or from its
    template ``scatter[s].objects[j].<field>``; their values pool under the declared path."""
    if key in declared:
        return key
    m = _INSTANCE.match(key)
    if m is None:
        return None
    base, i, rest = m.groups()
    j = sampled.get(f"{base}.instances[{i}].template", 0)
    for cand in (
        f"{base}.{rest}",
        f"{base}.assets" if rest == "asset" else "",
        f"{base}.objects[{j}].{rest}",
    ):
        if cand in declared:
            return cand
    return None


# -- accumulators -----------------------------------------------------------------------------


@dataclass
class DimCoverage:
    """Occupancy of one dimension in RESOLUTION fine bins (count, min and max u in each)."""

    name: str
    unit: str
    count: np.ndarray = field(default_factory=lambda: np.zeros(RESOLUTION, np.int64))
    umin: np.ndarray = field(default_factory=lambda: np.full(RESOLUTION, np.inf))
    umax: np.ndarray = field(default_factory=lambda: np.full(RESOLUTION, -np.inf))
    outside: int = 0

    def add(self, u: float) -> None:
        if not math.isfinite(u) or u < -1e-9 or u > 1 + 1e-9:
            self.outside += 1
            return
        u = min(max(u, 0.0), 1.0)
        b = min(int(u * RESOLUTION), RESOLUTION - 1)
        self.count[b] += 1
        self.umin[b] = min(self.umin[b], u)
        self.umax[b] = max(self.umax[b], u)

    @property
    def n(self) -> int:
        return int(self.count.sum())

    def bins_hit(self, k: int) -> int:
        nz = self.count > 0
        lo = np.minimum((self.umin[nz] * k).astype(np.int64), k - 1)
        hi = np.minimum((self.umax[nz] * k).astype(np.int64), k - 1)
        return len(set(lo.tolist()) | set(hi.tolist()))

    def largest_gap(self) -> tuple[float, float]:
        """(start, end) in u of the longest interval of [0, 1] holding no sample."""
        nz = np.nonzero(self.count > 0)[0]
        if len(nz) == 0:
            return (0.0, 1.0)
        starts = np.concatenate([[0.0], self.umax[nz]])
        ends = np.concatenate([self.umin[nz], [1.0]])
        i = int(np.argmax(ends - starts))
        return (float(starts[i]), float(ends[i]))

    def result(self, to_value: Callable[[float], float]) -> dict[str, Any]:
        n = self.n
        k = coverage_bins(n)
        g0, g1 = self.largest_gap()
        disp = self.count.reshape(DISPLAY_BINS, -1).sum(axis=1)
        edges_u = np.linspace(0, 1, DISPLAY_BINS + 1)
        return {
            "dim": self.name,
            "unit": self.unit,
            "samples": n,
            "outside": self.outside,
            "bins": k,
            "bins_hit": self.bins_hit(k) if n else 0,
            "coverage": self.bins_hit(k) / k if n else 0.0,
            "largest_gap": g1 - g0,
            "largest_gap_u": [g0, g1],
            "largest_gap_value": [_finite(to_value(g0)), _finite(to_value(g1))],
            "histogram_u": [int(c) for c in disp],
            "histogram_value_edges": [_finite(to_value(float(u))) for u in edges_u],
        }


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


class ParameterCoverage:
    """Sampled values of one declared distribution against its law (bounded memory)."""

    def __init__(self, path: str, dist: Distribution, law: Law | None, per_frame: bool) -> None:
        self.path, self.dist, self.law, self.per_frame = path, dist, law, per_frame
        self.samples = 0
        self.episodes = 0
        self.dims = [DimCoverage(d.name, d.unit) for d in law.dims] if law else []
        self.categories: dict[str, int] = {}
        self.numeric = None if law is not None else _NumericRange()

    def add(self, value: Any) -> None:
        self.samples += 1
        if self.law is None:
            assert self.numeric is not None
            self.numeric.add(value)
        elif self.law.discrete:
            for v in value if self.law.element and isinstance(value, list) else [value]:
                key = canonical(v)
                self.categories[key] = self.categories.get(key, 0) + 1
        else:
            for dim, acc in zip(self.law.dims, self.dims, strict=True):
                try:
                    u = float(dim.to_u(value))
                except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError):
                    u = math.nan
                acc.add(u)

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "law": self.law.tag if self.law else self.dist.tag,
            "declared": declared_text(self.dist),
            "note": self.law.note if self.law else "no declared law: values' range only",
            "per_frame": self.per_frame,
            "samples": self.samples,
            "episodes": self.episodes,
        }
        if self.law is None:
            assert self.numeric is not None
            out.update(kind="undeclared", coverage=None, range=self.numeric.result())
            return out
        if self.law.discrete:
            declared = self.law.categories
            n_decl = len(declared) if declared is not None else self.law.n_categories or 0
            hit = (
                sum(1 for c in declared if self.categories.get(c, 0) > 0)
                if declared is not None
                else len(self.categories)
            )
            counts = {c: self.categories.get(c, 0) for c in declared or ()}
            counts.update({c: n for c, n in self.categories.items() if c not in counts})
            out.update(
                kind="discrete",
                values=len(counts) if declared is None else n_decl,
                values_hit=hit,
                coverage=hit / n_decl if n_decl and self.samples else None,
                counts=[{"value": json.loads(c), "count": n} for c, n in counts.items()],
                outside=0
                if declared is None
                else sum(n for c, n in self.categories.items() if c not in declared),
            )
            return out
        dims = [acc.result(d.to_value) for d, acc in zip(self.law.dims, self.dims, strict=True)]
        worst = min(dims, key=lambda r: r["coverage"]) if dims else None
        out.update(
            kind="continuous",
            dims=dims,
            coverage=worst["coverage"] if worst and self.samples else None,
            largest_gap=max(r["largest_gap"] for r in dims) if dims and self.samples else None,
        )
        return out


class _NumericRange:
    def __init__(self) -> None:
        self.lo, self.hi, self.n, self.other = math.inf, -math.inf, 0, 0

    def add(self, v: Any) -> None:
        flat = np.asarray(v, dtype=object).ravel() if isinstance(v, list) else [v]
        nums = [float(x) for x in flat if isinstance(x, (int, float)) and not isinstance(x, bool)]
        if not nums:
            self.other += 1
            return
        self.n += 1
        self.lo, self.hi = min(self.lo, *nums), max(self.hi, *nums)

    def result(self) -> dict[str, Any]:
        if not self.n:
            return {"numeric": 0, "other": self.other}
        return {"numeric": self.n, "other": self.other, "min": self.lo, "max": self.hi}
