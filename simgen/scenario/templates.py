"""Built-in scenario templates, expanded into plain events and triggers (pure functions).

Each template reads the episode's resolved scene (its duration and sensor kinds) and returns
the events and triggers it stands for, so the resolved scene records exactly what
will happen. docs/scenarios.md shows the expansion of each.
"""

from __future__ import annotations

from typing import Any

from simgen.scenario import spec
from simgen.scenario.template_spec import PedestrianCrossingParams
from simgen.scene.objects import CylinderObject, Velocity
from simgen.scene.types import Pose, value

#: Pedestrian proxies stand on the ground plane z = 0.
GROUND_Z = 0.0


def pedestrian_object(p: PedestrianCrossingParams) -> CylinderObject:
    """The pedestrian proxy: an upright frictionless cylinder in the vehicle's heading frame,
    ``ahead`` m in front, ``lateral`` m to the left, walking across at ``speed``."""
    h, r = value(p.height), value(p.radius)
    lateral = value(p.lateral)
    side = -1.0 if lateral >= 0 else 1.0
    return CylinderObject.model_validate(
        {
            "name": p.name,
            "class": p.class_name,
            "radius": r,
            "length": h,
            "mass": 70.0,
            "friction": 0.0,
            "pose": Pose(position=(value(p.ahead), lateral, GROUND_Z + h / 2 + 0.002)),
            "velocity": Velocity(linear=(0.0, side * value(p.speed), 0.0)),
        }
    )


def expand(template: Any, scene: dict[str, Any]) -> tuple[list[spec.Event], list[spec.Trigger]]:
    """Events and triggers of a resolved template; ``scene`` is the resolved scene as data."""
    if isinstance(template, spec.FallOffTable):
        p = template.fall_off_table
        push = spec.PushOff(
            push_off=spec.PushOffParams(
                object=p.object, surface=p.surface, direction_deg=p.direction_deg
            )
        )
        fell = spec.BelowTopOf(
            below_top_of=spec.BelowTopOfParams(object=p.object, surface=p.surface, margin=p.drop)
        )
        return (
            [spec.Event(name="push", at=p.at, action=push)],
            [spec.Trigger(name="fell", when=fell, action=spec.Mark())],
        )
    if isinstance(template, spec.PedestrianCrossing):
        q = template.pedestrian_crossing
        ped = pedestrian_object(q)
        spawn = spec.Spawn(
            spawn=spec.SpawnParams(object=ped, relative_to=q.vehicle, absolute_z=True)
        )
        near = spec.DistanceBelow(
            distance_below=spec.DistanceBelowParams(a=q.vehicle, b=q.name, distance=q.near_miss)
        )
        return (
            [spec.Event(name="pedestrian_appears", at=q.at, action=spawn)],
            [spec.Trigger(name="near_miss", when=near, action=spec.Mark())],
        )
    if isinstance(template, spec.FogBank):
        f = template.fog_bank
        duration = value(f.duration) or max(
            0.0, float(scene["simulation"]["duration"]) - value(f.at)
        )
        fog = spec.Weather(weather={"fog_density": f.density})
        return [spec.Event(name="fog_bank", at=f.at, duration=duration, action=fog)], []
    if isinstance(template, spec.LensOcclusion):
        o = template.lens_occlusion
        params: dict[str, Any] = {"camera": o.camera, "kind": "occlusion", "radius": o.radius}
        params["opacity"] = o.opacity
        if o.center is not None:
            params["center"] = o.center
        fault = spec.CameraFault(camera_fault=spec.CameraFaultParams(**params))
        return [spec.Event(name="lens_occlusion", at=o.at, duration=o.duration, action=fault)], []
    if isinstance(template, spec.SensorDropout):
        d = template.sensor_dropout
        kind = next(s["kind"] for s in scene["sensors"] if s["name"] == d.sensor)
        action: Any
        if kind == "camera":
            action = spec.CameraFault(
                camera_fault=spec.CameraFaultParams(camera=d.sensor, kind="blackout")
            )
        else:
            action = spec.LidarFault(
                lidar_fault=spec.LidarFaultParams(lidar=d.sensor, kind="dropout")
            )
        return [spec.Event(name="sensor_dropout", at=d.at, duration=d.duration, action=action)], []
    raise NotImplementedError(f"no expansion for template {type(template).__name__}")
