"""The ``weather`` and ``lighting`` blocks of a scene file (docs/weather.md).

Every value may be a distribution. A field left out (None) takes its value from the named
preset (``weather.preset``, ``lighting.time_of_day``), else from the default; explicit fields
always override the preset. :mod:`simgen.effects.state` and :mod:`simgen.scene.lighting` resolve
the blocks of a sampled scene into concrete values.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from simgen.scene.types import Color, NonNegNum, Num, PosNum, Strict_, UnitNum, value

WeatherPreset = Literal[
    "clear",
    "overcast",
    "fog_light",
    "fog_dense",
    "rain_light",
    "rain_heavy",
    "snow",
    "night",
    "night_rain",
]
TimeOfDay = Literal["noon", "golden_hour", "dusk", "night"]


class Fog(Strict_):
    """Fog (or haze): give the meteorological visibility or the extinction coefficient."""

    visibility_m: PosNum | None = Field(
        default=None,
        description="meteorological optical range, m: the distance at which contrast falls to 5%",
    )
    extinction_per_m: NonNegNum | None = Field(
        default=None, description="extinction coefficient beta, 1/m (= -ln(0.05) / visibility)"
    )
    color: Color | None = Field(
        default=None, description="airlight (the fog's own color); default: the sky color"
    )

    @model_validator(mode="after")
    def _one(self) -> Fog:
        if self.visibility_m is not None and self.extinction_per_m is not None:
            raise ValueError("give fog 'visibility_m' or 'extinction_per_m', not both")
        return self


class Weather(Strict_):
    """One weather state for every sensor (docs/weather.md)."""

    preset: WeatherPreset | None = Field(
        default=None, description="named weather whose values fill the fields left out"
    )
    fog: Fog | None = None
    rain_mm_h: NonNegNum | None = Field(default=None, description="rain rate, mm/h")
    snow_mm_h: NonNegNum | None = Field(
        default=None, description="snowfall rate, mm/h of melted water equivalent"
    )
    wet_ground: UnitNum | None = Field(
        default=None,
        description="wetness of the ground in [0, 1] (darker, glossier, lower LiDAR return)",
    )
    cloud_cover: UnitNum | None = Field(
        default=None, description="cloud fraction in [0, 1]; dims the sun (needs a lighting block)"
    )
    ground_classes: list[str] | None = Field(
        default=None,
        description="classes that get wet (besides plane objects); default: road, asphalt, "
        "sidewalk, ground, terrain, floor, parking, lane_marking, concrete",
    )


class Sun(Strict_):
    """Direct sunlight (a directional light)."""

    elevation_deg: Num | None = Field(
        default=None, description="angle above the horizon, deg (<= 0: the sun is down)"
    )
    azimuth_deg: Num | None = Field(
        default=None, description="direction of the sun, deg counter-clockwise from world +x"
    )
    intensity: NonNegNum | None = Field(
        default=None, description="renderer units (default: from the air mass at this elevation)"
    )
    color_temperature_k: PosNum | None = Field(
        default=None, description="correlated color temperature, K (1667..25000)"
    )
    color: Color | None = Field(default=None, description="overrides color_temperature_k")

    @model_validator(mode="after")
    def _ranges(self) -> Sun:
        try:
            el = None if self.elevation_deg is None else value(self.elevation_deg)
            t = None if self.color_temperature_k is None else value(self.color_temperature_k)
        except TypeError:
            return self
        if el is not None and not -90.0 <= el <= 90.0:
            raise ValueError(f"elevation_deg must be in [-90, 90], got {el}")
        if t is not None and not 1667.0 <= t <= 25000.0:
            raise ValueError(f"color_temperature_k must be in [1667, 25000], got {t}")
        return self


class Sky(Strict_):
    """Skylight: the background color and the ambient light it casts."""

    color: Color | None = Field(default=None, description="sky / background color")
    intensity: NonNegNum | None = Field(default=None, description="ambient light intensity")


class Lighting(Strict_):
    """Sun and sky, optionally from a time-of-day preset. With a ``lighting`` block, ``lights``
    defaults to none (the block provides sun and sky); listed ``lights`` are added to it."""

    time_of_day: TimeOfDay | None = Field(
        default=None,
        description="preset for sun and sky (default: the weather preset's, else noon)",
    )
    sun: Sun | None = None
    sky: Sky | None = None
