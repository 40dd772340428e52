"""Cross-field checks of scatter, constraints and scenarios (called by the scene validator).

Errors are :class:`simgen.errors.FieldValueError` with the field path, so the loader maps them
to the file's line and column.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from simgen.errors import FieldValueError
from simgen.random.distributions import Distribution
from simgen.scenario import spec
from simgen.scene.placement import InView, OnRegion, Visible

Path_ = tuple[str | int, ...]

#: Fields whose value may be drawn per frame (the renderer can change them between frames).
PER_FRAME_FIELDS = ("intensity", "color")


def spawned_objects(scenario: spec.Scenario) -> list[Any]:
    """The objects a scenario may add to the world (spawn actions and templates)."""
    out = [a.spawn.object for a in _actions(scenario) if isinstance(a, spec.Spawn)]
    t = scenario.template
    if isinstance(t, spec.PedestrianCrossing):  # (its size may still be random: a stand-in)
        from simgen.scene.objects import CylinderObject

        p = t.pedestrian_crossing
        out.append(
            CylinderObject.model_validate(
                {"name": p.name, "class": p.class_name, "radius": 1.0, "length": 1.0}
            )
        )
    return out


def _actions(scenario: spec.Scenario) -> list[Any]:
    return [e.action for e in scenario.events] + [t.action for t in scenario.triggers]


def extra_classes(scene: Any) -> list[str]:
    """Classes of objects that scatter and scenarios add, in order of first appearance."""
    out: list[str] = []
    for s in scene.scatter:
        out.extend(c for c in s.classes() if c not in out)
    for sc in scene.scenarios:
        out.extend(o.class_name for o in spawned_objects(sc) if o.class_name not in out)
    return out


def check_references(scene: Any, resolved: bool = False) -> None:
    """Every object, camera, light and scatter group named in the new blocks exists.

    In a resolved episode the scatter blocks are consumed (their objects are in ``objects``),
    so scatter group names are not checked again."""
    fixed = {o.name for o in scene.objects}
    spawned = {o.name for sc in scene.scenarios for o in spawned_objects(sc)}
    clash = sorted(fixed & spawned)
    if clash:
        raise FieldValueError(("scenarios",), f"spawned objects {clash} are also in 'objects'")
    groups = {s.name for s in scene.scatter}
    sensors = {s.name: s.kind for s in scene.sensors}
    _check_scatter(scene, fixed, groups)
    for i, c in enumerate(scene.require):
        _check_constraint(c, ("require", i), fixed, groups, sensors, resolved)
    names = fixed | spawned
    seen: set[str] = set()
    for i, sc in enumerate(scene.scenarios):
        if sc.name in seen:
            raise FieldValueError(("scenarios", i, "name"), f"duplicate scenario name {sc.name!r}")
        seen.add(sc.name)
        where: Path_ = ("scenarios", i)
        for j, e in enumerate(sc.events):
            _check_action(e.action, (*where, "events", j, "action"), names, sensors, scene)
        for j, t in enumerate(sc.triggers):
            _check_condition(t.when, (*where, "triggers", j, "when"), names)
            _check_action(t.action, (*where, "triggers", j, "action"), names, sensors, scene)
        if sc.template is not None:
            _check_template(sc.template, (*where, "template"), fixed, sensors)
    check_scopes(scene)


def _need(name: str, known: set[str] | dict[str, Any], path: Path_, what: str) -> None:
    if name not in known:
        listed = ", ".join(sorted(known)) or f"(no {what}s)"
        raise FieldValueError(path, f"no {what} named {name!r}; {what}s are: {listed}")


def _check_scatter(scene: Any, fixed: set[str], groups: set[str]) -> None:
    seen: set[str] = set()
    for i, s in enumerate(scene.scatter):
        if s.name in seen or s.name in fixed:
            raise FieldValueError(("scatter", i, "name"), f"name {s.name!r} is already used")
        seen.add(s.name)
        if isinstance(s.region, OnRegion):
            _need(
                s.region.on_top_of.object,
                fixed,
                ("scatter", i, "region", "on_top_of", "object"),
                "object",
            )


def _check_constraint(
    c: Any,
    path: Path_,
    fixed: set[str],
    groups: set[str],
    sensors: dict[str, str],
    resolved: bool,
) -> None:
    if isinstance(c, Visible):
        _need(c.visible.object, fixed, (*path, "visible", "object"), "object")
        _need(c.visible.camera, _cameras(sensors), (*path, "visible", "camera"), "camera")
    elif isinstance(c, InView):
        _need(c.in_view.camera, _cameras(sensors), (*path, "in_view", "camera"), "camera")
        if c.in_view.group is not None and not resolved:
            _need(c.in_view.group, groups, (*path, "in_view", "group"), "scatter group")
    else:
        _need(c.distance.a, fixed, (*path, "distance", "a"), "object")
        _need(c.distance.b, fixed, (*path, "distance", "b"), "object")


def _cameras(sensors: dict[str, str]) -> dict[str, str]:
    return {n: k for n, k in sensors.items() if k == "camera"}


def _check_action(
    a: Any, path: Path_, names: set[str], sensors: dict[str, str], scene: Any
) -> None:
    kind = spec.action_kind(a)
    p = spec.action_params(a)
    sub = (*path, kind)
    if kind == "spawn":
        if p.relative_to is not None:
            _need(p.relative_to, names, (*sub, "relative_to"), "object")
    elif hasattr(p, "object") and isinstance(p.object, str):
        _need(p.object, names, (*sub, "object"), "object")
    elif kind == "camera_fault":
        _need(p.camera, _cameras(sensors), (*sub, "camera"), "camera")
    elif kind == "lidar_fault":
        lidars = {n: k for n, k in sensors.items() if k == "lidar"}
        _need(p.lidar, lidars, (*sub, "lidar"), "lidar")
    elif kind == "light":
        n = len(scene.lights)
        if isinstance(p.light, int):
            if not 0 <= p.light < n:
                raise FieldValueError((*sub, "light"), f"light index {p.light} not in [0, {n})")
        else:
            _need(p.light, {x.name for x in scene.lights if x.name}, (*sub, "light"), "light")


def _check_condition(c: Any, path: Path_, names: set[str]) -> None:
    kind = spec.condition_kind(c)
    p = getattr(c, kind)
    for field in ("a", "b", "object", "surface"):
        v = getattr(p, field, None)
        if isinstance(v, str):
            _need(v, names, (*path, kind, field), "object")


def _check_template(t: Any, path: Path_, fixed: set[str], sensors: dict[str, str]) -> None:
    if isinstance(t, spec.FallOffTable):
        p = t.fall_off_table
        _need(p.object, fixed, (*path, "fall_off_table", "object"), "object")
        _need(p.surface, fixed, (*path, "fall_off_table", "surface"), "object")
    elif isinstance(t, spec.PedestrianCrossing):
        _need(
            t.pedestrian_crossing.vehicle,
            fixed,
            (*path, "pedestrian_crossing", "vehicle"),
            "object",
        )
    elif isinstance(t, spec.LensOcclusion):
        _need(
            t.lens_occlusion.camera,
            _cameras(sensors),
            (*path, "lens_occlusion", "camera"),
            "camera",
        )
    elif isinstance(t, spec.SensorDropout):
        _need(t.sensor_dropout.sensor, sensors, (*path, "sensor_dropout", "sensor"), "sensor")


# -- scope ------------------------------------------------------------------------------------


def iter_distributions(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Distribution]]:
    """Every distribution inside ``value`` with its field path (aliases as in files)."""
    if isinstance(value, Distribution):
        yield path, value
    elif isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            key = info.alias or name
            yield from iter_distributions(getattr(value, name), (*path, key))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from iter_distributions(v, (*path, i))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from iter_distributions(v, (*path, k))


def per_frame_allowed(path: Path_) -> bool:
    """``lights[i].intensity``, ``lights[i].color`` and ``background`` may vary per frame."""
    if path == ("background",):
        return True
    return len(path) == 3 and path[0] == "lights" and path[2] in PER_FRAME_FIELDS


def check_scopes(scene: Any) -> None:
    from simgen.random.kinds import PerFrame

    for path, dist in iter_distributions(scene):
        if isinstance(dist, PerFrame) and not per_frame_allowed(path):
            raise FieldValueError(
                path,
                "per_frame values are supported on light intensity and color and on the "
                "background; elsewhere a value is drawn once per episode (remove 'per_frame')",
            )
