"""The weather state every sensor reads: a scene's ``weather`` block resolved to numbers.

:func:`weather_state` resolves a sampled scene (preset values, then explicit fields). The episode
loop keeps the current state in ``CaptureContext.weather``; every capture reads it at capture
time, so a scenario event may replace it between frames (a fog bank rolling in) with
``dataclasses.replace(ctx.weather, fog_extinction_per_m=...)`` or :meth:`WeatherState.with_`
(docs/weather.md, "Changing weather during an episode"). Rendering-time parts (wet materials,
lighting) are fixed when the episode's render scene is built.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from simgen.effects.precipitation import SizeDistribution
from simgen.scene.schema import Scene
from simgen.scene.types import value

#: -ln(0.05): Koschmieder's law with the 5% contrast threshold of the meteorological optical
#: range (WMO Guide to Meteorological Instruments, WMO-No. 8).
CONTRAST_THRESHOLD_LN = -math.log(0.05)

DEFAULT_GROUND_CLASSES = (
    "road",
    "asphalt",
    "sidewalk",
    "ground",
    "terrain",
    "floor",
    "parking",
    "lane_marking",
    "concrete",
)


@dataclass(frozen=True)
class PresetValues:
    visibility_m: float | None  # None: no fog
    rain_mm_h: float
    snow_mm_h: float
    wet_ground: float
    cloud_cover: float
    time_of_day: str | None  # implied lighting preset (when the scene has a lighting block)


#: Named weather (docs/weather.md gives the sources of the numbers).
WEATHER_PRESETS: dict[str, PresetValues] = {
    "clear": PresetValues(None, 0.0, 0.0, 0.0, 0.0, None),
    "overcast": PresetValues(None, 0.0, 0.0, 0.0, 1.0, None),
    "fog_light": PresetValues(500.0, 0.0, 0.0, 0.2, 1.0, None),
    "fog_dense": PresetValues(50.0, 0.0, 0.0, 0.3, 1.0, None),
    "rain_light": PresetValues(None, 2.5, 0.0, 0.6, 1.0, None),
    "rain_heavy": PresetValues(None, 25.0, 0.0, 1.0, 1.0, None),
    "snow": PresetValues(None, 0.0, 2.5, 0.2, 1.0, None),
    "night": PresetValues(None, 0.0, 0.0, 0.0, 0.0, "night"),
    "night_rain": PresetValues(None, 5.0, 0.0, 1.0, 1.0, "night"),
}


def beta_from_visibility(visibility_m: float) -> float:
    """Extinction coefficient (1/m) of a meteorological visibility: ``-ln(0.05) / V``."""
    return CONTRAST_THRESHOLD_LN / visibility_m


@dataclass(frozen=True)
class WeatherState:
    """Weather at one instant, in numbers. Extinctions are the same at visible wavelengths and
    at 905 nm (particles much larger than both wavelengths; docs/weather.md)."""

    fog_extinction_per_m: float = 0.0
    fog_color: tuple[float, float, float] | None = None  # airlight, encoded RGB; None: sky
    rain_mm_h: float = 0.0
    snow_mm_h: float = 0.0
    wet_ground: float = 0.0
    cloud_cover: float = 0.0
    ground_classes: tuple[str, ...] = DEFAULT_GROUND_CLASSES

    @property
    def rain(self) -> SizeDistribution:
        return SizeDistribution.rain(self.rain_mm_h)

    @property
    def snow(self) -> SizeDistribution:
        return SizeDistribution.snow(self.snow_mm_h)

    @property
    def extinction_per_m(self) -> float:
        """Total extinction coefficient of fog, rain and snow, 1/m."""
        return self.fog_extinction_per_m + self.rain.extinction_per_m + self.snow.extinction_per_m

    @property
    def visibility_m(self) -> float:
        """Meteorological visibility of the whole state (inf when clear)."""
        b = self.extinction_per_m
        return CONTRAST_THRESHOLD_LN / b if b > 0 else math.inf

    @property
    def has_particles(self) -> bool:
        return self.rain_mm_h > 0 or self.snow_mm_h > 0

    @property
    def changes_images(self) -> bool:
        """Whether the camera post-effects of this state change anything."""
        return self.extinction_per_m > 0 or self.has_particles

    def with_(self, **changes: Any) -> WeatherState:
        """A copy with some fields changed (``visibility_m=...`` sets the fog extinction)."""
        if "visibility_m" in changes:
            v = changes.pop("visibility_m")
            changes["fog_extinction_per_m"] = 0.0 if v is None else beta_from_visibility(v)
        return dataclasses.replace(self, **changes)


CLEAR = WeatherState()


def preset_values(scene: Scene) -> PresetValues | None:
    w = scene.weather
    if w is None or w.preset is None:
        return None
    return WEATHER_PRESETS[w.preset]


def weather_state(scene: Scene) -> WeatherState:
    """The weather of a sampled scene (clear when it has no weather block)."""
    w = scene.weather
    if w is None:
        return CLEAR
    p = WEATHER_PRESETS[w.preset or "clear"]

    def pick(field: Any, default: float) -> float:
        return default if field is None else value(field)

    fog = 0.0 if p.visibility_m is None else beta_from_visibility(p.visibility_m)
    color = None
    if w.fog is not None:
        if w.fog.visibility_m is not None:
            fog = beta_from_visibility(value(w.fog.visibility_m))
        elif w.fog.extinction_per_m is not None:
            fog = value(w.fog.extinction_per_m)
        if w.fog.color is not None:
            c = [value(x) for x in w.fog.color[:3]]
            color = (c[0], c[1], c[2])
    return WeatherState(
        fog_extinction_per_m=fog,
        fog_color=color,
        rain_mm_h=pick(w.rain_mm_h, p.rain_mm_h),
        snow_mm_h=pick(w.snow_mm_h, p.snow_mm_h),
        wet_ground=pick(w.wet_ground, p.wet_ground),
        cloud_cover=pick(w.cloud_cover, p.cloud_cover),
        ground_classes=tuple(w.ground_classes)
        if w.ground_classes is not None
        else DEFAULT_GROUND_CLASSES,
    )


def render_setup(
    scene: Scene, parts: list[Any]
) -> tuple[tuple[float, float, float], list[Any], list[Any]]:
    """(background color, lights, visual parts) the renderer draws for a sampled scene: the
    lighting block resolved with the weather's time of day and cloud cover, ground parts made
    wet. Fixed for the episode (the initial weather)."""
    from simgen.effects.wet import wet_parts
    from simgen.scene.lighting import render_lights

    ws = weather_state(scene)
    p = preset_values(scene)
    bg, lights = render_lights(scene, p.time_of_day if p else None, ws.cloud_cover)
    parts = wet_parts(scene.objects, parts, ws.wet_ground, ws.ground_classes)
    return bg, lights, parts


def weather_arrays(state: WeatherState | None) -> dict[str, Any]:
    """The weather values stored with every sensor frame of a scene with a weather block."""
    import numpy as np

    w = state if state is not None else CLEAR
    return {
        "fog_extinction_per_m": np.float32(w.fog_extinction_per_m),
        "rain_mm_h": np.float32(w.rain_mm_h),
        "snow_mm_h": np.float32(w.snow_mm_h),
    }
