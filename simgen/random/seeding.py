"""The one seeding function: every random stream in simgen derives from here.

An episode's randomness depends only on ``(base_seed, episode_index)``; inside an episode each
consumer (a distribution at a field path, a sensor's noise model, ...) gets its own stream keyed
by a stable name, so adding a random value in one place never shifts the values drawn elsewhere.
"""

from __future__ import annotations

import zlib

import numpy as np

MAX_SEED = 2**63 - 1


def _key_int(key: str | int) -> int:
    if isinstance(key, int):
        if key < 0:
            raise ValueError(f"seed keys must be non-negative, got {key}")
        return key
    return zlib.crc32(key.encode("utf-8"))


def seed_sequence(base_seed: int, episode_index: int, *keys: str | int) -> np.random.SeedSequence:
    """SeedSequence for episode ``episode_index`` of a run seeded ``base_seed``, sub-keyed by ``keys``."""
    if not 0 <= base_seed <= MAX_SEED:
        raise ValueError(f"seed must be in [0, 2**63-1], got {base_seed}")
    if episode_index < 0:
        raise ValueError(f"episode index must be >= 0, got {episode_index}")
    return np.random.SeedSequence(
        entropy=base_seed, spawn_key=(episode_index, *(_key_int(k) for k in keys))
    )


def episode_rng(base_seed: int, episode_index: int, *keys: str | int) -> np.random.Generator:
    """The generator for one named random stream of one episode."""
    return np.random.Generator(np.random.PCG64(seed_sequence(base_seed, episode_index, *keys)))


def episode_seed(base_seed: int, episode_index: int) -> int:
    """A single integer that identifies episode ``episode_index``'s randomness (recorded in datasets)."""
    state = seed_sequence(base_seed, episode_index).generate_state(2, np.uint32)
    return int((int(state[0]) << 32 | int(state[1])) & MAX_SEED)


#: First spawn key of dataset-level streams: above every episode index, so they never collide.
DATASET_KEY = 2**63


def dataset_rng(base_seed: int, *keys: str | int) -> np.random.Generator:
    """A random stream of the whole run, not of one episode (e.g. the permutation that picks a
    scenario's quota of episodes). Depends only on ``base_seed`` and ``keys``."""
    if not 0 <= base_seed <= MAX_SEED:
        raise ValueError(f"seed must be in [0, 2**63-1], got {base_seed}")
    seq = np.random.SeedSequence(
        entropy=base_seed, spawn_key=(DATASET_KEY, *(_key_int(k) for k in keys))
    )
    return np.random.Generator(np.random.PCG64(seq))
