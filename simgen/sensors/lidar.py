"""LiDAR model: ray pattern, sweep timing, intensity and noise (pure functions of the spec).

Frames and conventions (docs/lidar.md):

* Sensor body frame: x forward, y left, z up. A beam of elevation ``el`` and azimuth ``az`` has
  direction ``(cos el cos az, cos el sin az, sin el)``; azimuth 0 is forward, +90 deg left.
* Range image: ``(channels, columns)``. Ring (row) 0 is the highest beam. Columns sweep from
  azimuth ``+fov/2`` down to ``-fov/2`` (left to right as seen from the sensor, clockwise from
  above, like a Velodyne); for a 360 deg sensor column 0 looks backward-left.
* Timing: column ``c`` of a spinning LiDAR fires at ``(c + 0.5) / columns * fov/360 / rotation``
  seconds after the sweep starts. Columns are cast in *sectors*: each sector is cast at one
  physics step (its state stands for the sector's instants); a grid (flash) LiDAR fires every ray
  at the sweep start.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from simgen.scene.sensors import LidarSensor
from simgen.scene.types import value
from simgen.sensors.lidar_presets import PRESETS

#: Default diffuse reflectance at 905 nm by (lower-case) class name; see docs/lidar.md.
CLASS_REFLECTIVITY: dict[str, float] = {
    "road": 0.10,
    "asphalt": 0.10,
    "lane_marking": 0.60,
    "sidewalk": 0.25,
    "concrete": 0.25,
    "ground": 0.20,
    "terrain": 0.20,
    "floor": 0.30,
    "building": 0.30,
    "wall": 0.35,
    "vegetation": 0.50,
    "tree": 0.50,
    "vehicle": 0.50,
    "car": 0.50,
    "truck": 0.50,
    "pedestrian": 0.35,
    "person": 0.35,
    "cyclist": 0.35,
    "robot": 0.40,
    "shelf": 0.40,
    "pallet": 0.45,
    "carton": 0.60,
    "box": 0.60,
    "sign": 0.80,
}
DEFAULT_REFLECTIVITY = 0.5


def class_reflectivity(class_name: str) -> float:
    """Default reflectance of a class (``DEFAULT_REFLECTIVITY`` for unknown classes)."""
    return CLASS_REFLECTIVITY.get(class_name.lower(), DEFAULT_REFLECTIVITY)


@dataclass(frozen=True)
class LidarModel:
    """A LiDAR spec with every value resolved (angles in radians, SI units)."""

    pattern: str  # "spinning" or "grid"
    elevation: np.ndarray  # (C,) rad, descending (ring 0 = top)
    azimuth: np.ndarray  # (N,) rad, descending from +fov/2
    horizontal_fov: float  # rad
    sweep_s: float  # duration of one rotation (0 for a grid)
    column_time: np.ndarray  # (N,) s after the sweep start at which each column fires
    min_range: float
    max_range: float
    sectors: int | None
    attenuation: float  # 1/m
    reference_range: float  # m
    threshold: float
    range_sigma: float
    dropout: float
    low_intensity_dropout: float
    low_intensity_limit: float
    range_resolution: float

    @property
    def channels(self) -> int:
        return int(self.elevation.shape[0])

    @property
    def columns(self) -> int:
        return int(self.azimuth.shape[0])

    @property
    def noisy(self) -> bool:
        """Whether any noise is modelled (else the noisy cloud equals the clean one)."""
        weak = self.low_intensity_dropout > 0 and self.low_intensity_limit > 0
        return self.dropout > 0 or weak or self.range_sigma > 0 or self.range_resolution > 0


def elevation_table_deg(spec: LidarSensor) -> np.ndarray:
    """The beam elevations in degrees, top beam first."""
    if spec.preset is not None:
        table = np.array(PRESETS[spec.preset].elevation_deg)
    elif spec.elevation_deg is not None:
        table = np.array(spec.elevation_deg, dtype=np.float64)
    else:
        assert spec.channels is not None and spec.upper_fov_deg is not None
        assert spec.lower_fov_deg is not None
        n, hi, lo = spec.channels, spec.upper_fov_deg, spec.lower_fov_deg
        step = (hi - lo) / (n - 1) if n > 1 else 0.0
        table = hi - step * np.arange(n)  # CARLA's rule; one channel sits at upper_fov_deg
    return np.sort(table)[::-1].copy()


def column_count(spec: LidarSensor) -> int:
    if spec.columns is not None:
        return int(spec.columns)
    if spec.horizontal_resolution_deg is not None:
        return max(1, round(spec.horizontal_fov_deg / spec.horizontal_resolution_deg))
    assert spec.preset is not None
    return PRESETS[spec.preset].columns


def lidar_model(spec: LidarSensor) -> LidarModel:
    """Resolve a (sampled) LiDAR spec."""
    n = column_count(spec)
    fov = math.radians(spec.horizontal_fov_deg)
    step = fov / n
    azimuth = fov / 2.0 - (np.arange(n) + 0.5) * step
    if spec.pattern == "grid":
        sweep, column_time = 0.0, np.zeros(n)
    else:
        sweep = 1.0 / spec.resolved_rotation_hz()
        column_time = (np.arange(n) + 0.5) / n * (spec.horizontal_fov_deg / 360.0) * sweep
    lo, hi = spec.resolved_ranges()
    nz = spec.noise
    return LidarModel(
        pattern=spec.pattern,
        elevation=np.radians(elevation_table_deg(spec)),
        azimuth=azimuth,
        horizontal_fov=fov,
        sweep_s=sweep,
        column_time=column_time,
        min_range=lo,
        max_range=hi,
        sectors=spec.sectors,
        attenuation=value(spec.attenuation_per_m),
        reference_range=value(spec.reference_range_m),
        threshold=value(spec.detection_threshold),
        range_sigma=value(nz.range_sigma_m),
        dropout=value(nz.dropout),
        low_intensity_dropout=value(nz.low_intensity_dropout),
        low_intensity_limit=value(nz.low_intensity_limit),
        range_resolution=value(nz.range_resolution_m),
    )


def ray_directions(model: LidarModel) -> np.ndarray:
    """(C, N, 3) unit ray directions in the sensor body frame."""
    el = model.elevation[:, None]
    az = model.azimuth[None, :]
    ce = np.cos(el)
    return np.stack(
        np.broadcast_arrays(ce * np.cos(az), ce * np.sin(az), np.sin(el)), axis=-1
    ).astype(np.float64)


@dataclass(frozen=True)
class SweepTiming:
    """When each part of a sweep is cast, in physics steps after the sweep's first step."""

    column_sector: np.ndarray  # (N,) int32: sector of each column
    sector_step: np.ndarray  # (S,) int64: step offset at which each sector is cast
    end_step: int  # step offset of the sweep end (the frame's step)
    timestep: float

    @property
    def sector_time(self) -> np.ndarray:
        """(S,) seconds after the sweep start at which each sector is cast."""
        return self.sector_step * self.timestep

    @property
    def sectors(self) -> int:
        return int(self.sector_step.shape[0])


def sweep_timing(model: LidarModel, timestep: float) -> SweepTiming:
    """Assign columns to sectors and sectors to physics steps.

    Default (``sectors`` unset): every column is cast at the physics step nearest its firing
    time, so a sector is the set of columns sharing a step. With ``sectors = S`` the active part
    of the rotation is cut into S equal time slices, each cast at the step nearest its middle.
    """
    end = round(model.sweep_s / timestep)
    t = model.column_time
    if model.pattern == "grid":
        offsets = np.zeros(model.columns, np.int64)
    elif model.sectors is None:
        offsets = np.floor(t / timestep + 0.5).astype(np.int64)
    else:
        active = model.sweep_s * model.horizontal_fov / (2.0 * math.pi)
        length = active / model.sectors
        slot = np.minimum(np.floor(t / length).astype(np.int64), model.sectors - 1)
        offsets = np.floor((slot + 0.5) * length / timestep + 0.5).astype(np.int64)
    offsets = np.minimum(offsets, end)
    steps, column_sector = np.unique(offsets, return_inverse=True)
    return SweepTiming(column_sector.astype(np.int32), steps.astype(np.int64), int(end), timestep)


# -- returns ----------------------------------------------------------------------------------


def intensity(
    reflectivity: np.ndarray,
    cos_incidence: np.ndarray,
    range_m: np.ndarray,
    attenuation: float,
    reference_range: float,
) -> np.ndarray:
    """Normalized return intensity in [0, 1] (Lambertian target, lidar equation):

    ``I = min(1, rho * cos(theta) * exp(-2 alpha R) * (R_ref / R)^2)``.
    """
    r = np.maximum(np.asarray(range_m, np.float32), np.float32(1e-6))
    out = np.asarray(reflectivity, np.float32) * np.asarray(cos_incidence, np.float32)
    if attenuation > 0:
        out *= np.exp(np.float32(-2.0 * attenuation) * r)
    out *= np.float32(reference_range**2) / (r * r)
    return np.minimum(out, np.float32(1.0), out=out)


@dataclass(frozen=True)
class NoisyReturns:
    keep: np.ndarray  # (n,) bool: the clean returns that survive dropout and the range limits
    range_m: np.ndarray  # (n,) float32 noisy range of every clean return (valid where keep)


@dataclass(frozen=True)
class NoiseDraws:
    """The random numbers behind the noise of n returns (None where that noise is off)."""

    dropout: np.ndarray | None  # (n,) uniform [0, 1)
    weak: np.ndarray | None  # (n,) uniform [0, 1)
    range_m: np.ndarray | None  # (n,) float32 range error, m: range_sigma * standard normal

    def part(self, a: int, b: int) -> NoiseDraws:
        """The draws of items ``[a, b)``."""
        fields = (self.dropout, self.weak, self.range_m)
        return NoiseDraws(*(None if x is None else x[a:b] for x in fields))


def draw_noise(model: LidarModel, n: int, rngs: dict[str, np.random.Generator]) -> NoiseDraws:
    """Draw the noise of ``n`` returns. ``rngs`` holds the ``"dropout"``, ``"weak"`` and
    ``"range"`` streams (separate, so enabling one noise source never shifts another); a stream
    is not drawn from while its noise is off."""
    weak = model.low_intensity_dropout > 0 and model.low_intensity_limit > 0
    err = None
    if model.range_sigma > 0:
        err = rngs["range"].standard_normal(n)
        err *= model.range_sigma
        err = err.astype(np.float32)
    return NoiseDraws(
        rngs["dropout"].random(n) if model.dropout > 0 else None,
        rngs["weak"].random(n) if weak else None,
        err,
    )


def apply_draws(
    model: LidarModel, range_m: np.ndarray, intensity_: np.ndarray, draws: NoiseDraws
) -> NoisyReturns:
    """Noisy measurements of clean returns from their draws (:func:`draw_noise`), in float32."""
    n = range_m.shape[0]
    keep = np.ones(n, bool) if draws.dropout is None else draws.dropout >= model.dropout
    if draws.weak is not None:
        p_weak = 1.0 - intensity_ / np.float32(model.low_intensity_limit)
        np.clip(p_weak, 0.0, 1.0, out=p_weak)
        p_weak *= np.float32(model.low_intensity_dropout)
        keep &= draws.weak >= p_weak
    r = np.asarray(range_m, np.float32)
    if draws.range_m is not None:
        r = r + draws.range_m
    if model.range_resolution > 0:
        step = np.float32(model.range_resolution)
        r = np.round(r / step)
        r *= step
    if draws.range_m is not None or model.range_resolution > 0:
        keep &= r <= np.float32(model.max_range)
        keep &= r >= np.float32(model.min_range) if model.min_range > 0 else r > 0
    else:
        r = r.copy()
    return NoisyReturns(keep, r)


def apply_noise(
    model: LidarModel,
    range_m: np.ndarray,
    intensity_: np.ndarray,
    rngs: dict[str, np.random.Generator],
) -> NoisyReturns:
    """Noisy measurements of clean returns (:func:`draw_noise` then :func:`apply_draws`)."""
    return apply_draws(model, range_m, intensity_, draw_noise(model, range_m.shape[0], rngs))


def sector_to_end(sector_pose_w: np.ndarray, end_pose_w: np.ndarray) -> np.ndarray | None:
    """(S, 4, 4) transforms from the sensor frame at each sector to the sensor frame at the sweep
    end, ``inv(T_w_end) @ T_w_sector``; None when the sensor did not move during the sweep."""
    from simgen.geometry import invert_pose

    rel = invert_pose(end_pose_w)[None] @ sector_pose_w
    if np.allclose(rel, np.eye(4), rtol=0.0, atol=1e-12):
        return None
    return rel


def deskew(
    points_s: np.ndarray,
    point_sector: np.ndarray,
    sector_pose_w: np.ndarray,
    end_pose_w: np.ndarray,
) -> np.ndarray:
    """Points measured in the sensor frame at their sector's instant, expressed in the sensor
    frame at the sweep end: ``p_end = inv(T_w_end) @ T_w_sector @ p``."""
    rel = sector_to_end(sector_pose_w, end_pose_w)
    if rel is None:
        return points_s.copy()  # the sensor did not move during the sweep
    p = points_s.astype(np.float64)
    if point_sector.size and np.all(np.diff(point_sector) >= 0):  # firing order: runs
        out = np.empty_like(p)
        bounds = np.searchsorted(point_sector, np.arange(rel.shape[0] + 1))
        for j, (a, b) in enumerate(itertools.pairwise(bounds)):
            out[a:b] = p[a:b] @ rel[j, :3, :3].T + rel[j, :3, 3]
    else:
        out = np.einsum("nij,nj->ni", rel[point_sector, :3, :3], p) + rel[point_sector, :3, 3]
    return out.astype(points_s.dtype)
