"""Run scenarios inside an episode: fire events at their exact steps, watch triggers.

The episode loop (:mod:`simgen.run.episode`) calls :meth:`ScenarioRuntime.at_step` once for
every physics step s in ``[0, num_steps)``, before the state at s is recorded and before the
world steps from s to s + 1. At step s, in this order:

1. durative effects that end at s are undone (a light returns to its value);
2. timeline events whose time snaps to s fire (``step = round(at / dt)``), in scene order;
3. trigger actions delayed to s fire;
4. every trigger's condition is evaluated on the state at s; a trigger fires when its condition
   holds at s and did not hold at s - 1 (at most once with ``once: true``);
5. forces of active ``force`` events are applied for the step s -> s + 1.

So a teleport or velocity change at s shows in the recorded state at s, and an impulse J at s
changes the velocity between the states at s and s + 1 by exactly J / m. An event is active
over the half-open step range ``[start, start + max(1, round(duration / dt)))``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from simgen.errors import SimulationError
from simgen.random.sample import EpisodeParams, per_frame_rng
from simgen.random.seeding import episode_rng
from simgen.run.records import EpisodeEvents
from simgen.scenario import actions as act
from simgen.scenario import spec
from simgen.scene.types import value, vec
from simgen.sim.world import PhysicsWorld, spawnable_objects


@dataclass(frozen=True)
class FiredEvent:
    """An event that happened: what, when, and for how long."""

    index: int  # order of firing in the episode
    scenario: str
    name: str
    action: str  # kind of action (spawn, impulse, ...)
    source: str  # "timeline", "trigger" or "python"
    start_step: int
    end_step: int  # exclusive
    time: float  # start time, s
    params: Any = None  # the action's parameters (a model)


class ActionContext:
    """What a custom action (``Registry.add_action``) or a step callback gets."""

    def __init__(self, runtime: ScenarioRuntime, step: int, event: FiredEvent | None) -> None:
        self.runtime = runtime
        self.world: PhysicsWorld = runtime.world
        self.params: EpisodeParams = runtime.params
        self.step = step
        self.time = step * runtime.world.timestep
        self.event = event

    @property
    def rng(self) -> np.random.Generator:
        """This event's own random stream (or this step's, in a step callback)."""
        key = ("event", self.event.index) if self.event is not None else ("step", self.step)
        return self.params.rng("action", *key)

    def position(self, name: str) -> np.ndarray:
        """World position of an object's frame now (NaN when out of the world)."""
        return np.asarray(
            self.world.object_states().position_w[self.world.body(name).instance_id - 1]
        )

    def set_velocity(self, name: str, linear: Any = None, angular_deg: Any = None) -> None:
        ang = None if angular_deg is None else np.radians(np.asarray(angular_deg, float))
        act.set_frame_velocity(
            self.world, name, None if linear is None else np.asarray(linear, float), ang
        )

    def impulse(self, name: str, impulse: Any, offset: Any = (0.0, 0.0, 0.0)) -> None:
        act.apply_impulse(self.world, name, np.asarray(impulse, float), np.asarray(offset, float))

    def teleport(self, name: str, position: Any, quat_wxyz: Any = (1.0, 0.0, 0.0, 0.0)) -> None:
        act.teleport(
            self.world, name, np.asarray(position, float), np.asarray(quat_wxyz, float), False
        )

    def fire(self, name: str, action: Any, duration: float = 0.0) -> FiredEvent:
        """Fire a scene action (a model from :mod:`simgen.scenario.spec`) now, labeled
        ``python/<name>``."""
        return self.runtime.fire("python", name, action, self.step, duration, "python")


@dataclass
class _Trigger:
    scenario: str
    spec: spec.Trigger
    prev: bool = False
    done: bool = False


@dataclass
class _CameraFault:
    event: FiredEvent
    p: spec.CameraFaultParams
    fixed: dict[Any, Any]  # what stays fixed while the fault lasts (blob, dead pixels)


#: Keys of a weather action and the weather-state field each sets.
WEATHER_ACTION_KEYS = {
    "fog_density": "fog_extinction_per_m",  # 1/m
    "fog_extinction_per_m": "fog_extinction_per_m",
    "visibility_m": "visibility_m",
    "rain_mm_h": "rain_mm_h",
    "snow_mm_h": "snow_mm_h",
    "wet_ground": "wet_ground",
    "cloud_cover": "cloud_cover",
}

_LIGHT_PATH = re.compile(r"^lights\[(\d+)\]\.(intensity|color)$")


class ScenarioRuntime:
    """The scenario engine of one episode (owned by the episode loop)."""

    def __init__(
        self,
        params: EpisodeParams,
        world: PhysicsWorld,
        *,
        registry: Any = None,
        on_event: Any = None,
    ) -> None:
        self.params, self.world, self.registry, self.on_event = params, world, registry, on_event
        self.dt = world.timestep
        self.fired: list[FiredEvent] = []
        self._timeline: dict[int, list[tuple[str, spec.Event]]] = defaultdict(list)
        self._delayed: dict[int, list[tuple[str, spec.Trigger]]] = defaultdict(list)
        self._triggers: list[_Trigger] = []
        self._forces: list[tuple[FiredEvent, spec.ForceParams]] = []
        self._restore: dict[int, list[tuple[int, Any]]] = defaultdict(list)
        self._camera_faults: list[_CameraFault] = []
        self._lidar_faults: list[tuple[FiredEvent, spec.LidarFaultParams]] = []
        for sc in params.scene.scenarios:
            for e in sc.events:
                self._timeline[self.steps(value(e.at))].append((sc.name, e))
            self._triggers.extend(_Trigger(sc.name, t) for t in sc.triggers)
        self._spawnable = {o.name: o for o in spawnable_objects(params.scene)}
        for name in self._spawnable:
            world.deactivate(name)
        # the weather every sensor reads (simgen.effects.state.WeatherState; None without a
        # weather block); weather events change it, durative ones restore it when they end
        self.weather: Any = None
        if params.scene.weather is not None:
            from simgen.effects.state import weather_state

            self.weather = weather_state(params.scene)
        self._weather_restore: dict[int, list[Any]] = defaultdict(list)
        # the lights and background the renderer draws (a lighting block adds 'sky' and 'sun'
        # before the scene's own lights; scene light i is render light i + offset)
        from simgen.effects.state import render_setup

        bg, render_lights, _ = render_setup(params.scene, [])
        self.lights = list(render_lights)
        self._light_offset = len(self.lights) - len(params.scene.lights)
        self.background = tuple(float(c) for c in bg)
        self.render_version = 0
        self._tops: dict[str, float] = {}
        self.frame_names: list[str] = []
        self.frame_values: list[list[float]] = []

    def steps(self, seconds: float) -> int:
        return round(seconds / self.dt)

    @property
    def busy(self) -> bool:
        """Whether any step needs this runtime (else the loop may skip :meth:`at_step`)."""
        return bool(self._timeline or self._triggers)

    # -- per step -------------------------------------------------------------------------------

    def at_step(self, s: int) -> None:
        for light_index, old in self._restore.pop(s, []):
            self.lights[light_index] = old
            self.render_version += 1
        for old_weather in self._weather_restore.pop(s, []):
            self.weather = old_weather
        for scenario, e in self._timeline.pop(s, []):
            self.fire(scenario, e.name, e.action, s, value(e.duration), "timeline")
        for scenario, t in self._delayed.pop(s, []):
            self.fire(scenario, t.name, t.action, s, value(t.duration), "trigger")
        for tr in self._triggers:
            if tr.done:
                continue
            holds = self._holds(tr.spec.when)
            if holds and not tr.prev:
                delay = self.steps(value(tr.spec.delay))
                if delay == 0:
                    self.fire(
                        tr.scenario,
                        tr.spec.name,
                        tr.spec.action,
                        s,
                        value(tr.spec.duration),
                        "trigger",
                    )
                else:
                    self._delayed[s + delay].append((tr.scenario, tr.spec))
                tr.done = tr.spec.once
            tr.prev = holds
        for ev, f in self._forces:  # (the first step's push is applied when the event fires)
            if ev.start_step < s < ev.end_step and self._active(f.object):
                act.apply_force(self.world, f.object, vec(f.force))

    def fire(
        self, scenario: str, name: str | None, action: Any, s: int, duration: float, source: str
    ) -> FiredEvent:
        kind = spec.action_kind(action)
        p = spec.action_params(action)
        ev = FiredEvent(
            index=len(self.fired),
            scenario=scenario,
            name=name or kind,
            action=kind,
            source=source,
            start_step=s,
            end_step=s + max(1, self.steps(duration)),
            time=s * self.dt,
            params=p,
        )
        self.fired.append(ev)
        self._apply(ev, kind, p, duration > 0)
        if self.on_event is not None:
            self.on_event(ev, ActionContext(self, s, ev))
        return ev

    def _active(self, name: str) -> bool:
        return bool(self.world.active[self.world.body(name).instance_id - 1])

    def _apply(self, ev: FiredEvent, kind: str, p: Any, durative: bool) -> None:
        w = self.world
        if kind == "spawn":
            act.spawn(w, self._spawnable.get(p.object.name, p.object), p.relative_to, p.absolute_z)
        elif kind == "remove":
            w.deactivate(p.object)
        elif kind in ("impulse", "set_velocity", "teleport", "push_off") and not self._active(
            p.object
        ):
            return  # acting on an object that is not in the world does nothing
        elif kind == "impulse":
            act.apply_impulse(w, p.object, vec(p.impulse), vec(p.offset))
        elif kind == "force":
            self._forces.append((ev, p))
            if self._active(p.object):
                act.apply_force(w, p.object, vec(p.force))
        elif kind == "set_velocity":
            lin = None if p.linear is None else vec(p.linear)
            ang = None if p.angular_deg is None else np.radians(vec(p.angular_deg))
            act.set_frame_velocity(w, p.object, lin, ang)
        elif kind == "teleport":
            act.teleport(w, p.object, vec(p.pose.position), act._quat(p.pose), p.keep_velocity)
        elif kind == "push_off":
            d = None if p.direction_deg is None else value(p.direction_deg)
            v = act.push_off_speed(w, p.object, p.surface, d, value(p.overshoot))
            act.set_frame_velocity(w, p.object, v, None)
        elif kind == "light":
            self._light(ev, p, durative)
        elif kind == "weather":
            hook = getattr(self.registry, "weather", None)
            values = {k: value(v) for k, v in p.items()}
            if hook is not None:
                hook(ActionContext(self, ev.start_step, ev), **values)
            else:
                self._weather(ev, values, durative)
        elif kind == "camera_fault":
            self._camera_faults.append(_CameraFault(ev, p, {}))
        elif kind == "lidar_fault":
            self._lidar_faults.append((ev, p))
        elif kind == "call":
            if self.registry is None:
                raise SimulationError(
                    f"action call {p.name!r} needs a registry (Simulator(registry=...))"
                )
            self.registry.get_action(p.name)(ActionContext(self, ev.start_step, ev), **p.args)

    def _weather(self, ev: FiredEvent, values: dict[str, float], durative: bool) -> None:
        """Change the weather state (docs/scenarios.md: the keys of a weather action)."""
        if self.weather is None:
            raise SimulationError(
                f"weather event {ev.name!r} needs a weather block in the scene "
                "(e.g. `weather: {preset: clear}`)"
            )
        changes: dict[str, float] = {}
        for key, v in values.items():
            if key not in WEATHER_ACTION_KEYS:
                raise SimulationError(
                    f"weather event {ev.name!r}: unknown key {key!r}; "
                    f"allowed: {', '.join(sorted(WEATHER_ACTION_KEYS))}"
                )
            changes[WEATHER_ACTION_KEYS[key]] = v
        old = self.weather
        self.weather = old.with_(**changes)
        if durative:
            self._weather_restore[ev.end_step].append(old)

    def _light(self, ev: FiredEvent, p: spec.LightParams, durative: bool) -> None:
        if isinstance(p.light, int):
            i = p.light + self._light_offset
        else:
            i = next(k for k, li in enumerate(self.lights) if li.name == p.light)
        old = self.lights[i]
        self.lights[i] = act.light_values(old, p.intensity, p.color)
        self.render_version += 1
        if durative:  # back to the previous value when the event ends
            self._restore[ev.end_step].append((i, old))

    # -- conditions -----------------------------------------------------------------------------

    def _pos(self, name: str) -> np.ndarray | None:
        if not self._active(name):
            return None
        t, _ = act.frame_state(self.world, name)
        return t[:3, 3]

    def _top(self, surface: str) -> float:
        """Top of a surface's bounding box (cached: supports are static)."""
        from simgen.sim.placement import body_aabb

        if surface not in self._tops:
            self._tops[surface] = float(
                body_aabb(self.world, self.world.body(surface).body_id)[1][2]
            )
        return self._tops[surface]

    def _holds(self, cond: Any) -> bool:
        kind = spec.condition_kind(cond)
        p = getattr(cond, kind)
        if kind == "distance_below":
            a, b = self._pos(p.a), self._pos(p.b)
            return (
                a is not None and b is not None and float(np.linalg.norm(a - b)) < value(p.distance)
            )
        if kind == "in_region":
            x = self._pos(p.object)
            if x is None:
                return False
            c, half = vec(p.box.center), vec(p.box.size) / 2
            return bool(np.all(np.abs(x - c) <= half))
        if kind == "below_z":
            x = self._pos(p.object)
            return x is not None and float(x[2]) < value(p.z)
        if kind == "below_top_of":
            x = self._pos(p.object)
            return x is not None and float(x[2]) < self._top(p.surface) - value(p.margin)
        # contact
        if not self._active(p.a) or (p.b is not None and not self._active(p.b)):
            return False
        c = self.world.client
        body_a = self.world.body(p.a).body_id
        pts = (
            c.getContactPoints(bodyA=body_a)
            if p.b is None
            else c.getContactPoints(bodyA=body_a, bodyB=self.world.body(p.b).body_id)
        )
        return len(pts) > 0

    # -- rendering state and sensor faults ----------------------------------------------------

    def at_tick(self, tick: int) -> None:
        """Draw the per-frame values of this tick and apply them to the lights/background."""
        if not self.params.per_frame:
            return
        row: list[float] = []
        names: list[str] = []
        for name, dist in self.params.per_frame.items():
            v = dist.sample(
                per_frame_rng(self.params.base_seed, self.params.episode_index, name, tick)
            )
            self._set_render_value(name, v)
            flat = [float(x) for x in np.ravel(np.asarray(v, dtype=np.float64))]
            names.extend([name] if len(flat) == 1 else [f"{name}[{k}]" for k in range(len(flat))])
            row.extend(flat)
        self.frame_names = names
        self.frame_values.append(row)
        self.render_version += 1

    def _set_render_value(self, name: str, v: Any) -> None:
        if name == "background":
            self.background = tuple(float(c) for c in v)
            return
        m = _LIGHT_PATH.match(name)
        if m is None:  # pragma: no cover - the scene validator allows only these
            raise SimulationError(f"per_frame value at {name} cannot change between frames")
        i, field = int(m.group(1)) + self._light_offset, m.group(2)
        self.lights[i] = act.light_values(
            self.lights[i], v if field == "intensity" else None, v if field == "color" else None
        )

    def apply_camera_faults(self, camera: str, step: int, tick: int, rgb: np.ndarray) -> np.ndarray:
        """The RGB image with every fault active at ``step`` on ``camera`` applied, in order."""
        from simgen.effects import camera_faults as cf

        for f in self._camera_faults:
            ev, p = f.event, f.p
            if p.camera != camera or not ev.start_step <= step < ev.end_step:
                continue
            h, w = rgb.shape[:2]
            rng = episode_rng(self.params.base_seed, self.params.episode_index, "fault", ev.index)
            if p.kind == "blackout":
                rgb = cf.blackout(rgb)
            elif p.kind == "occlusion":
                if "alpha" not in f.fixed or f.fixed["alpha"].shape != (h, w):
                    u, v = (
                        (value(p.center[0]), value(p.center[1]))
                        if p.center is not None
                        else (float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.2, 0.8)))
                    )
                    f.fixed["alpha"] = cf.blob_alpha(
                        h, w, (u, v), value(p.radius), value(p.softness)
                    )
                r, g, b = (value(c) for c in p.color[:3])
                rgb = cf.occlude(rgb, f.fixed["alpha"], value(p.opacity), (r, g, b))
            elif p.kind == "noise":
                frame_rng = episode_rng(
                    self.params.base_seed,
                    self.params.episode_index,
                    "fault",
                    ev.index,
                    camera,
                    tick,
                )
                rgb = cf.noise_burst(rgb, value(p.std), frame_rng)
            elif p.kind == "dead_pixels":
                key = ("dead", h, w)
                if key not in f.fixed:
                    f.fixed[key] = cf.dead_pixel_indices(h, w, value(p.fraction), rng)
                rgb = cf.dead_pixels(rgb, f.fixed[key], p.value)
        return rgb

    def lidar_faults(self, lidar: str, step: int) -> list[spec.LidarFaultParams]:
        """LiDAR faults active at ``step`` (the hook a LiDAR capture applies)."""
        return [
            p
            for ev, p in self._lidar_faults
            if p.lidar == lidar and ev.start_step <= step < ev.end_step
        ]

    # -- labels ---------------------------------------------------------------------------------

    def labels(self, tick_steps: np.ndarray) -> EpisodeEvents:
        """The episode's event labels for the dataset."""
        ev = self.fired
        start = np.array([e.start_step for e in ev], dtype=np.int64)
        end = np.array([e.end_step for e in ev], dtype=np.int64)
        ticks = np.asarray(tick_steps, dtype=np.int64)[:, None]
        active = (ticks >= start[None, :]) & (ticks < end[None, :])
        n_ticks = len(tick_steps)
        values = (
            np.array(self.frame_values, dtype=np.float64)
            if self.frame_values
            else np.zeros((n_ticks, 0), dtype=np.float64)
        )
        return EpisodeEvents(
            name=[e.name for e in ev],
            scenario=[e.scenario for e in ev],
            action=[e.action for e in ev],
            source=[e.source for e in ev],
            start_step=start,
            end_step=end,
            start_time=np.array([e.time for e in ev], dtype=np.float64),
            active=active.reshape(n_ticks, len(ev)),
            scenario_names=list(self.params.scenarios),
            scenario_selected=np.array(list(self.params.scenarios.values()), dtype=bool),
            per_frame_names=list(self.frame_names),
            per_frame_values=values,
        )


__all__ = ["ActionContext", "FiredEvent", "ScenarioRuntime"]
