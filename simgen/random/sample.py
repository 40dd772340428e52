"""Resolve a scene's distributions into one episode's concrete, frozen parameters."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from simgen.errors import FieldValueError, Problem, SamplingError, SceneError, format_field_path
from simgen.random.distributions import Distribution
from simgen.random.seeding import episode_rng, episode_seed
from simgen.scene.schema import Scene

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class EpisodeParams:
    """Everything one episode needs, every random choice resolved.

    ``scene`` is the scene with each distribution replaced by its sampled value; ``sampled``
    maps the field path of each distribution (``objects[2].mass``) to the value drawn.
    """

    scene: Scene
    base_seed: int
    episode_index: int
    episode_seed: int
    sampled: dict[str, Any] = field(default_factory=dict)

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
                "sampled": self.sampled,
                "scene": self.scene.model_dump(mode="json", by_alias=True),
            },
            sort_keys=True,
        )


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, Distribution)


def _resolve(value: Any, path: Path_, draw: Any) -> Any:
    if isinstance(value, Distribution):
        return _resolve(draw(path, value), path, draw)
    if isinstance(value, BaseModel):
        out = {}
        for name, info in type(value).model_fields.items():
            out[info.alias or name] = _resolve(
                getattr(value, name), (*path, info.alias or name), draw
            )
        return out
    if isinstance(value, (list, tuple)):
        return [_resolve(v, (*path, i), draw) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _resolve(v, (*path, k), draw) for k, v in value.items()}
    return value


def sample_episode(scene: Scene, base_seed: int, episode_index: int) -> EpisodeParams:
    """Resolve every distribution in ``scene`` for episode ``episode_index`` of seed ``base_seed``.

    Each distribution draws from its own stream keyed by its field path, so values depend only on
    (seed, episode index, path). The resolved scene is validated again, so a sampled value that
    breaks a constraint (a negative mass from a normal distribution, say) is reported.
    """
    sampled: dict[str, Any] = {}

    def draw(path: Path_, dist: Distribution) -> Any:
        name = format_field_path(path)
        v = dist.sample(episode_rng(base_seed, episode_index, "param", name))
        sampled[name] = v
        return v

    data = _resolve(scene, (), draw)
    try:
        resolved = Scene.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors(include_url=False):
            loc = tuple(
                p
                for p in err["loc"]
                if not isinstance(p, str) or p not in ("value", "distribution")
            )
            sub = getattr((err.get("ctx") or {}).get("error"), "path", None)
            if isinstance(sub, tuple):
                loc = (*loc, *sub)
            problems.append(Problem(loc, f"sampled value is invalid: {err['msg']}"))
        raise SceneError(problems, scene.source_path) from None
    except FieldValueError as e:  # pragma: no cover - pydantic wraps these
        raise SamplingError(str(e)) from None
    resolved._source_text = scene.source_text
    resolved._source_path = scene.source_path
    resolved._base_dir = scene.base_dir
    return EpisodeParams(
        scene=resolved,
        base_seed=base_seed,
        episode_index=episode_index,
        episode_seed=episode_seed(base_seed, episode_index),
        sampled=sampled,
    )
