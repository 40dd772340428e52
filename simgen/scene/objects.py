"""Scene objects: primitives, meshes and URDF assets, with physics and material properties."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from simgen.scene.types import (
    IDENTITY,
    ZERO3,
    AssetRef,
    Color,
    NonNegNum,
    Pose,
    PosNum,
    PosVec3,
    Strict_,
    UnitNum,
    Vec3,
)

Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$",
        description="letters, digits, '_', '-', '.'; unique within its list",
    ),
]
ClassName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$",
        description="semantic class; 'background' is reserved for id 0",
    ),
]


class Material(Strict_):
    """Surface appearance (PBR metallic-roughness)."""

    color: Color = (0.8, 0.8, 0.8)
    texture: AssetRef | None = Field(
        default=None,
        description="image file relative to the scene file, 'pybullet:<path>', or {files: ...}",
    )
    metallic: UnitNum = 0.0
    roughness: UnitNum = 0.6
    reflectivity: UnitNum | None = Field(
        default=None,
        description="diffuse reflectance at the LiDAR wavelength (905 nm), in [0, 1]; "
        "default: by class name (docs/lidar.md)",
    )


KeypointName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$",
        description="letters, digits, '_', '-', '.'",
    ),
]
MAX_KEYPOINTS = 256


class Velocity(Strict_):
    """Initial velocity of a dynamic object, in the world frame."""

    linear: Vec3 = ZERO3
    angular_deg: Vec3 = Field(default=ZERO3, description="degrees per second about world X, Y, Z")


class ObjectBase(Strict_):
    name: Name
    class_name: ClassName = Field(alias="class")
    pose: Pose = Pose(position=ZERO3, orientation=IDENTITY)
    static: bool = Field(default=False, description="fixed in the world (infinite mass)")
    mass: PosNum = Field(default=1.0, description="kg; ignored when static")
    friction: NonNegNum = 0.5
    restitution: UnitNum = 0.0
    velocity: Velocity = Velocity()
    material: Material | None = Field(
        default=None, description="appearance; for URDF/mesh assets it replaces their own"
    )
    keypoints: dict[KeypointName, Vec3] = Field(
        default_factory=dict,
        max_length=MAX_KEYPOINTS,
        description="named points in the object frame (m; for URDF assets the base link frame); "
        "every camera with the 'keypoints' label stores their projections and visibility",
    )

    @model_validator(mode="after")
    def _background_reserved(self) -> ObjectBase:
        if self.class_name == "background":
            raise ValueError("class 'background' is reserved for pixels that hit no object")
        return self


class BoxObject(ObjectBase):
    """Box centered on its pose; ``size`` is the full edge lengths along local x, y, z."""

    kind: Literal["box"] = "box"
    size: PosVec3


class SphereObject(ObjectBase):
    kind: Literal["sphere"] = "sphere"
    radius: PosNum


class CylinderObject(ObjectBase):
    """Cylinder centered on its pose, axis along local z."""

    kind: Literal["cylinder"] = "cylinder"
    radius: PosNum
    length: PosNum


class CapsuleObject(ObjectBase):
    """Capsule centered on its pose, axis along local z; ``length`` excludes the two caps."""

    kind: Literal["capsule"] = "capsule"
    radius: PosNum
    length: PosNum


class PlaneObject(ObjectBase):
    """Infinite static plane through the pose origin with normal local +z.

    ``size`` is only the rendered extent (the physics plane is infinite).
    """

    kind: Literal["plane"] = "plane"
    size: tuple[PosNum, PosNum] = (100.0, 100.0)
    static: bool = True

    @model_validator(mode="after")
    def _static(self) -> PlaneObject:
        if not self.static:
            raise ValueError("a plane is always static; remove 'static: false'")
        return self


class MeshObject(ObjectBase):
    """A mesh file (OBJ, STL, PLY, GLB/GLTF, OFF) loaded with trimesh, in meters after ``scale``."""

    kind: Literal["mesh"] = "mesh"
    file: AssetRef = Field(
        description="relative to the scene file, 'pybullet:<path>', or {files: ...}"
    )
    scale: PosNum | PosVec3 = 1.0
    collision: Literal["convex_hull", "convex_decomposition", "mesh"] = Field(
        default="convex_hull",
        description="'mesh' (exact triangles) is allowed for static objects only",
    )

    @model_validator(mode="after")
    def _concave_static(self) -> MeshObject:
        if self.collision == "mesh" and not self.static:
            raise ValueError(
                "collision 'mesh' (concave triangles) only works for static objects; "
                "use 'convex_hull' or 'convex_decomposition' for dynamic ones"
            )
        return self


class UrdfObject(ObjectBase):
    """A URDF (or single-model SDF) asset: ``pybullet:<path>`` (the pybullet_data package),
    ``simgen:<path>`` (simgen's assets) or a file relative to the scene file."""

    kind: Literal["urdf"] = "urdf"
    asset: AssetRef
    scale: PosNum = Field(default=1.0, description="global scaling of the whole model")
    mass: PosNum | None = Field(default=None, description="kg; default: the URDF's own masses")  # type: ignore[assignment]


SceneObject = Annotated[
    BoxObject
    | SphereObject
    | CylinderObject
    | CapsuleObject
    | PlaneObject
    | MeshObject
    | UrdfObject,
    Field(discriminator="kind"),
]

OBJECT_KINDS = ("box", "sphere", "cylinder", "capsule", "plane", "mesh", "urdf")
