"""Wet ground: darker (Lekner & Dorf 1988), glossier, and a weaker LiDAR return.

A rough surface of albedo ``A`` under a water film (refractive index n = 1.333) loses light to
total internal reflection: of the light it scatters up, only ``1 - x`` leaves the film, the rest
goes back down and is scattered again. Summing the bounces (Lekner & Dorf, "Why some things are
darker when wet", Applied Optics 27(7), 1988)::

    A_wet = (1 - r_e) * A * (1 - x) / (1 - A * x),   x = 1 - (1 - r_e) / n^2

with ``r_e`` the Fresnel reflectance of the water surface averaged over diffuse (isotropic)
incidence, computed here from Fresnel's equations (0.066 for n = 1.333). A wetness ``w`` in
[0, 1] blends dry and wet linearly. The same albedo change applies to the camera's base color
(linear) and to the LiDAR reflectivity at 905 nm (water's index is 1.33 there too); the camera's
surface also turns glossy (roughness toward ``WET_ROUGHNESS``).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np

WATER_INDEX = 1.333
#: PBR roughness of a water film (a smooth dielectric).
WET_ROUGHNESS = 0.1


def fresnel_unpolarized(cos_i: np.ndarray, n: float) -> np.ndarray:
    """Fresnel reflectance of unpolarized light from air onto a dielectric of index ``n``."""
    cos_i = np.clip(cos_i, 0.0, 1.0)
    sin_t = np.sqrt(1.0 - cos_i**2) / n
    cos_t = np.sqrt(1.0 - sin_t**2)
    rs = ((cos_i - n * cos_t) / (cos_i + n * cos_t)) ** 2
    rp = ((n * cos_i - cos_t) / (n * cos_i + cos_t)) ** 2
    return (rs + rp) / 2.0


@lru_cache(maxsize=4)
def diffuse_reflectance(n: float = WATER_INDEX) -> float:
    """Fresnel reflectance averaged over isotropic incidence: ``int R(theta) sin(2 theta)``."""
    theta = np.linspace(0.0, np.pi / 2, 20001)
    f = fresnel_unpolarized(np.cos(theta), n) * np.sin(2 * theta)
    return float(np.sum((f[1:] + f[:-1]) / 2 * np.diff(theta)))


def wet_albedo(albedo: np.ndarray | float, wetness: float, n: float = WATER_INDEX) -> np.ndarray:
    """Albedo of a surface at ``wetness`` in [0, 1] (Lekner & Dorf 1988, blended linearly)."""
    a = np.asarray(albedo, np.float64)
    r = diffuse_reflectance(n)
    x = 1.0 - (1.0 - r) / n**2
    wet = (1.0 - r) * a * (1.0 - x) / (1.0 - a * x)
    return (1.0 - wetness) * a + wetness * wet


def wet_appearance(appearance, wetness: float):  # type: ignore[no-untyped-def]
    """A :class:`simgen.sim.visuals.Appearance` made wet: base color darkened in linear space
    (alpha kept), roughness lowered toward a water film's."""
    if wetness <= 0:
        return appearance
    rgba = np.array(appearance.color_rgba, np.float64)
    rgb = wet_albedo(rgba[:3], wetness)  # PBR base colors are linear albedos
    rough = (1.0 - wetness) * appearance.roughness + wetness * WET_ROUGHNESS
    return dataclasses.replace(
        appearance,
        color_rgba=(float(rgb[0]), float(rgb[1]), float(rgb[2]), float(rgba[3])),
        roughness=float(rough),
    )


def is_ground(kind: str, class_name: str, ground_classes: tuple[str, ...]) -> bool:
    """Objects that get wet: planes and objects of the ground classes (case-insensitive)."""
    return kind == "plane" or class_name.lower() in {c.lower() for c in ground_classes}


def wet_parts(objects, parts, wetness: float, ground_classes: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """The visual parts with the ground ones made wet (``objects``: the scene's, by
    instance id - 1)."""
    if wetness <= 0:
        return list(parts)
    out = []
    for p in parts:
        spec = objects[p.instance_id - 1]
        if is_ground(spec.kind, spec.class_name, ground_classes):
            p = dataclasses.replace(p, appearance=wet_appearance(p.appearance, wetness))
        out.append(p)
    return out
