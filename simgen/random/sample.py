"""Resolve a scene's distributions into one episode's concrete, frozen parameters."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from simgen.errors import (
    AssetError,
    FieldValueError,
    Problem,
    SamplingError,
    SceneError,
    format_field_path,
)
from simgen.limits import current as current_limits
from simgen.limits import exceeded
from simgen.random.distributions import Choice, Distribution, SamplingContext
from simgen.random.seeding import episode_rng, episode_seed
from simgen.scene.schema import WEATHER_CLASS, Scene

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class ScatterPlan:
    """What the placement engine needs to place one scatter's objects (not stored)."""

    name: str
    index: int  # in the scene's 'scatter' list
    objects: tuple[str, ...]  # names of the objects made, in order
    region: Any  # resolved Region model
    orientation: Any  # Orientation (possibly a rotation distribution, drawn per object)
    min_gap: float
    settle: bool
    max_tries: int


@dataclass(frozen=True)
class EpisodeParams:
    """Everything one episode needs, every random choice resolved.

    ``scene`` is the scene with each distribution replaced by its sampled value (scattered
    objects added to ``objects``, scenarios that happen kept with their templates expanded);
    ``sampled`` maps the field path of each distribution (``objects[2].mass``) to the value
    drawn. ``attempt`` counts rejected samples before this one (``require``); ``placement``
    records how the scattered objects were placed (tries, settling); ``scenarios`` which
    scenarios happen; ``per_frame`` the distributions drawn again at every tick.
    """

    scene: Scene
    base_seed: int
    episode_index: int
    episode_seed: int
    sampled: dict[str, Any] = field(default_factory=dict)
    dataset_size: int | None = None
    attempt: int = 0
    scenarios: dict[str, bool] = field(default_factory=dict)
    per_frame: dict[str, Distribution] = field(default_factory=dict)
    placement: dict[str, Any] = field(default_factory=dict)
    scatter: tuple[ScatterPlan, ...] = ()
    placed: bool = True  # False until the placement engine has placed the scattered objects

    def rng(self, *keys: str | int) -> Any:
        """A named random stream of this episode (e.g. ``params.rng("camera", "noise")``)."""
        return episode_rng(self.base_seed, self.episode_index, *keys)

    def to_json(self) -> str:
        """The resolved parameters as JSON (stored verbatim in datasets)."""
        return json.dumps(
            {
                "base_seed": self.base_seed,
                "episode_index": self.episode_index,
                "episode_seed": self.episode_seed,
                "dataset_size": self.dataset_size,
                "tries": self.attempt + 1,
                "sampled": self.sampled,
                "per_frame": {k: d.describe() for k, d in self.per_frame.items()},
                "scenarios": self.scenarios,
                "placement": self.placement,
                "scene": self.scene.model_dump(mode="json", by_alias=True),
            },
            sort_keys=True,
        )

    def with_scene(self, scene: Scene, **changes: Any) -> EpisodeParams:
        """A copy with another resolved scene (provenance kept)."""
        scene._source_text = self.scene.source_text
        scene._source_path = self.scene.source_path
        scene._base_dir = self.scene.base_dir
        return replace(self, scene=scene, **changes)


class _Sampler:
    """Draws every distribution of one episode from streams keyed by field path."""

    def __init__(self, base_seed: int, index: int, attempt: int, ctx: SamplingContext) -> None:
        self.base_seed, self.index, self.attempt, self.ctx = base_seed, index, attempt, ctx
        self.sampled: dict[str, Any] = {}
        self.per_frame: dict[str, Distribution] = {}

    def rng(self, *keys: str | int) -> Any:
        extra = ("attempt", self.attempt) if self.attempt else ()
        return episode_rng(self.base_seed, self.index, *keys, *extra)

    def draw(self, path: Path_, dist: Distribution) -> Any:
        from simgen.random.kinds import PerFrame

        name = format_field_path(path)
        try:
            if isinstance(dist, PerFrame):  # tick 0's value; the episode draws the others
                self.per_frame[name] = dist
                v = dist.sample_in(self.per_frame_rng(name, 0), self.ctx)
            else:
                v = dist.sample_in(self.rng("param", name), self.ctx)
        except (SamplingError, AssetError) as e:  # say which field drew it
            if str(e).startswith(name):
                raise
            raise type(e)(f"{name}: {e}") from None
        self.sampled[name] = v
        return v

    def per_frame_rng(self, name: str, tick: int) -> Any:
        return per_frame_rng(self.base_seed, self.index, name, tick)

    def resolve(self, value: Any, path: Path_) -> Any:
        if isinstance(value, Distribution):
            out = self.resolve(self.draw(path, value), path)
            if _holds_distribution(out):
                raise SamplingError(
                    f"{format_field_path(path)}: a drawn value holds another distribution; "
                    "choice values must be plain values"
                )
            return out
        if isinstance(value, BaseModel):
            out = {}
            for name, info in type(value).model_fields.items():
                key = info.alias or name
                out[key] = self.resolve(getattr(value, name), (*path, key))
            return out
        if isinstance(value, (list, tuple)):
            return [self.resolve(v, (*path, i)) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self.resolve(v, (*path, k)) for k, v in value.items()}
        return value


def per_frame_rng(base_seed: int, index: int, name: str, tick: int) -> Any:
    """The stream of a per-frame distribution at one tick."""
    return episode_rng(base_seed, index, "per_frame", name, tick)


def _holds_distribution(v: Any) -> bool:
    from simgen.random.kinds import DISTRIBUTIONS

    if isinstance(v, dict):
        if len(v) == 1 and next(iter(v)) in DISTRIBUTIONS:
            return True
        return any(_holds_distribution(x) for x in v.values())
    if isinstance(v, list):
        return any(_holds_distribution(x) for x in v)
    return False


def sample_episode(
    scene: Scene,
    base_seed: int,
    episode_index: int,
    *,
    num_episodes: int | None = None,
    attempt: int = 0,
    asset_roots: tuple[str | Path, ...] = (),
    registry: Any = None,
) -> EpisodeParams:
    """Resolve every distribution in ``scene`` for episode ``episode_index`` of seed ``base_seed``.

    Each distribution draws from its own stream keyed by its field path, so values depend only on
    (seed, episode index, path) — and on ``num_episodes`` (the dataset size) for schedules
    ``by: progress`` and scenario quotas, which need it. ``attempt`` > 0 draws a fresh sample
    (rejection sampling for ``require``). The resolved scene is validated again, so a sampled
    value that breaks a constraint (a negative mass from a normal distribution, say) is
    reported. Scattered objects get their poses from the placement engine
    (:func:`simgen.run.prepare.prepare_episode`); until then ``placed`` is False.
    """
    from simgen.sim.assets import AssetResolver

    ctx = SamplingContext(
        episode_index=episode_index,
        num_episodes=num_episodes,
        assets=AssetResolver.for_scene(scene.base_dir, tuple(Path(r) for r in asset_roots)),
        registry=registry,
    )
    s = _Sampler(base_seed, episode_index, attempt, ctx)
    data: dict[str, Any] = {}
    for name, info in Scene.model_fields.items():
        key = info.alias or name
        if key not in ("scatter", "scenarios"):
            data[key] = s.resolve(getattr(scene, name), (key,))
    plans = _scatter(scene, s, data)
    selected = _scenarios(scene, s, data, base_seed, episode_index, num_episodes)
    if scene.classes is None and (scene.scatter or scene.scenarios):
        # the same table in every episode ('weather' is appended by class_table itself)
        data["classes"] = [c for c in scene.class_table()[1:] if c != WEATHER_CLASS]
    if len(data["objects"]) > current_limits().max_objects:
        raise SamplingError(
            f"episode {episode_index}: "
            + exceeded("max_objects", "objects in the episode", len(data["objects"]))
        )
    resolved = _validate(data, scene)
    return EpisodeParams(
        scene=resolved,
        base_seed=base_seed,
        episode_index=episode_index,
        episode_seed=episode_seed(base_seed, episode_index),
        sampled=s.sampled,
        dataset_size=num_episodes,
        attempt=attempt,
        scenarios=selected,
        per_frame=s.per_frame,
        scatter=tuple(plans),
        placed=not any(p.objects for p in plans),
    )


def _validate(data: dict[str, Any], scene: Scene) -> Scene:
    from simgen.scene.loader import _data_path

    try:
        resolved = Scene.model_validate(data, context={"resolved": True})
    except ValidationError as e:
        problems = []
        for err in e.errors(include_url=False):
            loc = _data_path(tuple(err["loc"]), data)  # the path in the data, without union tags
            sub = getattr((err.get("ctx") or {}).get("error"), "path", None)
            if isinstance(sub, tuple):
                loc = (*loc, *sub)
            problems.append(Problem(loc, f"sampled value is invalid: {err['msg']}"))
        raise SceneError(_located(problems, scene), scene.source_path) from None
    except FieldValueError as e:  # pragma: no cover - pydantic wraps these
        raise SamplingError(str(e)) from None
    resolved._source_text = scene.source_text
    resolved._source_path = scene.source_path
    resolved._base_dir = scene.base_dir
    return resolved


def _located(problems: list[Problem], scene: Scene) -> list[Problem]:
    """The problems with the line and column of their field in the scene file, where the field
    is written there (objects added by scatter are not)."""
    if not scene.source_text:
        return problems
    from simgen.scene.yamlpos import load_yaml

    try:
        _, positions = load_yaml(scene.source_text, scene.source_path)
    except SceneError:
        return problems
    out = []
    for p in problems:
        pos = positions.find(p.path) if tuple(p.path[:2]) in positions.values else None
        line, col = pos if pos else (None, None)
        out.append(Problem(p.path, p.message, line, col, p.allowed))
    return out


# -- scatter ----------------------------------------------------------------------------------


def _scatter(scene: Scene, s: _Sampler, data: dict[str, Any]) -> list[ScatterPlan]:
    """Add each scatter's objects to ``data['objects']`` (poses come from the placement engine)."""
    plans = []
    for si, sc in enumerate(scene.scatter):
        base: Path_ = ("scatter", si)
        n = int(s.resolve(sc.count, (*base, "count")))
        if len(data["objects"]) + n > current_limits().max_objects:  # before making any
            raise SamplingError(
                f"{format_field_path((*base, 'count'))}: "
                + exceeded("max_objects", "objects in the episode", len(data["objects"]) + n)
            )
        region_data = s.resolve(sc.region, (*base, "region"))
        region: Any = type(sc.region).model_validate(region_data)  # type: ignore[attr-defined]
        assets = _assets(sc, s, base, n) if sc.assets is not None else None
        names = []
        for i in range(n):
            obj = _instance(sc, s, (*base, "instances", i), i, assets)
            data["objects"].append(obj)
            names.append(obj["name"])
        plans.append(
            ScatterPlan(
                name=sc.name,
                index=si,
                objects=tuple(names),
                region=region,
                orientation=sc.orientation,
                min_gap=float(s.resolve(sc.min_gap, (*base, "min_gap"))),
                settle=sc.settle,
                max_tries=sc.max_tries,
            )
        )
    return plans


def _assets(sc: Any, s: _Sampler, base: Path_, n: int) -> list[str]:
    """One asset per object; with ``unique`` no asset twice."""
    from simgen.random.files import Files

    name = format_field_path((*base, "assets"))
    if not sc.unique or not isinstance(sc.assets, (Files, Choice)):
        picks = [s.resolve(sc.assets, (*base, "instances", i, "asset")) for i in range(n)]
        if sc.unique and len(set(picks)) < len(picks):
            raise SamplingError(f"{name}: 'unique' needs {{files: ...}} or {{choice: [...]}}")
        return picks
    pool = (
        list(sc.assets.candidates(s.ctx))
        if isinstance(sc.assets, Files)
        else list(sc.assets.choice.values)
    )
    if n > len(pool):
        raise SamplingError(
            f"{name}: {n} distinct assets asked of a pool of {len(pool)} ('unique: true')"
        )
    idx = s.rng("param", name).choice(len(pool), size=n, replace=False)
    picks = [str(pool[int(i)]) for i in idx]
    for i, p in enumerate(picks):
        s.sampled[format_field_path((*base, "instances", i, "asset"))] = p
    return picks


def _instance(
    sc: Any, s: _Sampler, path: Path_, i: int, assets: list[str] | None
) -> dict[str, Any]:
    name = f"{sc.name}_{i}"
    if assets is not None:
        obj: dict[str, Any] = {
            "kind": "urdf",
            "asset": assets[i],
            "class": sc.class_name,
            "scale": s.resolve(sc.scale, (*path, "scale")),
        }
        if sc.mass is not None:
            obj["mass"] = s.resolve(sc.mass, (*path, "mass"))
    else:
        j = 0
        if len(sc.objects) > 1:
            pick = Choice.model_validate(
                {"choice": {"values": list(range(len(sc.objects))), "weights": sc.weights}}
            )
            j = int(s.draw((*path, "template"), pick))
        obj = s.resolve(sc.objects[j], path)
        if sc.class_name is not None:
            obj["class"] = sc.class_name
    if sc.material is not None:
        obj["material"] = s.resolve(sc.material, (*path, "material"))
    obj["name"] = name
    obj["pose"] = {"position": [0.0, 0.0, 0.0], "orientation": {"quat_wxyz": [1.0, 0, 0, 0]}}
    obj["velocity"] = {"linear": [0.0, 0.0, 0.0], "angular_deg": [0.0, 0.0, 0.0]}
    return obj


# -- scenarios --------------------------------------------------------------------------------


def _scenarios(
    scene: Scene,
    s: _Sampler,
    data: dict[str, Any],
    base_seed: int,
    index: int,
    num_episodes: int | None,
) -> dict[str, bool]:
    """Keep the scenarios that happen, resolved, with their templates expanded."""
    from simgen.scenario.select import happens
    from simgen.scenario.spec import Scenario
    from simgen.scenario.templates import expand

    selected: dict[str, bool] = {}
    out = []
    for i, sc in enumerate(scene.scenarios):
        selected[sc.name] = happens(sc, base_seed, index, num_episodes)
        if not selected[sc.name]:
            continue
        resolved = Scenario.model_validate(s.resolve(sc, ("scenarios", i)))
        if resolved.template is not None:
            events, triggers = expand(resolved.template, data)
            resolved = resolved.model_copy(
                update={
                    "template": None,
                    "events": [*events, *resolved.events],
                    "triggers": [*triggers, *resolved.triggers],
                }
            )
        out.append(resolved.model_dump(mode="json", by_alias=True))
    data["scenarios"] = out
    return selected
