"""Scene models for placement: scattering objects into a region, and constraints (``require``).

A scatter makes ``count`` objects (the count may be random) named ``<name>_0``, ``<name>_1``, ...
from templates (``objects``) or from an asset pool (``assets``), places each at a random pose in
its region without overlapping anything placed before (convex collision shapes, via pybullet),
then lets them fall and settle until at rest before the episode starts
(:mod:`simgen.sim.placement`). ``count`` and ``region`` are drawn once per episode; the templates,
``assets``, ``orientation``, ``material``, ``scale`` and ``mass`` once per object.

Constraints are checked on the settled scene at t = 0; an episode that fails one is sampled
again (bounded rejection sampling, :mod:`simgen.run.prepare`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag, model_validator

from simgen.scene.objects import ClassName, Material, Name, SceneObject
from simgen.scene.types import (
    IDENTITY,
    AssetRef,
    Count,
    NonNegNum,
    Num,
    Orientation,
    PosNum,
    Strict_,
    Vec3,
)


def _one_key_tag(allowed: tuple[str, ...]) -> Any:
    # Tags are "<key>", never equal to a key of the data, so error locations map back to the
    # file's fields even where the parameters have a field named like the key ({force: {force}}).
    def tag(v: Any) -> str:
        if isinstance(v, dict) and len(v) == 1:
            key = str(next(iter(v)))
            return f"<{key}>" if key in allowed else "<invalid>"
        for name in allowed:
            if hasattr(v, name) and not isinstance(v, dict):
                return f"<{name}>"
        return "<invalid>"

    return tag


def one_key_union(members: dict[str, type], what: str, error: str) -> Any:
    """A union of one-key models (``{box: {...}}``), discriminated by the key."""
    tags = tuple(members)
    union: Any = None
    for key, model in members.items():
        item = Annotated[model, Tag(f"<{key}>")]  # type: ignore[valid-type]
        union = item if union is None else union | item
    return Annotated[
        union,
        Discriminator(
            _one_key_tag(tags),
            custom_error_type=f"invalid_{error}",
            custom_error_message=f"expected {what}: " + ", ".join("{" + t + ": ...}" for t in tags),
        ),
    ]


# -- regions ----------------------------------------------------------------------------------


class BoxRegionParams(Strict_):
    center: Vec3
    size: Vec3 = Field(description="full edge lengths; 0 along an axis puts every object on it")


class BoxRegion(Strict_):
    """Object origins uniform in an axis-aligned box (world frame)."""

    box: BoxRegionParams


class Area(Strict_):
    center: tuple[Num, Num] = Field(description="[x, y] world, m")
    size: tuple[PosNum, PosNum] = Field(description="[sx, sy], m")


class OnRegionParams(Strict_):
    object: Name = Field(description="the supporting object (static), e.g. a table")
    margin: NonNegNum = Field(default=0.0, description="keep this far inside the top's edges, m")
    area: Area | None = Field(
        default=None, description="restrict to this rectangle of the top (required on planes)"
    )
    drop_height: NonNegNum = Field(
        default=0.005, description="gap between the surface and the object's lowest point, m"
    )


class OnRegion(Strict_):
    """On top of an object: x, y uniform over the top of its bounding box (minus ``margin`` and
    the placed object's own extent), resting ``drop_height`` above its highest point."""

    on_top_of: OnRegionParams


class AlongRegionParams(Strict_):
    points: list[Vec3] = Field(min_length=2, description="polyline (or spline) control points")
    spline: bool = Field(default=False, description="Catmull-Rom spline through the points")
    even: bool = Field(
        default=False, description="space the objects evenly by arc length instead of randomly"
    )


class AlongRegion(Strict_):
    """Object origins on a polyline or spline, uniform by arc length."""

    along: AlongRegionParams


Region = one_key_union(
    {"box": BoxRegion, "on_top_of": OnRegion, "along": AlongRegion}, "a region", "region"
)


# -- scatter ----------------------------------------------------------------------------------


class Scatter(Strict_):
    """``count`` objects from templates or an asset pool, placed in ``region`` without overlap."""

    name: Name = Field(description="objects are named <name>_0, <name>_1, ...")
    count: Count
    class_name: ClassName | None = Field(
        default=None, alias="class", description="class of the objects (default: the template's)"
    )
    objects: list[SceneObject] = Field(
        default_factory=list, description="templates (name optional); one is chosen per object"
    )
    weights: list[float] | None = Field(default=None, description="weights of the templates")
    assets: AssetRef | None = Field(
        default=None, description="URDF asset per object, e.g. {files: {folder: ..., pattern: ...}}"
    )
    unique: bool = Field(default=False, description="no asset twice in one episode")
    scale: PosNum = Field(default=1.0, description="global scaling of 'assets' objects")
    mass: PosNum | None = Field(default=None, description="kg of 'assets' objects")
    material: Material | None = Field(default=None, description="appearance of every object")
    region: Region  # type: ignore[valid-type]
    orientation: Orientation = Field(
        default=IDENTITY, description="per object, e.g. {axis_rotation: {axis: [0, 0, 1]}}"
    )
    min_gap: NonNegNum = Field(default=0.0, description="minimum distance to other objects, m")
    settle: bool = Field(default=True, description="let them fall and come to rest before t = 0")
    max_tries: int = Field(default=200, ge=1, le=100_000, description="poses tried per object")

    @model_validator(mode="before")
    @classmethod
    def _template_defaults(cls, data: Any) -> Any:
        """Templates may omit ``name`` (and ``class`` when the scatter gives one)."""
        if not isinstance(data, dict) or not isinstance(data.get("objects"), list):
            return data
        templates = []
        for j, t in enumerate(data["objects"]):
            if isinstance(t, dict):
                t = dict(t)
                t.setdefault("name", f"{data.get('name', 'scatter')}_template_{j}")
                if "class" in data and "class" not in t and "class_name" not in t:
                    t["class"] = data["class"]
            templates.append(t)
        return {**data, "objects": templates}

    @model_validator(mode="after")
    def _source(self) -> Scatter:
        if bool(self.objects) == (self.assets is not None):
            raise ValueError("give either 'objects' (templates) or 'assets' (a URDF pool)")
        if self.assets is not None and self.class_name is None:
            raise ValueError("a scatter of 'assets' needs a 'class'")
        if self.weights is not None:
            if len(self.weights) != len(self.objects):
                raise ValueError("'weights' must have one weight per template in 'objects'")
            if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise ValueError("'weights' must be >= 0 with a positive sum")
        if self.unique and isinstance(self.assets, str):
            from simgen.errors import FieldValueError
            from simgen.scene.bounds import number_range

            r = number_range(self.count)
            if r is None or r[1] > 1:
                raise FieldValueError(
                    ("unique",),
                    "'unique' needs several assets to choose from: {files: ...} or "
                    "{choice: [...]}, not one file",
                )
        return self

    def classes(self) -> list[str]:
        """Classes its objects may have, in order."""
        if self.class_name is not None:
            return [self.class_name]
        out: list[str] = []
        for t in self.objects:
            if t.class_name not in out:
                out.append(t.class_name)
        return out


# -- constraints ------------------------------------------------------------------------------

VISIBLE_DOC = (
    "fraction of the object's surface sample points (visual mesh vertices) that the camera "
    "sees inside its image and unoccluded"
)


class VisibleParams(Strict_):
    object: Name
    camera: Name
    min_fraction: float = Field(default=0.1, gt=0, le=1, description=VISIBLE_DOC)


class Visible(Strict_):
    """``object`` is visible from ``camera`` at t = 0."""

    visible: VisibleParams


class InViewParams(Strict_):
    camera: Name
    min: int = Field(ge=1, description="at least this many objects in view")
    group: Name | None = Field(default=None, description="count only this scatter's objects")
    class_name: ClassName | None = Field(
        default=None, alias="class", description="count only objects of this class"
    )
    min_fraction: float = Field(default=0.1, gt=0, le=1, description=VISIBLE_DOC)


class InView(Strict_):
    """At least ``min`` objects (optionally of one scatter group or class) visible at t = 0."""

    in_view: InViewParams


class DistanceParams(Strict_):
    a: Name
    b: Name
    min: float | None = Field(default=None, ge=0, description="origins at least this far, m")
    max: float | None = Field(default=None, gt=0, description="origins at most this far, m")

    @model_validator(mode="after")
    def _bounds(self) -> DistanceParams:
        if self.min is None and self.max is None:
            raise ValueError("distance needs 'min' or 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("distance: min is above max")
        return self


class Distance(Strict_):
    """Distance between the origins of objects ``a`` and ``b`` at t = 0."""

    distance: DistanceParams


Constraint = one_key_union(
    {"visible": Visible, "in_view": InView, "distance": Distance}, "a constraint", "constraint"
)


def describe_constraint(c: Any) -> str:
    """One line naming a constraint, for error messages."""
    if isinstance(c, Visible):
        p = c.visible
        return (
            f"visible: object {p.object!r} from camera {p.camera!r} (min_fraction {p.min_fraction})"
        )
    if isinstance(c, InView):
        q = c.in_view
        what = (
            f"group {q.group!r}"
            if q.group
            else f"class {q.class_name!r}"
            if q.class_name
            else "objects"
        )
        return f"in_view: at least {q.min} {what} in camera {q.camera!r}"
    d = c.distance
    bounds = " and ".join(
        s
        for s in (
            f">= {d.min} m" if d.min is not None else "",
            f"<= {d.max} m" if d.max is not None else "",
        )
        if s
    )
    return f"distance: {d.a!r} to {d.b!r} {bounds}"


# -- settings ---------------------------------------------------------------------------------


class SettleSettings(Strict_):
    """When scattered objects count as at rest: their mean speeds over each 1/10 s of
    simulated time (displacement and rotation divided by the time) below the tolerances."""

    max_time: float = Field(default=2.0, gt=0, le=60, description="s of settling at most")
    linear_tolerance: float = Field(default=0.02, gt=0, description="m/s")
    angular_tolerance_deg: float = Field(default=10.0, gt=0, description="degrees/s")
    timestep: float = Field(
        default=1.0 / 120.0,
        gt=0,
        le=0.05,
        description="physics step while settling, s (the scene's when that is coarser): "
        "settling needs a resting pose, not an accurate path",
    )
    solver_iterations: int = Field(default=10, ge=1, le=1000, description="while settling")


class Randomization(Strict_):
    """Limits of placement and rejection sampling."""

    max_tries: int = Field(
        default=50, ge=1, le=10_000, description="episode samples tried until 'require' holds"
    )
    settle: SettleSettings = SettleSettings()


__all__ = [
    "AlongRegion",
    "BoxRegion",
    "Constraint",
    "Distance",
    "InView",
    "OnRegion",
    "Randomization",
    "Region",
    "Scatter",
    "Visible",
    "describe_constraint",
    "one_key_union",
]
