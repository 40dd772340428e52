"""Resource and plausibility limits of a scene (:mod:`simgen.limits`), checked at validation.

A scene is checked when it is loaded (errors point at file:line) and again, with every random
value resolved, for each episode. A distribution is checked by its range where it has one
(``uniform``, ``log_uniform``, ``randint``, ``choice`` of numbers, ``normal`` with ``low`` and
``high``), so ``{uniform: [1, 1e9]}`` fails at load time rather than in some episodes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from simgen.errors import FieldValueError
from simgen.limits import Limits, current, exceeded
from simgen.random.distributions import Choice, Distribution, IntRange, LogUniform, Normal, Uniform

Path_ = tuple[str | int, ...]


def number_range(x: Any) -> tuple[float, float] | None:
    """(lowest, highest) value a number field can take; None if unbounded or unknown."""
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float)):
        return float(x), float(x)
    if isinstance(x, Uniform):
        return float(x.uniform[0]), float(x.uniform[1])
    if isinstance(x, LogUniform):
        return float(x.log_uniform[0]), float(x.log_uniform[1])
    if isinstance(x, IntRange):
        return float(x.randint[0]), float(x.randint[1])
    if isinstance(x, Normal) and x.normal.low is not None and x.normal.high is not None:
        return float(x.normal.low), float(x.normal.high)
    if isinstance(x, Choice) and x.choice.k is None:
        ranges = [number_range(v) for v in x.choice.values]
        if ranges and all(r is not None for r in ranges):
            return min(r[0] for r in ranges if r), max(r[1] for r in ranges if r)
    return None


def _vector_norm_max(v: Any) -> float | None:
    """Largest Euclidean norm a vector field can take (componentwise bounds); None: unknown."""
    if isinstance(v, Distribution) or not isinstance(v, (list, tuple)):
        return None
    highs = []
    for c in v:
        r = number_range(c)
        if r is None:
            return None
        highs.append(max(abs(r[0]), abs(r[1])))
    return math.hypot(*highs)  # no overflow for huge components


def check_scene(scene: Any, limits: Limits | None = None) -> None:
    """Raise :class:`FieldValueError` (path relative to the scene) at the first value beyond
    the limits."""
    lim = limits or current()
    _check_counts(scene, lim)
    sim = scene.simulation
    _range(("simulation", "duration"), sim.duration, lim, None, "max_duration_s", "duration, s")
    dt, dur = number_range(sim.timestep), number_range(sim.duration)
    if dt is not None and dur is not None and dt[0] > 0:
        steps = dur[1] / dt[0]
        if steps > lim.max_physics_steps:
            raise FieldValueError(
                ("simulation", "timestep"),
                exceeded("max_physics_steps", "physics steps (duration / timestep)", steps, lim),
            )
    g = _vector_norm_max(sim.gravity)
    if g is not None and g > lim.max_gravity_m_s2:
        raise FieldValueError(
            ("simulation", "gravity"), exceeded("max_gravity_m_s2", "|gravity|, m/s^2", g, lim)
        )
    for i, o in enumerate(scene.objects):
        check_object(o, ("objects", i), lim)
    for i, sc in enumerate(scene.scatter):
        for j, t in enumerate(sc.objects):
            check_object(t, ("scatter", i, "objects", j), lim, placed=False)
        _scale(("scatter", i, "scale"), sc.scale, lim)
        if sc.mass is not None:
            _range(("scatter", i, "mass"), sc.mass, lim, "min_mass_kg", "max_mass_kg", "mass, kg")
    from simgen.scenario.checks import spawned_objects

    for i, sc in enumerate(scene.scenarios):
        for o in spawned_objects(sc):
            check_object(o, ("scenarios", i), lim, placed=False)
    for i, s in enumerate(scene.sensors):
        _check_sensor(s, ("sensors", i), lim)
        rate = number_range(s.rate_hz)
        if rate is not None and dt is not None and rate[1] * dt[1] > 1 + 1e-9:
            raise FieldValueError(
                ("sensors", i, "rate_hz"),
                f"rate_hz ({rate[1]:g}) is faster than the physics rate 1 / timestep "
                f"({1 / dt[1]:.6g} Hz); lower rate_hz or the timestep",
            )


def _check_counts(scene: Any, lim: Limits) -> None:
    from simgen.scenario.checks import spawned_objects

    n = len(scene.objects) + sum(len(spawned_objects(sc)) for sc in scene.scenarios)
    where: Path_ = ("objects",)
    for i, sc in enumerate(scene.scatter):
        r = number_range(sc.count)
        if r is not None:
            n += int(r[1])
            where = ("scatter", i, "count")
    if n > lim.max_objects:
        raise FieldValueError(where, exceeded("max_objects", "objects in an episode", n, lim))


def check_object(o: Any, path: Path_, lim: Limits, placed: bool = True) -> None:
    """Sizes, mass, scale, initial position and velocity of one object spec."""
    kind = o.kind
    if kind == "box":
        _vector_extent(path, "size", o.size, lim)
    elif kind == "sphere":
        _range((*path, "radius"), o.radius, lim, "min_extent_m", "max_extent_m", "radius, m")
    elif kind in ("cylinder", "capsule"):
        _range((*path, "radius"), o.radius, lim, "min_extent_m", "max_extent_m", "radius, m")
        _range((*path, "length"), o.length, lim, "min_extent_m", "max_extent_m", "length, m")
    elif kind == "plane":
        for j, s in enumerate(o.size):
            _range((*path, "size", j), s, lim, "min_extent_m", "max_extent_m", "size, m")
    elif kind in ("mesh", "urdf"):
        scales = o.scale if isinstance(o.scale, (list, tuple)) else [o.scale]
        for j, s in enumerate(scales):
            p = (*path, "scale", j) if len(scales) > 1 else (*path, "scale")
            _scale(p, s, lim)
    if not o.static and o.mass is not None:
        _range((*path, "mass"), o.mass, lim, "min_mass_kg", "max_mass_kg", "mass, kg")
    if placed and not isinstance(o.pose.position, Distribution):
        for j, c in enumerate(o.pose.position):
            r = number_range(c)
            if r is not None and max(abs(r[0]), abs(r[1])) > lim.max_position_m:
                raise FieldValueError(
                    (*path, "pose", "position", j),
                    exceeded("max_position_m", "|coordinate|, m", max(abs(r[0]), abs(r[1])), lim),
                )
    if not placed:
        return
    v = _vector_norm_max(o.velocity.linear)
    if v is not None and v > lim.max_speed_m_s:
        raise FieldValueError(
            (*path, "velocity", "linear"), exceeded("max_speed_m_s", "speed, m/s", v, lim)
        )
    w = _vector_norm_max(o.velocity.angular_deg)
    if w is not None and w > lim.max_angular_speed_deg_s:
        raise FieldValueError(
            (*path, "velocity", "angular_deg"),
            exceeded("max_angular_speed_deg_s", "angular speed, deg/s", w, lim),
        )


def _vector_extent(path: Path_, field: str, v: Any, lim: Limits) -> None:
    if isinstance(v, Distribution):
        return
    for j, c in enumerate(v):
        _range((*path, field, j), c, lim, "min_extent_m", "max_extent_m", f"{field}, m")


def _range(path: Path_, x: Any, lim: Limits, low: str | None, high: str | None, what: str) -> None:
    r = number_range(x)
    if r is None:
        return
    if high is not None and r[1] > getattr(lim, high):
        raise FieldValueError(path, exceeded(high, what, r[1], lim))
    if low is not None and r[0] < getattr(lim, low):
        raise FieldValueError(path, exceeded(low, what, r[0], lim))


def _scale(path: Path_, x: Any, lim: Limits) -> None:
    """Scale factors lie in [1 / max_scale, max_scale]."""
    r = number_range(x)
    if r is None:
        return
    if r[1] > lim.max_scale:
        raise FieldValueError(path, exceeded("max_scale", "scale", r[1], lim))
    if r[0] < 1.0 / lim.max_scale:
        raise FieldValueError(
            path,
            f"scale ({r[0]:.3g}) is below 1 / max_scale = {1.0 / lim.max_scale:.3g}; if that is "
            "intended, raise it: simgen --limit max_scale=... (or $SIMGEN_LIMITS)",
        )


def _check_sensor(s: Any, path: Path_, lim: Limits) -> None:
    if s.kind == "camera":
        w, h = s.resolution
        for j, side in enumerate((w, h)):
            if side > lim.max_image_side:
                raise FieldValueError(
                    (*path, "resolution", j),
                    exceeded("max_image_side", "image width or height, pixels", side, lim),
                )
        if w * h > lim.max_image_pixels:
            raise FieldValueError(
                (*path, "resolution"),
                exceeded("max_image_pixels", "pixels per image", w * h, lim),
            )
    elif s.kind == "lidar":
        from simgen.sensors.lidar import column_count, elevation_table_deg

        rays = len(elevation_table_deg(s)) * column_count(s)
        if rays > lim.max_rays_per_sweep:
            raise FieldValueError(
                path,
                exceeded("max_rays_per_sweep", "rays per sweep (channels x columns)", rays, lim),
            )


def iter_limits() -> Iterator[tuple[str, Any]]:
    """(name, default) of every limit, for documentation."""
    d = Limits()
    for name in type(d).__dataclass_fields__:
        yield name, getattr(d, name)


__all__ = ["check_object", "check_scene", "iter_limits", "number_range"]
