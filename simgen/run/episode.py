"""Run episodes: sample -> simulate -> sense, yielding records in time order.

:class:`Simulator` is the long-lived engine of a worker: it keeps the GL context and the mesh
cache across episodes; every episode gets a fresh physics client that is closed at its end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from simgen.effects.state import WeatherState, weather_state
from simgen.random.sample import EpisodeParams, sample_episode
from simgen.run.capture import CaptureContext, capture, capture_part, capture_plan
from simgen.run.records import EpisodeHeader, ObjectInfo, Record, SensorFrame, StateRecord
from simgen.scene.schema import Scene
from simgen.scene.types import vec
from simgen.sim.assets import AssetResolver
from simgen.sim.visuals import MeshLibrary
from simgen.sim.world import PhysicsWorld

#: ``(time, current weather) -> weather`` called at every tick (Simulator.run's ``weather``).
WeatherHook = Callable[[float, WeatherState], WeatherState]


class Simulator:
    """Runs episodes; owns the renderer (GL context) and mesh cache across them."""

    def __init__(self, *, gl: str | None = None, asset_roots: tuple[str | Path, ...] = ()) -> None:
        self.gl = gl
        self.asset_roots = tuple(Path(r) for r in asset_roots)
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

    def episode(self, scene: Scene, seed: int, index: int) -> Iterator[Record]:
        """Sample episode ``index`` of ``scene`` with base seed ``seed`` and run it."""
        return self.run(sample_episode(scene, seed, index))

    def run(self, params: EpisodeParams, *, weather: WeatherHook | None = None) -> Iterator[Record]:
        """Run one resolved episode. Yields an :class:`EpisodeHeader`, then per tick a
        :class:`StateRecord` followed by that tick's :class:`SensorFrame` s. A camera with
        the ``flow`` label yields each frame one capture late (forward flow needs the next
        frame); each sensor's frames stay in order.

        ``weather(time, state)``, when given, returns the weather for each tick (e.g. a fog
        bank rolling in; docs/weather.md): every sensor frame finished at that tick reads it."""
        scene = params.scene
        assets = AssetResolver.for_scene(scene.base_dir, self.asset_roots)
        t0 = time.perf_counter()
        with PhysicsWorld(params, assets=assets, meshes=self.meshes) as world:
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
            # parts of frames that span time (LiDAR sweep sectors), by the step they are taken at
            parts_at: dict[int, list[tuple[Any, int, int]]] = {}
            for spec in scene.sensors:
                for k, row in enumerate(plans[spec.name].part_steps.tolist()):
                    for j, st in enumerate(row):
                        parts_at.setdefault(st, []).append((spec, k, j))
            pending: dict[tuple[str, int], list[Any]] = {}
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
                params=params,
                raycaster_factory=self.raycaster,
                hulls=self._hulls,
                weather=weather_state(scene),
            )

            def take_parts() -> None:
                todo = parts_at.pop(world.step_index, ())
                if todo:
                    t2 = time.perf_counter()
                    for spec, k, j in todo:
                        pending.setdefault((spec.name, k), []).append(capture_part(spec, ctx, k, j))
                    self.timings["sensors"] += time.perf_counter() - t2

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
            frame_counts = {s.name: 0 for s in scene.sensors}
            frame_at = {
                name: {st: k for k, st in enumerate(p.frame_steps.tolist())}
                for name, p in plans.items()
            }
            for tick, step in enumerate(tick_steps.tolist()):
                while world.step_index < step:
                    take_parts()
                    t1 = time.perf_counter()
                    world.step()
                    self.timings["physics"] += time.perf_counter() - t1
                take_parts()
                yield StateRecord(tick, step, world.time, world.object_states(), world.contacts())
                ctx.poses_synced = False
                if weather is not None:
                    ctx.weather = weather(world.time, ctx.weather)
                for spec in scene.sensors:
                    frame = frame_at[spec.name].get(step)
                    if frame is None:
                        continue
                    t2 = time.perf_counter()
                    parts = pending.pop((spec.name, frame), [])
                    pose, arrays, static, ragged = capture(spec, ctx, parts)
                    self.timings["sensors"] += time.perf_counter() - t2
                    sframe = SensorFrame(
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
                    done = list(ctx.release(sframe))
                    self.timings["sensors"] += time.perf_counter() - t3
                    yield from done
            yield from ctx.release_all()
            self.label_timings = {name: dict(lab.timings) for name, lab in ctx.labelers.items()}
