"""Prepare one episode: sample, place and settle scattered objects, check ``require``.

The parameters that come out are final: the dataset stores them before the episode runs, and
the same ``(scene, seed, index, dataset size)`` always gives the same parameters, whether the
episode is rendered alone or in a full run. Rejection sampling is bounded by
``randomization.max_tries``; attempt k draws every value from streams keyed by k, so the
accepted sample does not depend on anything but the attempts before it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from simgen.errors import SamplingError, format_field_path
from simgen.random.sample import EpisodeParams, sample_episode
from simgen.scene.objects import Velocity
from simgen.scene.placement import describe_constraint
from simgen.scene.schema import Scene
from simgen.scene.types import Pose


def prepare_episode(
    scene: Scene,
    base_seed: int,
    index: int,
    *,
    num_episodes: int | None = None,
    registry: Any = None,
    asset_roots: tuple[str | Path, ...] = (),
    meshes: Any = None,
) -> EpisodeParams:
    """The final parameters of episode ``index`` (see the module doc)."""
    constrained = bool(scene.require)
    max_tries = scene.randomization.max_tries if constrained else 1
    failures: Counter[str] = Counter()
    for attempt in range(max_tries):
        params = sample_episode(
            scene,
            base_seed,
            index,
            num_episodes=num_episodes,
            attempt=attempt,
            asset_roots=asset_roots,
            registry=registry,
        )
        if not scene.scatter and not constrained:
            return params
        try:
            params, failed = _place_and_check(params, asset_roots, meshes)
        except SamplingError as e:
            if not constrained:
                raise
            failures["placement: " + str(e)] += 1
            continue
        if not failed:
            info = dict(params.placement)
            info["constraint_failures"] = dict(failures)
            return replace(params, placement=info)
        failures.update(f"require[{i}]" for i in failed)
    raise SamplingError(_rejection_message(scene, index, max_tries, failures))


def _place_and_check(
    params: EpisodeParams, asset_roots: tuple[str | Path, ...], meshes: Any
) -> tuple[EpisodeParams, list[int]]:
    from simgen.sim.assets import AssetResolver
    from simgen.sim.constraints import check
    from simgen.sim.placement import PlacementResult, place_and_settle, settle_scene
    from simgen.sim.visuals import MeshLibrary
    from simgen.sim.world import PhysicsWorld

    assets = AssetResolver.for_scene(params.scene.base_dir, tuple(Path(r) for r in asset_roots))
    world_params = params.with_scene(settle_scene(params))
    with PhysicsWorld(
        world_params,
        assets=assets,
        meshes=meshes if meshes is not None else MeshLibrary(),
        placing=True,
        visuals=needs_visuals(params.scene),
    ) as world:
        result = place_and_settle(world, params) if params.scatter else PlacementResult()
        failed = check(world, params)
    return _with_poses(params, result, world.timestep), failed


def needs_visuals(scene: Scene) -> bool:
    """Whether checking ``require`` needs the objects' visual meshes (visibility does)."""
    from simgen.scene.placement import Distance

    return any(not isinstance(c, Distance) for c in scene.require)


def _with_poses(params: EpisodeParams, result: Any, dt: float) -> EpisodeParams:
    objects = []
    sampled = dict(params.sampled)
    where = {n: (p.index, i) for p in params.scatter for i, n in enumerate(p.objects)}
    for o in params.scene.objects:
        if o.name not in result.poses:
            objects.append(o)
            continue
        pos, q = result.poses[o.name]
        pose = Pose.model_validate(
            {
                "position": [float(v) for v in pos],
                "orientation": {"quat_wxyz": [float(v) for v in q]},
            }
        )
        objects.append(o.model_copy(update={"pose": pose, "velocity": Velocity()}))
        si, i = where[o.name]
        sampled[format_field_path(("scatter", si, "instances", i, "pose"))] = {
            "position": [float(v) for v in pos],
            "quat_wxyz": [float(v) for v in q],
        }
    info: dict[str, Any] = {}
    if params.scatter:
        info = {
            "scatter": {
                p.name: {"count": len(p.objects), "tries": result.tries.get(p.name, [])}
                for p in params.scatter
            },
            "settle_steps": int(result.settle_steps),
            "settle_time": float(np.round(result.settle_steps * dt, 9)),
            "at_rest": bool(result.at_rest),
        }
    scene = params.scene.model_copy(update={"objects": objects})
    return params.with_scene(scene, sampled=sampled, placement=info, placed=True)


def _rejection_message(scene: Scene, index: int, tries: int, failures: Counter[str]) -> str:
    lines = [
        f"episode {index}: no sample met the scene's constraints in {tries} tries "
        f"(acceptance rate 0/{tries}); randomization.max_tries bounds the tries"
    ]
    for i, c in enumerate(scene.require):
        n = failures.get(f"require[{i}]", 0)
        held = tries - n - sum(v for k, v in failures.items() if k.startswith("placement"))
        lines.append(
            f"  require[{i}] ({describe_constraint(c)}) held in {max(held, 0)} of {tries} tries"
            f" ({100.0 * max(held, 0) / tries:.0f}%)"
        )
    for k, v in failures.items():
        if k.startswith("placement"):
            lines.append(f"  {k} ({v} of {tries} tries)")
    worst = max(
        (f"require[{i}]" for i in range(len(scene.require))),
        key=lambda k: failures.get(k, 0),
        default=None,
    )
    if worst is not None and failures.get(worst, 0):
        lines.append(
            f"most often failed: {worst}; make it easier or the scene more likely to meet it"
        )
    return "\n".join(lines)
