"""Resolve a scene's ``lighting`` block into the lights the renderer draws (pure functions).

Rules (docs/weather.md, "Lighting"):

* without a ``lighting`` block the scene's ``lights`` and ``background`` are used as they are;
* with one, the sun becomes a directional light and the sky an ambient light plus the
  background color, and the scene's ``lights`` (default: none) are added: headlights and street
  lamps are ``spot``/``point`` lights with ``attach_to``;
* ``time_of_day`` (or the weather preset's, e.g. ``night``) fills the fields left out;
* the weather's ``cloud_cover`` takes the direct sun away and turns it into skylight
  (Kasten & Czeplak 1980 for the total).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from simgen.effects.color import LUMINANCE, color_temperature_rgb, display_decode, display_encode
from simgen.scene.lights import AmbientLight, DirectionalLight, Light
from simgen.scene.schema import DEFAULT_BACKGROUND, Scene
from simgen.scene.types import value

#: Renderer intensity of the sun at the zenith above a clear atmosphere (air mass 1 transmits 0.7
#: of it, so a noon sun is about 2.9; the default scene sun is 2.0).
SUN_INTENSITY_ZENITH = 3.0 / 0.7


@dataclass(frozen=True)
class TimeOfDayPreset:
    elevation_deg: float
    azimuth_deg: float
    color_temperature_k: float
    sky_color: tuple[float, float, float]  # encoded RGB (as scene colors)
    sky_intensity: float


#: docs/weather.md gives the sources (sun color temperatures) and what is chosen by eye (sky).
TIME_OF_DAY: dict[str, TimeOfDayPreset] = {
    "noon": TimeOfDayPreset(60.0, 135.0, 5800.0, (0.55, 0.65, 0.80), 0.35),
    "golden_hour": TimeOfDayPreset(6.0, 135.0, 3500.0, (0.85, 0.68, 0.52), 0.25),
    "dusk": TimeOfDayPreset(-4.0, 135.0, 2500.0, (0.28, 0.32, 0.48), 0.10),
    "night": TimeOfDayPreset(-30.0, 135.0, 4100.0, (0.03, 0.035, 0.06), 0.02),
}


def air_mass(elevation_deg: float) -> float:
    """Relative optical air mass (Kasten & Young 1989); inf below the horizon."""
    if elevation_deg <= 0:
        return math.inf
    z = 90.0 - elevation_deg
    return 1.0 / (math.cos(math.radians(z)) + 0.50572 * (96.07995 - z) ** -1.6364)


def sun_intensity(elevation_deg: float) -> float:
    """Direct sun at an elevation: ``I0 * 0.7 ** (AM ** 0.678)`` (Meinel & Meinel 1976)."""
    am = air_mass(elevation_deg)
    return 0.0 if math.isinf(am) else SUN_INTENSITY_ZENITH * 0.7 ** (am**0.678)


def cloud_factor(cover: float) -> float:
    """Global irradiance under cloud cover C relative to clear sky: ``1 - 0.75 C^3.4``
    (Kasten & Czeplak 1980, C in [0, 1] = oktas / 8)."""
    return 1.0 - 0.75 * cover**3.4


@dataclass(frozen=True)
class LightingState:
    """Resolved sun and sky (renderer units; colors linear unless noted)."""

    background: tuple[float, float, float]  # encoded RGB drawn where nothing is hit
    ambient_rgb: np.ndarray  # (3,) linear ambient light (color x intensity)
    sun_direction_w: np.ndarray | None  # (3,) unit direction light travels; None: no sun
    sun_rgb: np.ndarray  # (3,) linear color (largest component 1)
    sun_intensity: float


def _color(c: Any) -> tuple[float, float, float]:
    v = [value(x) for x in c[:3]]
    return (v[0], v[1], v[2])


def lighting_state(scene: Scene, time_of_day: str | None, cloud_cover: float) -> LightingState:
    """Sun and sky of a sampled scene with a lighting block (``time_of_day``: the weather
    preset's, used when the block names none)."""
    lt = scene.lighting
    assert lt is not None
    preset = TIME_OF_DAY[lt.time_of_day or time_of_day or "noon"]
    sun, sky = lt.sun, lt.sky

    def get(model: Any, name: str, default: Any) -> Any:
        v = None if model is None else getattr(model, name)
        return default if v is None else v

    el = value(get(sun, "elevation_deg", preset.elevation_deg))
    az = value(get(sun, "azimuth_deg", preset.azimuth_deg))
    s = value(get(sun, "intensity", sun_intensity(el)))
    if sun is not None and sun.color is not None:
        sun_rgb = np.array(_color(sun.color))
    else:
        sun_rgb = color_temperature_rgb(
            value(get(sun, "color_temperature_k", preset.color_temperature_k))
        )
    sky_color = _color(get(sky, "color", preset.sky_color))
    a = value(get(sky, "intensity", preset.sky_intensity))
    up = max(math.sin(math.radians(el)), 0.0)
    if el <= 0:
        s = 0.0
    if cloud_cover > 0:
        # direct beam blocked by the cloud fraction; the total follows Kasten & Czeplak
        total = cloud_factor(cloud_cover) * (s * up + math.pi * a)
        s *= 1.0 - cloud_cover
        a = max((total - s * up) / math.pi, 0.0)
        lin = display_decode(np.array(sky_color))
        grey = np.full(3, float(LUMINANCE @ lin))
        sky_color = tuple(display_encode((1 - cloud_cover) * lin + cloud_cover * grey))  # type: ignore[assignment]
    sky_lin = display_decode(np.array(sky_color))
    ambient = a * sky_lin / max(float(sky_lin.max()), 1e-6)
    direction = None
    if s > 0:
        e, z = math.radians(el), math.radians(az)
        direction = -np.array([math.cos(e) * math.cos(z), math.cos(e) * math.sin(z), math.sin(e)])
    bg = scene.background
    background = _color(bg) if bg is not None else sky_color
    return LightingState(background, ambient, direction, sun_rgb, s)


def render_lights(
    scene: Scene, time_of_day: str | None = None, cloud_cover: float = 0.0
) -> tuple[tuple[float, float, float], list[Light]]:
    """(background color, lights) the renderer draws for a sampled scene."""
    if scene.lighting is None:
        bg = scene.background
        return (_color(bg) if bg is not None else DEFAULT_BACKGROUND), list(scene.lights)
    st = lighting_state(scene, time_of_day, cloud_cover)
    amb = float(st.ambient_rgb.max())
    lights: list[Light] = [
        AmbientLight(
            kind="ambient",
            name="sky",
            intensity=amb,
            color=tuple(st.ambient_rgb / amb) if amb > 0 else (1.0, 1.0, 1.0),  # type: ignore[arg-type]
        )
    ]
    if st.sun_direction_w is not None:
        lights.append(
            DirectionalLight(
                kind="directional",
                name="sun",
                direction=tuple(st.sun_direction_w),  # type: ignore[arg-type]
                intensity=st.sun_intensity,
                color=tuple(st.sun_rgb),  # type: ignore[arg-type]
            )
        )
    return st.background, [*lights, *scene.lights]
