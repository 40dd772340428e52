"""Which scenarios happen in an episode: by probability, or by an exact quota of the dataset.

Both depend only on ``(base_seed, episode index)`` (and the dataset size for quotas), so an
episode rendered alone makes the same choice as in a full run:

* ``probability: p``: a Bernoulli draw from the episode's stream ``("scenario", name)``;
* ``quota: q``: the first ``round(q * N)`` indices of a permutation of ``range(N)`` drawn from
  the run's stream ``("quota", name)`` happen, so exactly that many of the N episodes have it.
"""

from __future__ import annotations

from functools import lru_cache

from simgen.errors import SamplingError
from simgen.random.seeding import dataset_rng, episode_rng
from simgen.scenario.spec import Scenario


@lru_cache(maxsize=32)
def quota_members(base_seed: int, name: str, num_episodes: int, quota: float) -> frozenset[int]:
    """The episode indices (of ``range(num_episodes)``) in which scenario ``name`` happens."""
    k = round(quota * num_episodes)
    order = dataset_rng(base_seed, "quota", name).permutation(num_episodes)
    return frozenset(int(i) for i in order[:k])


def happens(sc: Scenario, base_seed: int, index: int, num_episodes: int | None) -> bool:
    if sc.quota is not None:
        if num_episodes is None:
            raise SamplingError(
                f"scenario {sc.name!r} has a quota of the dataset's episodes: pass the number of "
                "episodes (simgen render --episodes N, or num_episodes= in Python)"
            )
        if index >= num_episodes:
            raise SamplingError(
                f"episode {index} is outside the dataset of {num_episodes} episodes that "
                f"scenario {sc.name!r}'s quota spans; give the full dataset size (--episodes N)"
            )
        return index in quota_members(base_seed, sc.name, num_episodes, float(sc.quota))
    if sc.probability is not None:
        return bool(episode_rng(base_seed, index, "scenario", sc.name).random() < sc.probability)
    return True
