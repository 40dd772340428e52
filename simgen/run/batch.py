"""Render a dataset: N episodes of a scene into one HDF5 file (in-process, one worker)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simgen.io.digest import episode_digest
from simgen.io.layout import episode_group_name
from simgen.io.store import RECORDS_ATTR
from simgen.io.writer import DatasetWriter, EpisodeSummary
from simgen.run.episode import Simulator
from simgen.scene.schema import Scene


@dataclass
class RunSummary:
    path: Path
    episodes: list[EpisodeSummary] = field(default_factory=list)
    seconds: float = 0.0
    bytes_on_disk: int = 0

    @property
    def frames(self) -> int:
        return sum(e.frames for e in self.episodes)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def render_dataset(
    scene: Scene,
    out: str | Path,
    *,
    episodes: Iterable[int],
    seed: int,
    gl: str | None = None,
    overwrite: bool = False,
    asset_roots: tuple[str | Path, ...] = (),
    on_episode: Callable[[EpisodeSummary], None] | None = None,
    simulator: Simulator | None = None,
    num_episodes: int | None = None,
    registry: Any = None,
) -> RunSummary:
    """Render the given episode indices of ``scene`` (base seed ``seed``) into ``out``.

    ``num_episodes`` is the size of the dataset the episodes belong to (schedules ``by:
    progress`` and scenario quotas depend on it); by default it is the number of episodes when
    they are ``0 .. N-1``, else unknown. ``simulator`` reuses an existing engine (GL context,
    mesh cache, registry); by default one is made and closed here. The file appears at ``out``
    only when every episode is written.
    """
    t0 = time.perf_counter()
    indices = list(episodes)
    if num_episodes is None and indices == list(range(len(indices))):
        num_episodes = len(indices)
    summary = RunSummary(Path(out))
    records: list[dict[str, Any]] = []  # each episode's checksum (simgen verify --integrity)
    own = simulator is None
    sim = (
        simulator
        if simulator is not None
        else Simulator(gl=gl, asset_roots=asset_roots, registry=registry)
    )
    try:
        with DatasetWriter(out, scene, seed, overwrite=overwrite) as writer:
            for index in indices:
                params = sim.prepare(scene, seed, index, num_episodes=num_episodes)
                ep = writer.write_episode(params, sim.run(params))
                records.append(_checksum_record(writer, params.episode_index, ep.frames))
                summary.episodes.append(ep)
                if on_episode is not None:
                    on_episode(ep)
            writer.set_attr("render_backend", json.dumps(sim.render_backend()))
            writer.set_attr(RECORDS_ATTR, json.dumps(records))
    finally:
        if own:
            sim.close()
    summary.seconds = time.perf_counter() - t0
    summary.bytes_on_disk = Path(out).stat().st_size
    return summary


def _checksum_record(writer: DatasetWriter, index: int, frames: int) -> dict[str, Any]:
    """The content checksum of the episode just written (its streamed arrays were hashed
    while compressing; the rest is small)."""
    group = writer.file["episodes"][episode_group_name(index)]
    digest = episode_digest(group, known=writer.array_hashes)
    seed = int(group.attrs["episode_seed"])
    return {"index": index, "seed": seed, "sha256": digest, "frames": frames}
