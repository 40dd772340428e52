"""Resource limits: bounds that make a mistaken value fail fast, with a clear error, before
anything large is allocated.

Every limit has a default that no reasonable scene reaches; a scene that needs more raises it
explicitly, in one of three places (later ones win):

* the environment: ``SIMGEN_LIMITS="max_objects=5000,max_image_pixels=1e8"`` (inherited by
  worker processes);
* the command line: ``simgen --limit max_objects=5000 render ...`` (repeatable; sets the
  environment for the workers);
* Python: ``with simgen.limits.override(max_objects=5000): ...``; :func:`current` gives the
  limits in force.

The physical limits are not about memory: outside them pybullet fails silently (bodies fall
through the ground, freeze, or turn into NaN), so a dataset would lie. docs/reliability.md lists
every limit with its default and what it guards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

from simgen.errors import SimgenError

ENV = "SIMGEN_LIMITS"


@dataclass(frozen=True)
class Limits:
    """The limits in force (see the module doc). Units are in the names."""

    # scene files
    max_scene_bytes: int = 4 * 1024 * 1024  # size of a scene file
    max_yaml_nodes: int = 200_000  # values in one scene file, aliases expanded
    max_abs_number: float = 1e9  # |any number| in a scene file (seeds included)
    # what a scene asks for
    max_objects: int = 1000  # objects in an episode: listed, scattered and spawned
    max_image_side: int = 8192  # camera width or height, pixels
    max_image_pixels: int = 8192 * 4096  # width x height of one camera
    max_rays_per_sweep: int = 4 * 1024 * 1024  # LiDAR channels x columns
    max_duration_s: float = 3600.0  # episode length
    max_physics_steps: int = 1_000_000  # duration / timestep
    # assets
    max_asset_bytes: int = 512 * 1024 * 1024  # one mesh, texture, URDF or SDF file
    max_mesh_triangles: int = 5_000_000  # one mesh file
    max_texture_pixels: int = 8192 * 8192  # one texture image
    # physical plausibility (pybullet misbehaves silently outside these)
    min_extent_m: float = 1e-3  # sizes, radii, lengths of primitives
    max_extent_m: float = 1e4  # sizes of primitives; bounding box of any object
    max_position_m: float = 1e5  # |coordinate| of an object's initial position
    min_mass_kg: float = 1e-6
    max_mass_kg: float = 1e9
    max_speed_m_s: float = 1e4  # initial linear velocity
    max_angular_speed_deg_s: float = 1e6  # initial angular velocity
    max_gravity_m_s2: float = 1e3
    max_scale: float = 1e4  # scale factor of a mesh or URDF (and 1 / min scale)

    def replace(self, **changes: Any) -> Limits:
        """A copy with some limits changed (values are checked)."""
        return _checked(dataclasses.replace(self, **{k: _coerce(k, v) for k, v in changes.items()}))

    def to_env(self) -> str:
        """The ``SIMGEN_LIMITS`` text of the limits that differ from the defaults."""
        d = Limits()
        return ",".join(
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(d, f.name)
        )


NAMES = tuple(f.name for f in fields(Limits))
_DEFAULTS = Limits()
_override: ContextVar[Limits | None] = ContextVar("simgen_limits", default=None)


def _coerce(name: str, value: Any) -> Any:
    if name not in NAMES:
        raise SimgenError(f"unknown limit {name!r}; limits are: {', '.join(NAMES)}")
    kind = type(getattr(_DEFAULTS, name))
    try:
        v = float(value)
        if kind is int:
            if not math.isfinite(v) or v != int(v):
                raise ValueError
            return int(v)
    except (TypeError, ValueError, OverflowError):
        raise SimgenError(
            f"limit {name}={value!r}: expected {'an integer' if kind is int else 'a number'}"
        ) from None
    return v


def _checked(limits: Limits) -> Limits:
    for f in fields(limits):
        v = getattr(limits, f.name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise SimgenError(f"limit {f.name}={v!r}: must be a positive finite number")
    return limits


def parse(text: str) -> dict[str, Any]:
    """``"a=1,b=2e3"`` -> ``{"a": 1, "b": 2000.0}`` (names and values checked)."""
    out: dict[str, Any] = {}
    for item in text.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep:
            raise SimgenError(f"limit {item!r}: expected NAME=VALUE, e.g. max_objects=5000")
        out[name.strip()] = _coerce(name.strip(), value.strip())
    return out


@lru_cache(maxsize=8)
def _from_env(text: str) -> Limits:
    try:
        return _DEFAULTS.replace(**parse(text))
    except SimgenError as e:
        raise SimgenError(f"${ENV}: {e}") from None


def current() -> Limits:
    """The limits in force: an :func:`override`, else ``$SIMGEN_LIMITS``, else the defaults."""
    o = _override.get()
    if o is not None:
        return o
    text = os.environ.get(ENV, "")
    return _from_env(text) if text.strip() else _DEFAULTS


@contextlib.contextmanager
def override(limits: Limits | None = None, **changes: Any) -> Iterator[Limits]:
    """Use other limits inside the ``with`` block (this thread and context):
    ``with override(max_objects=5000): ...`` or ``with override(Limits(...)): ...``."""
    new = (limits or current()).replace(**changes)
    token = _override.set(new)
    try:
        yield new
    finally:
        _override.reset(token)


def install(limits: Limits) -> None:
    """Make ``limits`` this process's own (and its children's): sets ``$SIMGEN_LIMITS``.
    For worker processes and the command line, not for library code."""
    text = limits.to_env()
    if text:
        os.environ[ENV] = text
    else:
        os.environ.pop(ENV, None)


def exceeded(name: str, what: str, value: Any, limits: Limits | None = None) -> str:
    """The message for a value beyond limit ``name``: what, the limit, how to raise it."""
    lim = getattr(limits or current(), name)
    bound = "below" if name.startswith("min_") else "above"
    return (
        f"{what} ({_fmt(value)}) is {bound} the limit {name}={_fmt(lim)}; if that is intended, "
        f"raise it: simgen --limit {name}=... (or ${ENV}, or simgen.limits.override)"
    )


def _fmt(v: Any) -> str:
    if isinstance(v, float) and (abs(v) >= 1e5 or (0 < abs(v) < 1e-3)):
        return f"{v:.3g}"
    if isinstance(v, float) and v == int(v):
        return str(int(v))
    return str(v)
