"""Scene models of scenarios: timeline events, triggers, actions and built-in templates.

A scenario happens in an episode with a ``probability`` (independently per episode) or for an
exact ``quota`` of the dataset's episodes (a seeded permutation of episode indices picks
exactly ``round(quota * N)`` of N), or always when neither is given. When it happens, its
``events`` fire at their times and its ``triggers`` watch their conditions every physics step.
docs/scenarios.md describes each action and condition with examples.

Every action is a one-key mapping naming it (``{impulse: {object: box, impulse: [0, 2, 0]}}``).
Times are seconds from the episode start and are snapped to the nearest physics step; an
event with ``duration`` is active over ``[start, start + duration)``, an instantaneous one over
its one step.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from simgen.scenario.template_spec import (
    TEMPLATES,
    FallOffTable,
    FogBank,
    LensOcclusion,
    PedestrianCrossing,
    SensorDropout,
    Template,
)
from simgen.scene.objects import Name, SceneObject
from simgen.scene.placement import BoxRegionParams, one_key_union
from simgen.scene.types import (
    ZERO3,
    Color,
    NonNegNum,
    Num,
    Pose,
    PosNum,
    Strict_,
    UnitNum,
    Vec3,
)

# -- actions ----------------------------------------------------------------------------------


class SpawnParams(Strict_):
    object: SceneObject = Field(description="the object; its pose and velocity apply at spawn time")
    relative_to: Name | None = Field(
        default=None,
        description="pose and velocity are in this object's heading frame at spawn time "
        "(origin at its origin, x along its heading, z up)",
    )
    absolute_z: bool = Field(
        default=False, description="with relative_to: the pose's z is a world height"
    )


class Spawn(Strict_):
    """Add an object to the world (it exists from this step on)."""

    spawn: SpawnParams


class ObjectRef(Strict_):
    object: Name


class Remove(Strict_):
    """Take an object out of the world (its state is NaN from this step on)."""

    remove: ObjectRef


class ImpulseParams(Strict_):
    object: Name
    impulse: Vec3 = Field(description="N s, world axes")
    offset: Vec3 = Field(
        default=ZERO3, description="application point relative to the center of mass, world axes"
    )


class Impulse(Strict_):
    """Change the object's momentum by ``impulse`` during this step (force impulse / dt)."""

    impulse: ImpulseParams


class ForceParams(Strict_):
    object: Name
    force: Vec3 = Field(description="N, world axes, at the center of mass")


class Force(Strict_):
    """Push with a constant force at every step of the event's duration."""

    force: ForceParams


class SetVelocityParams(Strict_):
    object: Name
    linear: Vec3 | None = Field(default=None, description="m/s of the object frame's origin")
    angular_deg: Vec3 | None = Field(default=None, description="degrees/s about world X, Y, Z")


class SetVelocity(Strict_):
    """Set the object's velocity (unset parts keep their value)."""

    set_velocity: SetVelocityParams


class TeleportParams(Strict_):
    object: Name
    pose: Pose
    keep_velocity: bool = False


class Teleport(Strict_):
    """Move the object to ``pose`` (world) instantly."""

    teleport: TeleportParams


class LightParams(Strict_):
    light: int | str = Field(description="index in 'lights' or the light's name")
    intensity: NonNegNum | None = None
    color: Color | None = None


class LightChange(Strict_):
    """Change a light; with a duration it returns to its previous value afterwards."""

    light: LightParams


class Weather(Strict_):
    """A weather change (e.g. ``{weather: {fog_density: 0.08}}``), handed to the weather hook of
    the registry (``Registry.weather``); without a hook it is only labeled."""

    weather: dict[str, Num] = Field(description="parameters for the weather hook")


CameraFaultKind = Literal["occlusion", "blackout", "noise", "dead_pixels"]

#: The parameters each camera fault accepts (besides camera and kind).
CAMERA_FAULT_PARAMS: dict[str, tuple[str, ...]] = {
    "occlusion": ("center", "radius", "opacity", "color", "softness"),
    "blackout": (),
    "noise": ("std",),
    "dead_pixels": ("fraction", "value"),
}


class CameraFaultParams(Strict_):
    camera: Name
    kind: CameraFaultKind
    center: tuple[UnitNum, UnitNum] | None = Field(
        default=None, description="occlusion: [u, v] as fractions of width and height (random)"
    )
    radius: PosNum = Field(default=0.25, description="occlusion: blob radius / image height")
    opacity: UnitNum = Field(default=0.95, description="occlusion: 1 hides the scene fully")
    color: Color = Field(default=(0.06, 0.05, 0.04), description="occlusion: blob color")
    softness: UnitNum = Field(default=0.3, description="occlusion: feathered fraction of radius")
    std: NonNegNum = Field(default=40.0, description="noise: std of Gaussian noise, 8-bit units")
    fraction: UnitNum = Field(default=0.01, description="dead_pixels: fraction of pixels")
    value: int = Field(default=0, ge=0, le=255, description="dead_pixels: their 8-bit value")

    @model_validator(mode="after")
    def _relevant(self) -> CameraFaultParams:
        allowed = set(CAMERA_FAULT_PARAMS[self.kind]) | {"camera", "kind"}
        fields = type(self).model_fields
        extra = sorted(
            n for n in self.model_fields_set - allowed if getattr(self, n) != fields[n].default
        )
        if extra:
            raise ValueError(
                f"camera fault {self.kind!r} takes no {extra}; it takes "
                f"{sorted(CAMERA_FAULT_PARAMS[self.kind]) or 'no parameters'}"
            )
        return self


class CameraFault(Strict_):
    """Corrupt a camera's RGB image while active (labels stay ground truth)."""

    camera_fault: CameraFaultParams


class LidarFaultParams(Strict_):
    lidar: Name
    kind: Literal["beam_loss", "sector_loss", "dropout"]
    beams: list[int] | None = Field(default=None, description="beam_loss: indices of lost beams")
    fraction: UnitNum | None = Field(default=None, description="beam_loss: random fraction lost")
    sector_deg: tuple[Num, Num] | None = Field(
        default=None, description="sector_loss: [start, end] azimuth lost, degrees"
    )


class LidarFault(Strict_):
    """A LiDAR fault, exposed to the LiDAR capture through the fault state (a hook: simgen's
    LiDAR applies it when present)."""

    lidar_fault: LidarFaultParams


class PushOffParams(Strict_):
    object: Name
    surface: Name = Field(description="the object it stands on")
    direction_deg: Num | None = Field(
        default=None, description="heading about world z; default: away from the surface center"
    )
    overshoot: PosNum = Field(default=0.15, description="m past the surface edge it would slide")


class PushOff(Strict_):
    """Give the object the horizontal speed that slides it past the edge of its support:
    ``v = sqrt(2 mu g (d + overshoot))`` with d the distance to the edge of the surface's
    bounding box along the heading and mu the combined friction (computed at the step)."""

    push_off: PushOffParams


class MarkParams(Strict_):
    note: str | None = None


class Mark(Strict_):
    """No effect: only labels the moment (e.g. when a trigger saw an object fall)."""

    mark: MarkParams = MarkParams()


class CallParams(Strict_):
    name: str = Field(min_length=1, description="an action in the registry")
    args: dict[str, Any] = Field(default_factory=dict)


class Call(Strict_):
    """Call ``fn(ctx, **args)`` registered in Python (``Registry.add_action``)."""

    call: CallParams


ACTIONS: dict[str, type[Strict_]] = {
    "spawn": Spawn,
    "remove": Remove,
    "impulse": Impulse,
    "force": Force,
    "set_velocity": SetVelocity,
    "teleport": Teleport,
    "push_off": PushOff,
    "light": LightChange,
    "weather": Weather,
    "camera_fault": CameraFault,
    "lidar_fault": LidarFault,
    "mark": Mark,
    "call": Call,
}
Action = one_key_union(ACTIONS, "an action", "action")


def action_kind(action: Any) -> str:
    return next(k for k, cls in ACTIONS.items() if isinstance(action, cls))


def action_params(action: Any) -> Any:
    return getattr(action, action_kind(action))


# -- conditions -------------------------------------------------------------------------------


class DistanceBelowParams(Strict_):
    a: Name
    b: Name
    distance: PosNum = Field(description="m between the object origins")


class DistanceBelow(Strict_):
    distance_below: DistanceBelowParams


class InRegionParams(Strict_):
    object: Name
    box: BoxRegionParams


class InRegion(Strict_):
    """The object's origin is inside an axis-aligned box."""

    in_region: InRegionParams


class ContactParams(Strict_):
    a: Name
    b: Name | None = Field(default=None, description="default: any other object")


class Contact(Strict_):
    contact: ContactParams


class BelowZParams(Strict_):
    object: Name
    z: Num = Field(description="m, world")


class BelowZ(Strict_):
    """The object's origin is below height ``z`` (it fell)."""

    below_z: BelowZParams


class BelowTopOfParams(Strict_):
    object: Name
    surface: Name
    margin: NonNegNum = Field(default=0.1, description="m below the top of the surface")


class BelowTopOf(Strict_):
    """The object's origin is more than ``margin`` below the top of ``surface``'s bounding box
    (it fell off the table or shelf)."""

    below_top_of: BelowTopOfParams


CONDITIONS: dict[str, type[Strict_]] = {
    "distance_below": DistanceBelow,
    "in_region": InRegion,
    "contact": Contact,
    "below_z": BelowZ,
    "below_top_of": BelowTopOf,
}
Condition = one_key_union(CONDITIONS, "a condition", "condition")


def condition_kind(cond: Any) -> str:
    return next(k for k, cls in CONDITIONS.items() if isinstance(cond, cls))


# -- events, triggers ---------------------------------------------------------------------------


class Event(Strict_):
    """An action at a time (itself possibly random)."""

    name: str | None = Field(default=None, description="label (default: the action's kind)")
    at: NonNegNum = Field(description="s from the episode start")
    duration: NonNegNum = Field(default=0.0, description="s the event stays active")
    action: Action  # type: ignore[valid-type]


class Trigger(Strict_):
    """An action when a condition starts to hold (checked at every physics step)."""

    name: str | None = None
    when: Condition  # type: ignore[valid-type]
    action: Action  # type: ignore[valid-type]
    once: bool = Field(default=True, description="fire at most once per episode")
    delay: NonNegNum = Field(default=0.0, description="s between the condition and the action")
    duration: NonNegNum = 0.0


# -- scenario -----------------------------------------------------------------------------------


class Scenario(Strict_):
    """Events and triggers that happen together in some episodes."""

    name: Name
    probability: float | None = Field(
        default=None, ge=0, le=1, description="chance per episode (independent)"
    )
    quota: float | None = Field(
        default=None, ge=0, le=1, description="exact fraction of the dataset's episodes"
    )
    template: Template | None = None  # type: ignore[valid-type]
    events: list[Event] = Field(default_factory=list)
    triggers: list[Trigger] = Field(default_factory=list)

    @model_validator(mode="after")
    def _valid(self) -> Scenario:
        if self.probability is not None and self.quota is not None:
            raise ValueError("give 'probability' or 'quota', not both")
        if self.template is None and not self.events and not self.triggers:
            raise ValueError("a scenario needs a 'template', 'events' or 'triggers'")
        return self


__all__ = [
    "ACTIONS",
    "CONDITIONS",
    "TEMPLATES",
    "Action",
    "Condition",
    "Event",
    "FallOffTable",
    "FogBank",
    "LensOcclusion",
    "PedestrianCrossing",
    "Scenario",
    "SensorDropout",
    "Template",
    "Trigger",
]
