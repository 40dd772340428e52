"""Published beam tables of common spinning LiDARs (pure data; docs/lidar.md cites the sources).

Elevations are in degrees, listed as the manufacturer lists them (firing order where the source
gives one). simgen sorts them from the top beam down (ring 0 = highest), as Ouster does.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LidarPreset:
    """Beam table and defaults of one sensor model."""

    elevation_deg: tuple[float, ...]
    columns: int  # points per channel per rotation at ``rotation_hz``
    rotation_hz: float
    min_range: float  # m
    max_range: float  # m
    source: str


# Velodyne VLP-16 user manual (63-9243), table 9-1: laser ids 0..15 in firing order.
VLP16 = (
    -15.0,
    1.0,
    -13.0,
    3.0,
    -11.0,
    5.0,
    -9.0,
    7.0,
    -7.0,
    9.0,
    -5.0,
    11.0,
    -3.0,
    13.0,
    -1.0,
    15.0,
)

# Velodyne HDL-32E user manual (63-9113), vertical angles of lasers 0..31 in firing order.
HDL32E = (
    -30.67, -9.33, -29.33, -8.00, -28.00, -6.67, -26.67, -5.33,
    -25.33, -4.00, -24.00, -2.67, -22.67, -1.33, -21.33, 0.00,
    -20.00, 1.33, -18.67, 2.67, -17.33, 4.00, -16.00, 5.33,
    -14.67, 6.67, -13.33, 8.00, -12.00, 9.33, -10.67, 10.67,
)  # fmt: skip

# Velodyne HDL-64E S2 user manual (63-HDL64ES2): upper block +2 to -8.33 deg at 1/3 deg
# spacing (32 lasers), lower block -8.83 to -24.33 deg at 1/2 deg spacing (32 lasers).
HDL64E = tuple(round(2.0 - k / 3.0, 4) for k in range(32)) + tuple(
    round(-(8.0 + 1.0 / 3.0) - 0.5 * (k + 1), 4) for k in range(32)
)

# Ouster OS1-64 (Gen 1) nominal beam_altitude_angles, as in the Ouster SDK's default sensor
# info (``gen1_altitude_angles``); top beam first. Uniform 33.2 deg field of view.
OS1_64 = (
    16.611, 16.084, 15.557, 15.029, 14.502, 13.975, 13.447, 12.920,
    12.393, 11.865, 11.338, 10.811, 10.283, 9.756, 9.229, 8.701,
    8.174, 7.646, 7.119, 6.592, 6.064, 5.537, 5.010, 4.482,
    3.955, 3.428, 2.900, 2.373, 1.846, 1.318, 0.791, 0.264,
    -0.264, -0.791, -1.318, -1.846, -2.373, -2.900, -3.428, -3.955,
    -4.482, -5.010, -5.537, -6.064, -6.592, -7.119, -7.646, -8.174,
    -8.701, -9.229, -9.756, -10.283, -10.811, -11.338, -11.865, -12.393,
    -12.920, -13.447, -13.975, -14.502, -15.029, -15.557, -16.084, -16.611,
)  # fmt: skip

# CARLA's ray_cast LiDAR defaults: 32 channels uniform from upper_fov +10 to lower_fov -30
# (angle_i = upper - i * (upper - lower) / (channels - 1)), range 10 m, 56000 points/s at 10 Hz.
CARLA_DEFAULT = tuple(round(10.0 - i * 40.0 / 31.0, 6) for i in range(32))

PRESETS: dict[str, LidarPreset] = {
    "vlp-16": LidarPreset(VLP16, 1800, 10.0, 0.9, 100.0, "Velodyne VLP-16 manual"),
    "hdl-32e": LidarPreset(HDL32E, 2172, 10.0, 0.9, 100.0, "Velodyne HDL-32E manual"),
    "hdl-64e": LidarPreset(HDL64E, 2083, 10.0, 0.9, 120.0, "Velodyne HDL-64E S2 manual"),
    "os1-64": LidarPreset(OS1_64, 1024, 10.0, 0.8, 120.0, "Ouster OS1-64 Gen 1 (Ouster SDK)"),
    "carla-default": LidarPreset(CARLA_DEFAULT, 175, 10.0, 0.0, 10.0, "CARLA sensor.lidar"),
}

PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)
