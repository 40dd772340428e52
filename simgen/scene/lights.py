"""Lights: ambient, directional (sun), point and spot; point and spot lights may ride on objects."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from simgen.scene.types import (
    Attachment,
    Color,
    NonNegNum,
    PosNum,
    Strict_,
    Vec3,
    value,
)


class LightBase(Strict_):
    name: str | None = None
    color: Color = (1.0, 1.0, 1.0)


class AmbientLight(LightBase):
    """Uniform light from every direction; ``intensity`` scales ``color`` (0..1 typical)."""

    kind: Literal["ambient"] = "ambient"
    intensity: NonNegNum = 0.3


class DirectionalLight(LightBase):
    """Parallel light from infinitely far away (the sun). ``direction`` is the way light travels
    (world frame), e.g. ``[0, 0, -1]`` straight down. ``intensity`` in lux (renderer units)."""

    kind: Literal["directional"] = "directional"
    direction: Vec3 = (-0.3, 0.2, -1.0)
    intensity: NonNegNum = 2.0


class PointLight(LightBase):
    """Omnidirectional light at ``position`` (relative to ``attach_to`` if given); candela."""

    kind: Literal["point"] = "point"
    position: Vec3
    intensity: NonNegNum = 10.0
    range: PosNum | None = Field(default=None, description="meters; None = infinite")
    attach_to: Attachment | None = None


class SpotLight(LightBase):
    """Cone of light at ``position`` shining along ``direction`` (relative to ``attach_to``)."""

    kind: Literal["spot"] = "spot"
    position: Vec3
    direction: Vec3 = (0.0, 0.0, -1.0)
    intensity: NonNegNum = 10.0
    range: PosNum | None = None
    inner_cone_deg: NonNegNum = 20.0
    outer_cone_deg: PosNum = 35.0
    attach_to: Attachment | None = None

    @model_validator(mode="after")
    def _cones(self) -> SpotLight:
        try:
            inner, outer = value(self.inner_cone_deg), value(self.outer_cone_deg)
        except TypeError:
            return self
        if not inner < outer <= 90.0:
            raise ValueError("spot light needs inner_cone_deg < outer_cone_deg <= 90")
        return self


Light = Annotated[
    AmbientLight | DirectionalLight | PointLight | SpotLight,
    Field(discriminator="kind"),
]
