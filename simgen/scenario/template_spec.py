"""Scene models of the built-in scenario templates (expanded by :mod:`simgen.scenario.templates`).

Each template is a one-key mapping naming it, e.g. ``{fall_off_table: {object: mug, surface:
table}}``; docs/scenarios.md lists what each expands into.
"""

from __future__ import annotations

from pydantic import Field

from simgen.scene.objects import ClassName, Name
from simgen.scene.placement import one_key_union
from simgen.scene.types import NonNegNum, Num, PosNum, Strict_, UnitNum

# -- templates --------------------------------------------------------------------------------


class FallOffTableParams(Strict_):
    object: Name
    surface: Name = Field(description="the table or shelf it stands on")
    at: NonNegNum = 0.2
    direction_deg: Num | None = Field(
        default=None,
        description="push heading about world z; default: away from the surface center",
    )
    drop: PosNum = Field(
        default=0.1, description="m below the surface's top that counts as fallen off"
    )


class FallOffTable(Strict_):
    """Push an object off its table or shelf; label the push and the moment it falls."""

    fall_off_table: FallOffTableParams


class PedestrianCrossingParams(Strict_):
    vehicle: Name
    at: NonNegNum = 0.1
    ahead: PosNum = Field(default=10.0, description="m ahead of the vehicle where it appears")
    lateral: Num = Field(default=3.5, description="m to the vehicle's left (negative: right)")
    speed: PosNum = Field(default=1.6, description="m/s, crossing toward the other side")
    radius: PosNum = 0.25
    height: PosNum = 1.7
    name: Name = "pedestrian"
    class_name: ClassName = Field(default="pedestrian", alias="class")
    near_miss: PosNum = Field(default=3.0, description="m; closer than this is labeled near_miss")


class PedestrianCrossing(Strict_):
    """A pedestrian proxy (capsule) steps in front of a moving vehicle and crosses its path."""

    pedestrian_crossing: PedestrianCrossingParams


class FogBankParams(Strict_):
    at: NonNegNum = 0.2
    density: NonNegNum = Field(default=0.08, description="fog extinction, 1/m")
    duration: NonNegNum = Field(default=0.0, description="s; 0: until the end of the episode")


class FogBank(Strict_):
    """Sudden fog (a weather event handed to the weather hook)."""

    fog_bank: FogBankParams


class LensOcclusionParams(Strict_):
    camera: Name
    at: NonNegNum = 0.1
    duration: PosNum = 0.5
    radius: PosNum = 0.3
    opacity: UnitNum = 0.95
    center: tuple[UnitNum, UnitNum] | None = None


class LensOcclusion(Strict_):
    """Dirt or a drop on the lens: a dark blurred blob over part of the image."""

    lens_occlusion: LensOcclusionParams


class SensorDropoutParams(Strict_):
    sensor: Name
    at: NonNegNum = 0.1
    duration: PosNum = 0.3


class SensorDropout(Strict_):
    """A sensor delivers nothing useful for a while (camera: black frames; LiDAR: no returns)."""

    sensor_dropout: SensorDropoutParams


TEMPLATES: dict[str, type[Strict_]] = {
    "fall_off_table": FallOffTable,
    "pedestrian_crossing": PedestrianCrossing,
    "fog_bank": FogBank,
    "lens_occlusion": LensOcclusion,
    "sensor_dropout": SensorDropout,
}
Template = one_key_union(TEMPLATES, "a scenario template", "template")
