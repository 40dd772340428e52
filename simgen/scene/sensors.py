"""Sensor specifications. A sensor is mounted by a pose or a look-at, optionally on an object.

Mount frame: a sensor's ``pose`` gives its *body* frame, x forward, y left, z up (so the identity
orientation looks along the parent's +x with the parent's +z up). A camera's optical frame
(OpenCV: x right, y down, z forward) is fixed relative to the body frame
(:data:`simgen.sensors.camera.R_BODY_OPTICAL`). ``look_at`` aims the optical axis directly (for
a LiDAR, the body x axis: azimuth 0).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from simgen.errors import FieldValueError
from simgen.scene.effects import CameraEffects, Distortion
from simgen.scene.objects import Name
from simgen.scene.types import (
    Attachment,
    LookAt,
    NonNegNum,
    Num,
    Pose,
    PosNum,
    Strict_,
    UnitNum,
    value,
)
from simgen.sensors.lidar_presets import PRESETS

MAX_RESOLUTION = 8192  # the default of simgen.limits.Limits.max_image_side

CameraOutput = Literal["rgb", "depth", "instance", "semantic"]
CAMERA_OUTPUTS: tuple[CameraOutput, ...] = ("rgb", "depth", "instance", "semantic")

CameraLabel = Literal["boxes", "amodal", "keypoints", "panoptic", "flow", "normals"]
CAMERA_LABELS: tuple[CameraLabel, ...] = (
    "boxes",
    "amodal",
    "keypoints",
    "panoptic",
    "flow",
    "normals",
)
#: Labels computed when a camera does not list its own: the ones that need no extra rendering.
DEFAULT_CAMERA_LABELS: tuple[CameraLabel, ...] = ("boxes", "keypoints", "panoptic")


class FovIntrinsics(Strict_):
    """Pinhole camera from the vertical field of view; square pixels, centered principal point."""

    fov_deg: Num = Field(description="vertical field of view in degrees, in (0, 180)")

    @model_validator(mode="after")
    def _range(self) -> FovIntrinsics:
        try:
            f = value(self.fov_deg)
        except TypeError:
            return self
        if not 0.0 < f < 180.0:
            raise ValueError(f"fov_deg must be in (0, 180), got {f}")
        return self


class PinholeIntrinsics(Strict_):
    """Pinhole camera in pixels, OpenCV convention (pixel centers at integer coordinates;
    the image center of a W x H image is ((W-1)/2, (H-1)/2))."""

    fx: PosNum
    fy: PosNum
    cx: Num
    cy: Num


def _intrinsics_tag(v: Any) -> str:
    if isinstance(v, FovIntrinsics) or (isinstance(v, dict) and "fov_deg" in v):
        return "fov"
    if isinstance(v, PinholeIntrinsics) or (isinstance(v, dict) and "fx" in v):
        return "pinhole"
    return "<invalid>"


Intrinsics = Annotated[
    Annotated[FovIntrinsics, Tag("fov")] | Annotated[PinholeIntrinsics, Tag("pinhole")],
    Discriminator(
        _intrinsics_tag,
        custom_error_type="invalid_intrinsics",
        custom_error_message="expected {fov_deg: F} or {fx: .., fy: .., cx: .., cy: ..}",
    ),
]


class SensorBase(Strict_):
    name: Name
    pose: Pose | None = Field(default=None, description="body frame (x forward, z up)")
    look_at: LookAt | None = None
    attach_to: Attachment | None = Field(
        default=None, description="mount on an object; pose/look_at are then in its frame"
    )
    rate_hz: PosNum = Field(default=10.0, description="captures per second of simulated time")

    @model_validator(mode="after")
    def _one_mount(self) -> SensorBase:
        if self.pose is not None and self.look_at is not None:
            raise ValueError("give either 'pose' or 'look_at', not both")
        if self.pose is None and self.look_at is None:
            raise ValueError("a sensor needs 'pose' or 'look_at' to place it")
        return self


class CameraSensor(SensorBase):
    """A pinhole camera rendering RGB, depth, instance and semantic segmentation."""

    kind: Literal["camera"] = "camera"
    resolution: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] = Field(
        description="[width, height] in pixels (at most max_image_side each, max_image_pixels "
        "in all: docs/reliability.md)"
    )
    intrinsics: Intrinsics = FovIntrinsics(fov_deg=60.0)
    near: PosNum = Field(default=0.05, description="near clip plane, meters")
    far: PosNum = Field(default=100.0, description="far clip plane, meters")
    outputs: list[CameraOutput] = Field(default_factory=lambda: list(CAMERA_OUTPUTS))
    labels: list[CameraLabel] = Field(
        default_factory=lambda: list(DEFAULT_CAMERA_LABELS),
        description="ground truth computed per frame (docs/labels.md): boxes (2D tight and 3D "
        "boxes), amodal (masks/boxes without occluders, visibility, truncation: one extra "
        "render per object in view), keypoints, panoptic, flow (optical and scene flow to "
        "the previous and next frame), normals (camera frame)",
    )
    antialias: Literal[1, 2, 4, 8] = Field(
        default=1,
        description="samples per pixel of the RGB image (multisampling); labels are never blended",
    )
    distortion: Distortion | None = Field(
        default=None,
        description="Brown-Conrady lens distortion (OpenCV's model) of every image and label map",
    )
    effects: CameraEffects | None = Field(
        default=None,
        description="sensor model: exposure, motion blur, vignetting, chromatic aberration, "
        "noise, JPEG (docs/weather.md); the clean render is stored as rgb_clean",
    )

    @model_validator(mode="after")
    def _clip(self) -> CameraSensor:
        if len(set(self.outputs)) != len(self.outputs):
            raise ValueError("outputs lists a value twice")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels lists a value twice")
        try:
            near, far = value(self.near), value(self.far)
        except TypeError:
            return self
        if near >= far:
            raise ValueError(f"near ({near}) must be below far ({far})")
        return self


LidarPresetName = Literal["vlp-16", "hdl-32e", "hdl-64e", "os1-64", "carla-default"]
MAX_LIDAR_CHANNELS = 1024
MAX_LIDAR_COLUMNS = 65536

Angle = Annotated[float, Field(ge=-90.0, le=90.0)]


class LidarNoise(Strict_):
    """Measurement noise of a LiDAR (the clean cloud is stored too). All zero: noise-free."""

    range_sigma_m: NonNegNum = Field(default=0.0, description="Gaussian range noise, m")
    dropout: UnitNum = Field(default=0.0, description="probability that any return is lost")
    low_intensity_dropout: UnitNum = Field(
        default=0.0,
        description="extra loss probability at intensity 0, falling linearly to 0 at "
        "low_intensity_limit",
    )
    low_intensity_limit: UnitNum = Field(
        default=0.1, description="intensity above which returns are never lost for weakness"
    )
    range_resolution_m: NonNegNum = Field(
        default=0.0, description="range quantization step, m (0: none)"
    )


class LidarSensor(SensorBase):
    """A LiDAR: spinning (rows of beams swept in azimuth) or a solid-state grid (flash).

    The beams come from a ``preset`` (published tables), an explicit ``elevation_deg`` table, or
    ``channels`` spread uniformly from ``upper_fov_deg`` down to ``lower_fov_deg``. Azimuth 0 is
    the body x axis, positive toward body +y (left). docs/lidar.md describes the model.
    """

    kind: Literal["lidar"] = "lidar"
    preset: LidarPresetName | None = Field(
        default=None, description="sensor model whose beam table and defaults to use"
    )
    pattern: Literal["spinning", "grid"] = Field(
        default="spinning",
        description="'spinning': columns fire one after another over a rotation; "
        "'grid': solid-state flash, every ray at the same instant",
    )
    channels: int | None = Field(default=None, ge=1, le=MAX_LIDAR_CHANNELS)
    elevation_deg: list[Angle] | None = Field(
        default=None, min_length=1, max_length=MAX_LIDAR_CHANNELS, description="beam table"
    )
    upper_fov_deg: Angle | None = None
    lower_fov_deg: Angle | None = None
    columns: int | None = Field(
        default=None,
        ge=1,
        le=MAX_LIDAR_COLUMNS,
        description="points per channel per sweep (per rotation for a spinning LiDAR)",
    )
    horizontal_resolution_deg: float | None = Field(default=None, gt=0.0, le=360.0)
    horizontal_fov_deg: float = Field(default=360.0, gt=0.0, le=360.0)
    rotation_hz: PosNum | None = Field(
        default=None, description="rotations per second (default: rate_hz); a sweep lasts 1/it"
    )
    min_range: NonNegNum | None = Field(default=None, description="m; nearer hits give no return")
    max_range: PosNum | None = Field(default=None, description="m")
    sectors: int | None = Field(
        default=None,
        ge=1,
        le=MAX_LIDAR_COLUMNS,
        description="azimuth sectors cast at their own physics step (motion distortion); "
        "default: one per physics step of the sweep; 1: the whole sweep at one instant",
    )
    attenuation_per_m: NonNegNum = Field(
        default=1e-4,
        description="atmospheric extinction alpha, 1/m (returns fall as exp(-2 alpha R))",
    )
    reference_range_m: PosNum = Field(
        default=10.0, description="range at which a white Lambertian target has intensity 1"
    )
    detection_threshold: UnitNum = Field(
        default=2e-4, description="returns with a lower normalized intensity are not detected"
    )
    beam_divergence_mrad: PosNum = Field(
        default=3.0, description="full-angle beam divergence, mrad (weather particle returns)"
    )
    beam_diameter_m: PosNum = Field(
        default=0.01, description="beam diameter at the exit aperture, m (weather particle returns)"
    )
    noise: LidarNoise = LidarNoise()

    @model_validator(mode="after")
    def _beams(self) -> LidarSensor:
        if self.preset is not None:
            for f in ("channels", "elevation_deg", "upper_fov_deg", "lower_fov_deg"):
                if getattr(self, f) is not None:
                    raise FieldValueError(
                        (f,),
                        f"preset {self.preset!r} fixes the beam table; remove {f!r} or 'preset'",
                    )
            if self.pattern != "spinning":
                raise FieldValueError(("pattern",), "presets are spinning LiDARs")
        elif self.elevation_deg is not None:
            if self.channels is not None and self.channels != len(self.elevation_deg):
                raise FieldValueError(
                    ("channels",),
                    f"channels ({self.channels}) differs from the {len(self.elevation_deg)} "
                    "angles of elevation_deg; remove 'channels'",
                )
            if self.upper_fov_deg is not None or self.lower_fov_deg is not None:
                raise FieldValueError(
                    ("elevation_deg",), "give elevation_deg or upper/lower_fov_deg, not both"
                )
        else:
            missing = [
                f
                for f in ("channels", "upper_fov_deg", "lower_fov_deg")
                if getattr(self, f) is None
            ]
            if missing:
                raise ValueError(
                    "a LiDAR needs a 'preset', an 'elevation_deg' table, or 'channels' with "
                    f"'upper_fov_deg' and 'lower_fov_deg' (missing: {', '.join(missing)})"
                )
            assert self.upper_fov_deg is not None and self.lower_fov_deg is not None
            if self.upper_fov_deg < self.lower_fov_deg:
                raise FieldValueError(
                    ("upper_fov_deg",),
                    f"upper_fov_deg ({self.upper_fov_deg}) is below lower_fov_deg "
                    f"({self.lower_fov_deg})",
                )
        return self

    @model_validator(mode="after")
    def _sweep(self) -> LidarSensor:
        if self.columns is not None and self.horizontal_resolution_deg is not None:
            raise FieldValueError(
                ("columns",), "give 'columns' or 'horizontal_resolution_deg', not both"
            )
        if self.preset is None and self.columns is None and self.horizontal_resolution_deg is None:
            raise ValueError(
                "give 'columns' (points per channel per sweep) or 'horizontal_resolution_deg'"
            )
        if self.pattern == "grid" and self.sectors not in (None, 1):
            raise FieldValueError(("sectors",), "a grid (flash) LiDAR fires at one instant")
        try:
            lo, hi = self.resolved_ranges()
        except TypeError:
            return self
        if lo >= hi:
            raise FieldValueError(
                ("min_range" if self.min_range is not None else "max_range",),
                f"min_range ({lo} m) must be below max_range ({hi} m)",
            )
        try:
            rate, rot = value(self.rate_hz), self.resolved_rotation_hz()
        except TypeError:
            return self
        if self.pattern == "spinning" and rate > rot * (1 + 1e-9):
            raise FieldValueError(
                ("rate_hz",),
                f"rate_hz ({rate}) is above rotation_hz ({rot}): sweeps would overlap",
            )
        return self

    def resolved_ranges(self) -> tuple[float, float]:
        """(min_range, max_range) in meters, from the fields or the preset."""
        p = PRESETS[self.preset] if self.preset is not None else None
        lo = value(self.min_range) if self.min_range is not None else (p.min_range if p else 0.0)
        hi = value(self.max_range) if self.max_range is not None else (p.max_range if p else 100.0)
        return lo, hi

    def resolved_rotation_hz(self) -> float:
        if self.rotation_hz is not None:
            return value(self.rotation_hz)
        return value(self.rate_hz)


#: Every sensor kind, a discriminated union on ``kind``.
Sensor = Annotated[CameraSensor | LidarSensor, Field(discriminator="kind")]
SENSOR_KINDS = ("camera", "lidar")
