"""Field types shared by the scene models: numbers that may be random, vectors, colors, poses.

Every kind of value may also be a distribution (docs/randomization.md): a number
(``{uniform: [0, 1]}``), a vector (per component, or ``{in_box: ...}`` as a whole), a color
(``{hsv: ...}``), an orientation (``{uniform_rotation: {}}``), an asset path (``{files: ...}``)
or a count (``{randint: [2, 5]}``). :mod:`simgen.random.kinds` lists which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    field_validator,
    model_validator,
)

from simgen.random.distributions import Distribution, numeric_discriminator
from simgen.random.kinds import (
    ROTATION,
    AssetDist,
    ColorDist,
    CountDist,
    NumDist,
    VecDist,
    dist_union,
)


class Strict_(BaseModel):
    """Base of every scene model: unknown keys are errors, NaN/inf refused, immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True
    )


def _num_tag(v: Any) -> str:
    return "value" if numeric_discriminator(v) == "value" else "distribution"


def _number(**constraints: float) -> Any:
    """``float`` (strict: no strings or booleans) with constraints, or a numeric distribution.

    The constraints apply to the value branch; sampled values are checked against them when the
    resolved scene is validated again (:func:`simgen.random.sample.sample_episode`).
    """
    return Annotated[
        Annotated[float, Strict(), Field(**constraints), Tag("value")]  # type: ignore[call-overload]
        | Annotated[NumDist, Tag("distribution")],
        Discriminator(_num_tag),
    ]


def _seq_tag(v: Any) -> str:
    return "distribution" if isinstance(v, (dict, Distribution)) else "value"


def _whole_or_dist(value_type: Any, dist: Any) -> Any:
    """A value given in full (a list of components, a string) or one distribution for all of it."""
    return Annotated[
        Annotated[value_type, Tag("value")] | Annotated[dist, Tag("distribution")],
        Discriminator(_seq_tag),
    ]


if TYPE_CHECKING:  # what the fields hold, for the type checker
    # Numbers may hold a distribution until sampled (value() checks); vectors, colors,
    # orientations, counts and asset paths are typed in their resolved form, which is what the
    # engines read (vec(), count() and the engines' own checks refuse unresolved ones).
    Num = float | Distribution
    PosNum = Num
    NonNegNum = Num
    UnitNum = Num
    Vec3 = tuple[Num, Num, Num]
    PosVec3 = Vec3
    Count = int
    AssetRef = str
else:
    #: A number in SI units (degrees in ``*_deg`` fields), or a distribution.
    Num = _number()
    PosNum = _number(gt=0)
    NonNegNum = _number(ge=0)
    UnitNum = _number(ge=0, le=1)
    #: ``[x, y, z]`` (each may be a distribution) or a point distribution (``{in_box: ...}``).
    Vec3 = _whole_or_dist(tuple[Num, Num, Num], VecDist)
    PosVec3 = _whole_or_dist(tuple[PosNum, PosNum, PosNum], VecDist)
    #: A non-negative integer or an integer distribution (``{randint: [2, 6]}``).
    Count = _whole_or_dist(Annotated[int, Strict(), Field(ge=0)], CountDist)
    #: An asset path (:mod:`simgen.sim.assets`) or ``{files: ...}`` / ``{choice: [...]}``.
    AssetRef = _whole_or_dist(Annotated[str, Strict(), Field(min_length=1)], AssetDist)

Vec2 = tuple[Num, Num]

ZERO3: tuple[float, float, float] = (0.0, 0.0, 0.0)


def value(x: Any) -> float:
    """A resolved number; raises if a distribution was not sampled (a bug, not a user error)."""
    if isinstance(x, Distribution):
        raise TypeError(f"unresolved distribution {x.describe()}: sample the scene first")
    return float(x)


def vec(x: Any) -> np.ndarray:
    """A resolved vector as a float64 array."""
    if isinstance(x, Distribution):
        raise TypeError(f"unresolved distribution {x.describe()}: sample the scene first")
    return np.array([value(v) for v in x], dtype=np.float64)


def count(x: Any) -> int:
    """A resolved count."""
    if isinstance(x, Distribution):
        raise TypeError(f"unresolved distribution {x.describe()}: sample the scene first")
    return int(x)


def is_random(x: Any) -> bool:
    """Whether a field value still holds a distribution anywhere inside it."""
    if isinstance(x, Distribution):
        return True
    if isinstance(x, BaseModel):
        return any(is_random(getattr(x, n)) for n in type(x).model_fields)
    if isinstance(x, (list, tuple)):
        return any(is_random(v) for v in x)
    if isinstance(x, dict):
        return any(is_random(v) for v in x.values())
    return False


def _parse_hex(s: str) -> tuple[float, ...]:
    h = s.lstrip("#")
    if len(h) not in (6, 8) or any(c not in "0123456789abcdefABCDEF" for c in h):
        raise ValueError(f"color {s!r}: expected '#rrggbb' or '#rrggbbaa'")
    return tuple(int(h[i : i + 2], 16) / 255.0 for i in range(0, len(h), 2))


def _color_before(v: Any) -> Any:
    if isinstance(v, str):
        return list(_parse_hex(v))
    return v


if TYPE_CHECKING:
    Color = tuple[Num, ...]
else:
    Color = Annotated[
        _whole_or_dist(
            tuple[UnitNum, UnitNum, UnitNum] | tuple[UnitNum, UnitNum, UnitNum, UnitNum], ColorDist
        ),
        BeforeValidator(_color_before),
        Field(
            description="RGB or RGBA with components in [0, 1], '#rrggbb' / '#rrggbbaa', "
            "or a color distribution ({hsv: ...}, {choice: [...]})"
        ),
    ]


class EulerOrientation(Strict_):
    """Rotation as ``[roll, pitch, yaw]`` in degrees about fixed world X, Y, Z axes."""

    euler_deg: Vec3


class QuatOrientation(Strict_):
    """Rotation as a unit quaternion, scalar first."""

    quat_wxyz: tuple[Num, Num, Num, Num]

    @field_validator("quat_wxyz")
    @classmethod
    def _nonzero(cls, q: tuple[Any, ...]) -> tuple[Any, ...]:
        if (
            all(not isinstance(c, Distribution) for c in q)
            and sum(float(c) ** 2 for c in q) < 1e-12
        ):
            raise ValueError("quaternion has zero length")
        return q


_ORIENTATION_EXPECTED = (
    "{euler_deg: [roll, pitch, yaw]}, {quat_wxyz: [w, x, y, z]} or a rotation distribution: "
    + ", ".join("{" + c.tag + ": ...}" for c in ROTATION)
)
RotationDist = dist_union(ROTATION, _ORIENTATION_EXPECTED)


def _orientation_tag(v: Any) -> str:
    if isinstance(v, EulerOrientation):
        return "euler_deg"
    if isinstance(v, QuatOrientation):
        return "quat_wxyz"
    if isinstance(v, Distribution):
        return "distribution"
    if isinstance(v, dict) and len(v) == 1:
        key = str(next(iter(v)))
        return key if key in ("euler_deg", "quat_wxyz") else "distribution"
    return "<invalid>"


if TYPE_CHECKING:
    Orientation = EulerOrientation | QuatOrientation
else:
    Orientation = Annotated[
        Annotated[EulerOrientation, Tag("euler_deg")]
        | Annotated[QuatOrientation, Tag("quat_wxyz")]
        | Annotated[RotationDist, Tag("distribution")],
        Discriminator(
            _orientation_tag,
            custom_error_type="invalid_orientation",
            custom_error_message="expected " + _ORIENTATION_EXPECTED,
        ),
    ]

IDENTITY = EulerOrientation(euler_deg=(0.0, 0.0, 0.0))


class Pose(Strict_):
    """A rigid pose: position in meters and orientation, relative to the parent frame (world)."""

    position: Vec3 = ZERO3
    orientation: Orientation = IDENTITY


class LookAt(Strict_):
    """Aim a sensor: it sits at ``eye`` and looks at ``target``; ``up`` fixes the roll."""

    eye: Vec3
    target: Vec3
    up: Vec3 = (0.0, 0.0, 1.0)

    @model_validator(mode="after")
    def _distinct(self) -> LookAt:
        try:
            e, t, u = vec(self.eye), vec(self.target), vec(self.up)
        except TypeError:
            return self  # random: checked after sampling
        d = t - e
        if np.linalg.norm(d) < 1e-9:
            raise ValueError("look_at: eye and target are the same point")
        if np.linalg.norm(np.cross(d / np.linalg.norm(d), u)) < 1e-6:
            raise ValueError("look_at: the viewing direction is parallel to 'up'; change 'up'")
        return self


class Attachment(Strict_):
    """Mount on an object (and optionally one of its URDF links) so the mount moves with it."""

    object: str
    link: str | None = None
