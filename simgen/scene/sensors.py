"""Sensor specifications. A sensor is mounted by a pose or a look-at, optionally on an object.

Mount frame: a sensor's ``pose`` gives its *body* frame, x forward, y left, z up (so the identity
orientation looks along the parent's +x with the parent's +z up). A camera's optical frame
(OpenCV: x right, y down, z forward) is fixed relative to the body frame
(:data:`simgen.sensors.camera.R_BODY_OPTICAL`). ``look_at`` aims the optical axis directly.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from simgen.scene.objects import Name
from simgen.scene.types import Attachment, LookAt, Num, Pose, PosNum, Strict_, value

MAX_RESOLUTION = 8192

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
    resolution: tuple[
        Annotated[int, Field(ge=1, le=MAX_RESOLUTION)],
        Annotated[int, Field(ge=1, le=MAX_RESOLUTION)],
    ] = Field(description="[width, height] in pixels")
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


#: Every sensor kind (a discriminated union on ``kind`` once there are several).
Sensor = CameraSensor
SENSOR_KINDS = ("camera",)
