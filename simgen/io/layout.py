"""The dataset file format: names, versions and conventions written into every file.

docs/dataset-format.md documents the layout; tests/test_dataset_format.py checks that the two
agree.
"""

from __future__ import annotations

import json

FORMAT_NAME = "simgen-dataset"
FORMAT_VERSION = 1

CONVENTIONS = {
    "units": "SI: meters, seconds, kilograms, radians (degrees only in scene files, *_deg)",
    "world_frame": "right-handed, Z up",
    "camera_frame": "OpenCV: x right, y down, z forward (optical axis)",
    "sensor_body_frame": "x forward, y left, z up",
    "quaternion_order": "w, x, y, z (scalar first)",
    "pose": "T_a_b maps points in frame b to frame a; pose_w = frame in world",
    "extrinsics_w2c": "4x4 world-to-camera (OpenCV camera frame)",
    "intrinsics": "K 3x3, OpenCV: pixel centers at integer coordinates",
    "image_axes": "arrays are (height, width[, channels]); row 0 is the top of the image",
    "depth_m": "float32, distance along the optical axis (camera z) in meters; 0.0 = no surface",
    "instance": "uint16, 0 = background, else the object's instance_id (stable in an episode)",
    "semantic": "uint16 class id; index into the class table, 0 = background",
    "time": "seconds since episode start; frames at t = k / rate_hz snapped to physics steps",
    "lidar": "range images (rings, columns): ring 0 = top beam, column 0 at azimuth +fov/2, "
    "columns clockwise seen from above; 0 = no return; points in the sensor body frame; "
    "a frame is the end of its sweep",
    "ranges": "half-open: [start, end)",
    "box2d": "int32 [u0, v0, u1, v1): half-open pixel window (columns u0..u1-1, rows v0..v1-1)",
    "per_object_tables": "(F, N, ...) arrays indexed by instance_id - 1, every object of the episode",
    "flow": "pixels (du, dv) from rigid motion; status 0 none, 1 visible, 2 occluded, 3 leaves",
}

#: Fields of a LiDAR sensor group that the exporters and ``simgen verify`` read (ragged, one
#: row per point): the de-skewed points, all in the LiDAR frame at the sweep's end (x forward,
#: y left, z up; ``pose_w`` maps that frame to the world, as KITTI's motion-compensated clouds),
#: and intensity and instance ids (the cameras' numbering).
LIDAR_POINTS = "points_deskewed_s"
LIDAR_INTENSITY = "intensity"
LIDAR_INSTANCE = "instance"


def conventions_json() -> str:
    return json.dumps(CONVENTIONS, sort_keys=True)


def episode_group_name(index: int) -> str:
    return f"{index:06d}"
