"""Spatial distributions: rotations (as orientations), points (as vectors) and colors.

Each samples a value in the form its scene field takes, so the resolved scene is plain data:

* rotations give ``{quat_wxyz: [w, x, y, z]}`` (an orientation, ``w >= 0``);
* points give ``[x, y, z]`` (meters, world frame unless the field says otherwise);
* colors give ``[r, g, b]`` or ``[r, g, b, a]`` in [0, 1].
"""

from __future__ import annotations

import colorsys
import math
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from simgen.random.distributions import Distribution

Vec = tuple[float, float, float]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )


def _canonical(q: np.ndarray) -> dict[str, list[float]]:
    q = q / np.linalg.norm(q)
    if q[0] < 0:
        q = -q
    return {"quat_wxyz": [float(c) for c in q]}


def _unit(v: Vec, what: str) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    n = float(np.linalg.norm(a))
    if n < 1e-12:
        raise ValueError(f"{what} has zero length")
    return a / n


# -- rotations --------------------------------------------------------------------------------


class UniformRotationParams(_Params):
    pass


class UniformRotation(Distribution):
    """A rotation drawn uniformly from SO(3) (Haar measure), ``{uniform_rotation: {}}``.

    A normalized 4-D standard normal is a uniform unit quaternion (Shoemake)."""

    tag: ClassVar[str] = "uniform_rotation"
    uniform_rotation: UniformRotationParams = UniformRotationParams()

    def sample(self, rng: np.random.Generator) -> dict[str, list[float]]:
        while True:
            q = rng.standard_normal(4)
            if np.linalg.norm(q) > 1e-9:
                return _canonical(q)


class AxisRotationParams(_Params):
    axis: Vec = Field(default=(0.0, 0.0, 1.0), description="rotation axis, world frame")
    angle_deg: tuple[float, float] = Field(
        default=(0.0, 360.0), description="angle drawn uniformly from [low, high), degrees"
    )
    base_euler_deg: Vec = Field(
        default=(0.0, 0.0, 0.0),
        description="orientation rotated about the axis (e.g. [90, 0, 0] stands a model up)",
    )


class AxisRotation(Distribution):
    """A rotation by a uniform angle about a fixed axis, applied after ``base_euler_deg``:
    ``{axis_rotation: {axis: [0, 0, 1], angle_deg: [0, 360]}}`` (a random yaw)."""

    tag: ClassVar[str] = "axis_rotation"
    axis_rotation: AxisRotationParams = AxisRotationParams()

    @model_validator(mode="after")
    def _valid(self) -> AxisRotation:
        p = self.axis_rotation
        _unit(p.axis, "axis_rotation: axis")
        if p.angle_deg[0] > p.angle_deg[1]:
            raise ValueError("axis_rotation: angle_deg low is above high")
        return self

    def sample(self, rng: np.random.Generator) -> dict[str, list[float]]:
        from simgen.geometry import euler_deg_to_quat

        p = self.axis_rotation
        angle = math.radians(float(rng.uniform(*p.angle_deg)))
        axis = _unit(p.axis, "axis")
        q_axis = np.array([math.cos(angle / 2), *(math.sin(angle / 2) * axis)])
        return _canonical(_quat_mul(q_axis, euler_deg_to_quat(p.base_euler_deg)))


# -- points -----------------------------------------------------------------------------------


class BoxParams(_Params):
    center: Vec = (0.0, 0.0, 0.0)
    size: Vec = Field(description="full edge lengths along x, y, z (0 flattens an axis)")

    @model_validator(mode="after")
    def _valid(self) -> BoxParams:
        if any(s < 0 for s in self.size):
            raise ValueError("size components must be >= 0")
        return self


class InBox(Distribution):
    """A point uniform in an axis-aligned box: ``{in_box: {center: [0, 0, 1], size: [2, 2, 0]}}``."""

    tag: ClassVar[str] = "in_box"
    in_box: BoxParams

    def sample(self, rng: np.random.Generator) -> list[float]:
        c, s = np.asarray(self.in_box.center), np.asarray(self.in_box.size)
        return [float(v) for v in c + (rng.random(3) - 0.5) * s]


class SphereParams(_Params):
    center: Vec = (0.0, 0.0, 0.0)
    radius: float = Field(gt=0)


def _direction(rng: np.random.Generator) -> np.ndarray:
    while True:
        d = rng.standard_normal(3)
        n = float(np.linalg.norm(d))
        if n > 1e-9:
            return d / n


class InSphere(Distribution):
    """A point uniform in a ball: ``{in_sphere: {center: [0, 0, 1], radius: 0.5}}``."""

    tag: ClassVar[str] = "in_sphere"
    in_sphere: SphereParams

    def sample(self, rng: np.random.Generator) -> list[float]:
        p = self.in_sphere
        d = _direction(rng)
        r = p.radius * float(rng.random()) ** (1.0 / 3.0)
        return [float(v) for v in np.asarray(p.center) + r * d]


class ShellParams(_Params):
    center: Vec = (0.0, 0.0, 0.0)
    inner: float = Field(ge=0, description="inner radius, m")
    outer: float = Field(gt=0, description="outer radius, m")

    @model_validator(mode="after")
    def _valid(self) -> ShellParams:
        if self.inner > self.outer:
            raise ValueError("inner radius is above outer radius")
        return self


class InShell(Distribution):
    """A point uniform in the volume between two spheres:
    ``{in_shell: {center: [0, 0, 0], inner: 2, outer: 3}}``."""

    tag: ClassVar[str] = "in_shell"
    in_shell: ShellParams

    def sample(self, rng: np.random.Generator) -> list[float]:
        p = self.in_shell
        d = _direction(rng)
        a3, b3 = p.inner**3, p.outer**3
        r = (a3 + (b3 - a3) * float(rng.random())) ** (1.0 / 3.0)
        return [float(v) for v in np.asarray(p.center) + r * d]


class DiskParams(_Params):
    center: Vec = (0.0, 0.0, 0.0)
    radius: float = Field(gt=0)
    inner: float = Field(default=0.0, ge=0, description="inner radius (an annulus), m")
    normal: Vec = Field(default=(0.0, 0.0, 1.0), description="normal of the disk's plane")

    @model_validator(mode="after")
    def _valid(self) -> DiskParams:
        if self.inner > self.radius:
            raise ValueError("inner radius is above radius")
        _unit(self.normal, "normal")
        return self


def plane_basis(normal: Vec) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors spanning the plane orthogonal to ``normal``."""
    n = _unit(normal, "normal")
    helper = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(n, helper)
    u /= np.linalg.norm(u)
    return u, np.cross(n, u)


class InDisk(Distribution):
    """A point uniform in a flat disk (or annulus) of any orientation:
    ``{in_disk: {center: [0, 0, 0.7], radius: 0.3, normal: [0, 0, 1]}}``."""

    tag: ClassVar[str] = "in_disk"
    in_disk: DiskParams

    def sample(self, rng: np.random.Generator) -> list[float]:
        p = self.in_disk
        u, v = plane_basis(p.normal)
        a2, b2 = p.inner**2, p.radius**2
        r = math.sqrt(a2 + (b2 - a2) * float(rng.random()))
        phi = 2 * math.pi * float(rng.random())
        point = np.asarray(p.center) + r * (math.cos(phi) * u + math.sin(phi) * v)
        return [float(x) for x in point]


# -- colors -----------------------------------------------------------------------------------


class HsvParams(_Params):
    hue_deg: tuple[float, float] = Field(
        default=(0.0, 360.0), description="[low, high] degrees; may wrap past 360 (e.g. [330, 390])"
    )
    saturation: tuple[float, float] = (0.0, 1.0)
    value: tuple[float, float] = (0.0, 1.0)
    alpha: float | None = Field(default=None, ge=0, le=1, description="adds an alpha channel")

    @model_validator(mode="after")
    def _valid(self) -> HsvParams:
        h0, h1 = self.hue_deg
        if h0 > h1 or h1 - h0 > 360:
            raise ValueError("hue_deg must be [low, high] with low <= high <= low + 360")
        for name in ("saturation", "value"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi <= 1:
                raise ValueError(f"{name} must be [low, high] with 0 <= low <= high <= 1")
        return self


class Hsv(Distribution):
    """A color with hue, saturation and value each uniform in a range:
    ``{hsv: {hue_deg: [20, 40], saturation: [0.5, 0.9], value: [0.4, 1.0]}}``."""

    tag: ClassVar[str] = "hsv"
    hsv: HsvParams = HsvParams()

    def sample(self, rng: np.random.Generator) -> list[float]:
        p = self.hsv
        h = (float(rng.uniform(*p.hue_deg)) % 360.0) / 360.0
        s = float(rng.uniform(*p.saturation))
        v = float(rng.uniform(*p.value))
        rgb = [float(c) for c in colorsys.hsv_to_rgb(h, s, v)]
        return rgb if p.alpha is None else [*rgb, float(p.alpha)]
