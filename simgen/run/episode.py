"""Run episodes: sample -> place -> simulate -> sense, yielding records in time order.

:class:`Simulator` is the long-lived engine of a worker: it keeps the GL context and the mesh
cache across episodes; every episode gets a fresh physics client that is closed at its end.
Scenario events fire at their exact physics steps (:mod:`simgen.scenario.runtime`); optional
:class:`Callbacks` see every step, frame and event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simgen.effects.state import WeatherState, weather_state
from simgen.random.sample import EpisodeParams
from simgen.run.capture import CaptureContext, capture, capture_part, capture_plan
from simgen.run.records import EpisodeHeader, ObjectInfo, Record, SensorFrame, StateRecord
from simgen.scenario.runtime import ActionContext, FiredEvent, ScenarioRuntime
from simgen.scene.schema import Scene
from simgen.scene.types import vec
from simgen.sim.assets import AssetResolver
from simgen.sim.visuals import MeshLibrary
from simgen.sim.world import PhysicsWorld

#: ``(time, current weather) -> weather`` called at every tick (Simulator.run's ``weather``).
WeatherHook = Callable[[float, WeatherState], WeatherState]


@dataclass
class Callbacks:
    """Python hooks into a running episode (all optional, called in time order).

    ``on_step(ctx)`` runs at every physics step s, after the scenario actions of s and before
    the state at s is recorded (``ctx`` is an :class:`~simgen.scenario.runtime.ActionContext`:
    it may read and change the world, deterministically); ``on_frame(frame)`` gets every
    :class:`SensorFrame`; ``on_event(event, ctx)`` every event as it fires.
    """

    on_step: Callable[[ActionContext], None] | None = None
    on_frame: Callable[[SensorFrame], None] | None = None
    on_event: Callable[[FiredEvent, ActionContext], None] | None = None


class Simulator:
    """Runs episodes; owns the renderer (GL context) and mesh cache across them.

    ``registry`` (:class:`simgen.registry.Registry`) holds the custom samplers and actions the
    scenes may name."""

    def __init__(
        self,
        *,
        gl: str | None = None,
        asset_roots: tuple[str | Path, ...] = (),
        registry: Any = None,
    ) -> None:
        self.gl = gl
        self.asset_roots = tuple(Path(r) for r in asset_roots)
        self.registry = registry
        self.prepare_seconds = 0.0  # time of the last prepare (sampling, placement, checks)
        self.meshes = MeshLibrary()
        self._renderer: Any = None
        self._raycaster: Any = None
        self.timings: dict[str, float] = {}
        self.label_timings: dict[str, dict[str, float]] = {}  # camera -> label family -> s
        self._hulls: dict[str, np.ndarray] = {}  # convex hulls of visual parts, for 3D boxes

    def renderer(self) -> Any:
        if self._renderer is None:
            from simgen.render.renderer import Renderer

            self._renderer = Renderer(self.gl)
        return self._renderer

    def raycaster(self) -> Any:
        """The LiDAR ray caster (Embree geometry cache), created on first use."""
        if self._raycaster is None:
            from simgen.sensors.raycast import RayCaster

            self._raycaster = RayCaster()
        return self._raycaster

    def render_backend(self) -> dict[str, str]:
        """GL platform and renderer strings, once a camera has rendered (else empty)."""
        return dict(self._renderer.gl_info) if self._renderer is not None else {}

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        if self._raycaster is not None:
            self._raycaster.close()
            self._raycaster = None

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def prepare(
        self, scene: Scene, seed: int, index: int, *, num_episodes: int | None = None
    ) -> EpisodeParams:
        """The final parameters of episode ``index``: sampled, scattered objects placed and
        settled, ``require`` met (:func:`simgen.run.prepare.prepare_episode`)."""
        from simgen.run.prepare import prepare_episode

        t0 = time.perf_counter()
        params = prepare_episode(
            scene,
            seed,
            index,
            num_episodes=num_episodes,
            registry=self.registry,
            asset_roots=self.asset_roots,
            meshes=self.meshes,
        )
        self.prepare_seconds = time.perf_counter() - t0
        return params

    def episode(
        self,
        scene: Scene,
        seed: int,
        index: int,
        *,
        num_episodes: int | None = None,
        callbacks: Callbacks | None = None,
    ) -> Iterator[Record]:
        """Prepare episode ``index`` of ``scene`` with base seed ``seed`` and run it."""
        return self.run(self.prepare(scene, seed, index, num_episodes=num_episodes), callbacks)

    def frames(
        self,
        scene: Scene,
        seed: int,
        index: int,
        *,
        num_episodes: int | None = None,
        callbacks: Callbacks | None = None,
    ) -> Iterator[SensorFrame]:
        """The sensor frames of one episode, in time order (interactive use)."""
        for rec in self.episode(scene, seed, index, num_episodes=num_episodes, callbacks=callbacks):
            if isinstance(rec, SensorFrame):
                yield rec

    def run(
        self,
        params: EpisodeParams,
        callbacks: Callbacks | None = None,
        *,
        weather: WeatherHook | None = None,
    ) -> Iterator[Record]:
        """Run one prepared episode. Yields an :class:`EpisodeHeader`, then per tick a
        :class:`StateRecord` followed by that tick's :class:`SensorFrame` s, then the
        episode's :class:`~simgen.run.records.EpisodeEvents`.

        The weather every sensor reads starts from the scene's ``weather`` block; scenario
        weather events change it; ``weather(time, state)``, when given, returns the weather for
        each tick from the current one (e.g. a fog bank rolling in; docs/weather.md)."""
        if not params.placed:
            raise ValueError(
                "these parameters have scattered objects not yet placed: get them from "
                "Simulator.prepare (or simgen.run.prepare.prepare_episode), not sample_episode"
            )
        cb = callbacks or Callbacks()
        scene = params.scene
        assets = AssetResolver.for_scene(scene.base_dir, self.asset_roots)
        t0 = time.perf_counter()
        with PhysicsWorld(params, assets=assets, meshes=self.meshes) as world:
            runtime = ScenarioRuntime(params, world, registry=self.registry, on_event=cb.on_event)
            self.timings = {"build": time.perf_counter() - t0, "physics": 0.0, "sensors": 0.0}
            classes = scene.class_table()
            lut = np.zeros(len(world.bodies) + 1, dtype=np.uint16)
            for b in world.bodies:
                lut[b.instance_id] = b.class_id
            plans = {
                s.name: capture_plan(s, world.timestep, world.num_steps) for s in scene.sensors
            }
            tick_steps = np.unique(
                np.concatenate([np.zeros(1, np.int64), *(p.frame_steps for p in plans.values())])
            )
            renderer_loaded = False

            def factory():  # type: ignore[no-untyped-def]
                nonlocal renderer_loaded
                r = self.renderer()
                r.load(scene, world.visual_parts)
                renderer_loaded = True
                return r

            ctx = CaptureContext(
                world=world,
                renderer_factory=factory,
                semantic_lut=lut,
                render_state=lambda: (runtime.render_version, runtime.lights, runtime.background),
                scenario=runtime,
                params=params,
                raycaster_factory=self.raycaster,
                hulls=self._hulls,
                weather=weather_state(scene),
            )
            yield EpisodeHeader(
                objects=[
                    ObjectInfo(
                        b.instance_id,
                        b.name,
                        b.class_id,
                        classes[b.class_id],
                        b.spec.kind,  # type: ignore[attr-defined]
                        {name: tuple(vec(p)) for name, p in b.spec.keypoints.items()},
                    )
                    for b in world.bodies
                ],
                class_table=classes,
                num_steps=world.num_steps,
                timestep=world.timestep,
                ticks_steps=tick_steps,
                sensor_kinds={s.name: s.kind for s in scene.sensors},
            )
            yield from self._loop(world, runtime, ctx, scene, plans, tick_steps, cb, weather)
            self.label_timings = {name: dict(lab.timings) for name, lab in ctx.labelers.items()}
            yield runtime.labels(tick_steps)

    def _loop(
        self,
        world: PhysicsWorld,
        runtime: ScenarioRuntime,
        ctx: CaptureContext,
        scene: Scene,
        plans: dict[str, Any],
        tick_steps: np.ndarray,
        cb: Callbacks,
        weather: WeatherHook | None = None,
    ) -> Iterator[Record]:
        """Step through ``[0, end)``: scenario actions and callbacks at every step, parts of
        frames that span time (LiDAR sweep sectors) at their steps, records at ticks. Without
        scenarios or a step callback the world stops at the last tick, as nothing after it is
        seen; with them it runs to the episode's end so late events count too. A camera with
        the ``flow`` label releases each frame one capture late (forward flow needs the next
        frame); each sensor's frames stay in order."""
        frame_counts = {s.name: 0 for s in scene.sensors}
        frame_at = {
            name: {st: k for k, st in enumerate(p.frame_steps.tolist())}
            for name, p in plans.items()
        }
        parts_at: dict[int, list[tuple[Any, int, int]]] = {}
        for spec in scene.sensors:
            for k, row in enumerate(plans[spec.name].part_steps.tolist()):
                for j, st in enumerate(row):
                    parts_at.setdefault(st, []).append((spec, k, j))
        pending: dict[tuple[str, int], list[Any]] = {}
        ticks = tick_steps.tolist()
        busy = runtime.busy or cb.on_step is not None
        end = world.num_steps if busy else ticks[-1] + 1
        tick = 0
        for step in range(end):
            if step > 0:
                t1 = time.perf_counter()
                world.step()
                self.timings["physics"] += time.perf_counter() - t1
            if busy:
                runtime.at_step(step)
            if cb.on_step is not None:
                cb.on_step(ActionContext(runtime, step, None))
            todo = parts_at.pop(step, ())
            if todo:
                t2 = time.perf_counter()
                ctx.poses_synced = False
                for spec, k, j in todo:
                    pending.setdefault((spec.name, k), []).append(capture_part(spec, ctx, k, j))
                self.timings["sensors"] += time.perf_counter() - t2
            if tick >= len(ticks) or ticks[tick] != step:
                continue
            runtime.at_tick(tick)
            yield StateRecord(tick, step, world.time, world.object_states(), world.contacts())
            ctx.poses_synced = False
            if runtime.weather is not None:  # scenario weather events
                ctx.weather = runtime.weather
            if weather is not None:
                ctx.weather = weather(world.time, ctx.weather)
            for spec in scene.sensors:
                fk = frame_at[spec.name].get(step)
                if fk is None:
                    continue
                t2 = time.perf_counter()
                pose, arrays, static, ragged = capture(spec, ctx, pending.pop((spec.name, fk), []))
                if "rgb" in arrays:
                    arrays["rgb"] = runtime.apply_camera_faults(
                        spec.name, step, tick, arrays["rgb"]
                    )
                self.timings["sensors"] += time.perf_counter() - t2
                frame = SensorFrame(
                    sensor=spec.name,
                    kind=spec.kind,
                    index=frame_counts[spec.name],
                    tick=tick,
                    step=step,
                    time=world.time,
                    pose_w=pose,
                    arrays=arrays,
                    static=static,
                    ragged=ragged,
                )
                frame_counts[spec.name] += 1
                t3 = time.perf_counter()
                done = list(ctx.release(frame))
                self.timings["sensors"] += time.perf_counter() - t3
                for f in done:
                    if cb.on_frame is not None:
                        cb.on_frame(f)
                    yield f
            tick += 1
        for f in ctx.release_all():
            if cb.on_frame is not None:
                cb.on_frame(f)
            yield f
