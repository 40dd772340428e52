"""The scene model: the whole description of a family of episodes (schema version 1).

Loaded from YAML by :func:`simgen.scene.loader.load_scene` or built in Python with the same
models. Values may be distributions; :func:`simgen.random.sample.sample_episode` resolves them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from simgen.errors import FieldValueError
from simgen.scenario.spec import Scenario
from simgen.scene.lights import AmbientLight, DirectionalLight, Light
from simgen.scene.objects import ClassName, SceneObject, UrdfObject
from simgen.scene.placement import Constraint, Randomization, Scatter
from simgen.scene.sensors import Sensor
from simgen.scene.types import Color, PosNum, Strict_, Vec3, value
from simgen.scene.weather import Lighting, Weather

SCHEMA_VERSION = 1
BACKGROUND_CLASS = "background"
#: Class of LiDAR returns from fog, rain and snow; last in the class table of scenes with weather.
WEATHER_CLASS = "weather"
DEFAULT_BACKGROUND = (0.55, 0.65, 0.8)
MAX_OBJECTS = 1000  # the default of simgen.limits.Limits.max_objects
MAX_DURATION_S = 3600.0  # the default of simgen.limits.Limits.max_duration_s


class Simulation(Strict_):
    """Physics settings. Time runs over the half-open interval [0, duration)."""

    timestep: PosNum = Field(default=1.0 / 240.0, description="physics step in seconds")
    duration: PosNum = Field(default=1.0, description="episode length in seconds")
    gravity: Vec3 = (0.0, 0.0, -9.81)
    solver_iterations: int = Field(default=50, ge=1, le=1000)

    @model_validator(mode="after")
    def _limits(self) -> Simulation:
        try:
            dt, dur = value(self.timestep), value(self.duration)
        except TypeError:
            return self
        if dt > 0.1:
            raise ValueError(f"timestep {dt} s is too coarse for stable contacts (max 0.1 s)")
        from simgen.limits import current, exceeded

        if dur > current().max_duration_s:
            raise FieldValueError(("duration",), exceeded("max_duration_s", "duration, s", dur))
        if dur < dt:
            raise ValueError("duration is shorter than one timestep")
        return self


def _default_lights() -> list[Light]:
    return [AmbientLight(kind="ambient", intensity=0.3), DirectionalLight(kind="directional")]


class Scene(Strict_):
    """A scene file's content."""

    schema_version: Literal[1] = Field(description="always 1 for this version of simgen")
    name: str | None = None
    description: str | None = None
    license: str | None = None
    intended_use: str | None = Field(
        default=None, description="what the data is for (shown in the dataset card)"
    )
    limitations: str | None = Field(
        default=None, description="known limitations of the data (shown in the dataset card)"
    )
    classes: list[ClassName] | None = Field(
        default=None,
        description="fixed class table order (ids 1..N); default: order of first appearance",
    )
    stuff: list[ClassName] | None = Field(
        default=None,
        description="classes that are amorphous regions ('stuff': floor, walls, road) rather "
        "than countable things; default: the classes used only by plane objects",
    )
    background: Color | None = Field(
        default=None,
        description="sky / clear color; default: the lighting block's sky, else [0.55, 0.65, 0.8]",
    )
    simulation: Simulation = Field(default_factory=Simulation)
    objects: list[SceneObject] = Field(
        default_factory=list, description="at most max_objects (docs/reliability.md)"
    )
    lights: list[Light] = Field(
        default_factory=_default_lights,
        description="default: ambient + directional sun, or none when a lighting block is given",
    )
    lighting: Lighting | None = Field(
        default=None, description="sun and sky (docs/weather.md); adds to 'lights'"
    )
    weather: Weather | None = Field(
        default=None, description="fog, rain, snow, wet ground for every sensor (docs/weather.md)"
    )
    sensors: list[Sensor] = Field(default_factory=list)
    # Randomization and scenarios (docs/randomization.md, docs/scenarios.md)
    scatter: list[Scatter] = Field(
        default_factory=list, description="objects scattered at random in a region"
    )
    require: list[Constraint] = Field(  # type: ignore[valid-type]
        default_factory=list, description="constraints every episode must meet at t = 0"
    )
    randomization: Randomization = Randomization()
    scenarios: list[Scenario] = Field(
        default_factory=list, description="timeline events and triggers, in some episodes"
    )

    # Where the scene came from (set by the loader; not part of the data).
    _source_text: str | None = PrivateAttr(default=None)
    _source_path: str | None = PrivateAttr(default=None)
    _base_dir: str | None = PrivateAttr(default=None)

    @property
    def source_text(self) -> str | None:
        """The scene file's text, when loaded from a file."""
        return self._source_text

    @property
    def source_path(self) -> str | None:
        return self._source_path

    @property
    def base_dir(self) -> str | None:
        """Folder that relative asset paths are resolved against (None: current directory)."""
        return self._base_dir

    def replace(self, **changes: Any) -> Scene:
        """A validated copy with some fields changed (``scene.replace(objects=[...])``), still
        knowing where the scene came from (for relative asset paths)."""
        data = {name: getattr(self, name) for name in type(self).model_fields}
        new = type(self).model_validate({**data, **changes})
        new._source_text, new._source_path, new._base_dir = (
            self._source_text,
            self._source_path,
            self._base_dir,
        )
        return new

    @model_validator(mode="before")
    @classmethod
    def _lighting_replaces_default_lights(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("lighting") is not None and "lights" not in data:
            return {**data, "lights": []}
        return data

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> Scene:
        _unique([o.name for o in self.objects], "objects", "object")
        _unique([s.name for s in self.sensors], "sensors", "sensor")
        names = {o.name: o for o in self.objects}
        for i, s in enumerate(self.sensors):
            if s.attach_to is not None:
                _check_attachment(names, s.attach_to.object, s.attach_to.link, ("sensors", i))
        for i, light in enumerate(self.lights):
            att = getattr(light, "attach_to", None)
            if att is not None:
                _check_attachment(names, att.object, att.link, ("lights", i))
        from simgen.scenario.checks import check_references, extra_classes

        # a resolved episode (simgen.random.sample) has its scatter blocks consumed
        check_references(self, resolved=bool(info.context and info.context.get("resolved")))
        if self.classes is not None:
            _unique(self.classes, "classes", "class")
            used = {o.class_name for o in self.objects} | set(extra_classes(self))
            missing = sorted(used - set(self.classes))
            if missing:
                raise FieldValueError(
                    ("classes",), f"{missing} are used by objects but not listed in 'classes'"
                )
            if BACKGROUND_CLASS in self.classes:
                raise FieldValueError(("classes",), "'background' is implicit (id 0); remove it")
            if WEATHER_CLASS in self.classes:
                raise FieldValueError(
                    ("classes",), "'weather' is reserved for LiDAR returns of fog, rain and snow"
                )
        for i, o in enumerate(self.objects):
            if o.class_name == WEATHER_CLASS:
                raise FieldValueError(
                    ("objects", i, "class"),
                    "class 'weather' is reserved for LiDAR returns of fog, rain and snow",
                )
        if self.stuff is not None:
            _unique(self.stuff, "stuff", "class")
            table = self.class_table()
            for i, name in enumerate(self.stuff):
                if name not in table[1:]:
                    raise FieldValueError(
                        ("stuff", i),
                        f"class {name!r} is not in the class table; classes are: "
                        + ", ".join(table[1:]),
                    )
        return self

    @model_validator(mode="after")
    def _limits(self) -> Scene:
        """Resource and plausibility limits (simgen.limits, docs/reliability.md)."""
        from simgen.scene.bounds import check_scene

        check_scene(self)
        return self

    def stuff_classes(self) -> set[str]:
        """Names of the 'stuff' classes (see the ``stuff`` field); the rest are 'things'."""
        weather = {WEATHER_CLASS} if self.weather is not None else set()
        if self.stuff is not None:
            return set(self.stuff) | weather
        kinds: dict[str, set[str]] = {}
        for o in self.objects:
            kinds.setdefault(o.class_name, set()).add(o.kind)
        return {c for c, k in kinds.items() if k == {"plane"}} | weather

    def class_is_stuff(self) -> list[bool]:
        """Per class id (index into :meth:`class_table`): is it a 'stuff' class? (background: no)"""
        stuff = self.stuff_classes()
        return [False] + [c in stuff for c in self.class_table()[1:]]

    def class_table(self) -> list[str]:
        """Class names by id: index 0 is 'background', then the scene's classes (objects in
        order of first appearance, then those of scattered and spawned objects), then 'weather'
        (LiDAR returns of fog, rain and snow) when the scene has a weather block."""
        from simgen.scenario.checks import extra_classes

        weather = [WEATHER_CLASS] if self.weather is not None else []
        if self.classes is not None:
            return [BACKGROUND_CLASS, *self.classes, *weather]
        seen: list[str] = []
        for o in self.objects:
            if o.class_name not in seen:
                seen.append(o.class_name)
        seen.extend(c for c in extra_classes(self) if c not in seen)
        return [BACKGROUND_CLASS, *seen, *weather]


def _unique(names: list[str], where: str, what: str) -> None:
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            path: tuple[str | int, ...] = (where, i) if what == "class" else (where, i, "name")
            raise FieldValueError(path, f"duplicate {what} name {n!r}; names must be unique")
        seen.add(n)


def _check_attachment(
    objects: dict, obj: str, link: str | None, where: tuple[str | int, ...]
) -> None:
    if obj not in objects:
        known = ", ".join(sorted(objects)) or "(no objects)"
        raise FieldValueError(
            (*where, "attach_to", "object"), f"no object named {obj!r}; objects are: {known}"
        )
    if link is not None and not isinstance(objects[obj], UrdfObject):
        raise FieldValueError(
            (*where, "attach_to", "link"), f"object {obj!r} is not a URDF and has no links"
        )
