"""Online streaming: the frames a dataset would store, rendered by worker processes on the fly."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

import simgen
from simgen.errors import SceneError, SimgenError
from simgen.random.sample import sample_episode
from simgen.random.seeding import episode_seed
from tests.conftest import run_frames, scene_from
from tests.test_scale import SCENE

pytestmark = pytest.mark.gl


def test_stream_yields_the_episodes_frames_in_order_with_provenance(sim) -> None:
    scene = scene_from(SCENE)
    got = list(simgen.stream(scene, seed=5, episodes=[4, 1, 2], workers=2))
    expected = []
    for i in (4, 1, 2):
        _, _, frames = run_frames(sim, scene, seed=5, index=i)
        expected += [(i, f) for f in frames]
    assert len(got) == len(expected) == 9
    for g, (i, f) in zip(got, expected, strict=True):
        assert (g["episode_index"], g["episode_seed"], g["base_seed"]) == (i, episode_seed(5, i), 5)
        assert (g["sensor"], g["frame_index"], g["time"]) == (f.sensor, f.index, f.time)
        for key in ("rgb", "depth_m", "instance", "semantic", "K", "extrinsics_w2c"):
            assert np.array_equal(g[key], getattr(f, key)), key
        assert np.array_equal(g["pose_w"], f.pose_w)


def test_breaking_out_stops_the_workers_and_endless_streams_go_on() -> None:
    stream = simgen.stream(scene_from(SCENE), seed=1, workers=2)  # no episode count: endless
    it = iter(stream)
    seen = [next(it)["episode_index"] for _ in range(7)]
    assert seen == [0, 0, 0, 1, 1, 1, 2]
    assert len(mp.active_children()) == 2
    it.close()
    assert mp.active_children() == []
    assert stream.provenance["base_seed"] == 1 and "scene_json" in stream.provenance


def test_failing_episodes_raise_or_are_skipped() -> None:
    scene = scene_from(SCENE.replace("radius: 0.08,", "radius: 0.08, mass: {normal: [0.3, 0.3]},"))
    bad = []
    for i in range(6):
        try:
            sample_episode(scene, 3, i)
        except SceneError:
            bad.append(i)
    assert bad and len(bad) < 6
    s = simgen.stream(scene, seed=3, episodes=6, workers=2, on_error="skip")
    frames = list(s)
    assert sorted({f["episode_index"] for f in frames}) == sorted(set(range(6)) - set(bad))
    assert [(i, seed) for i, seed, _ in s.failures] == [(i, episode_seed(3, i)) for i in bad]
    assert all("sampled value is invalid" in err for *_, err in s.failures)
    with pytest.raises(SimgenError, match=f"episode {bad[0]} \\(seed {episode_seed(3, bad[0])}"):
        list(simgen.stream(scene, seed=3, episodes=6, workers=2))
    with pytest.raises(SimgenError, match="no sensors"):
        simgen.stream(scene, sensors=["nope"])


def test_torch_iterable_dataset_splits_episodes_over_loader_workers() -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, IterableDataset

    scene = scene_from(SCENE)
    ds = simgen.stream(scene, seed=2, episodes=4, sensors=["cam"])
    assert isinstance(ds, IterableDataset)
    # spawn: a process that holds a GL context (this test session does) must not fork
    loader = DataLoader(ds, batch_size=3, num_workers=2, multiprocessing_context="spawn")
    batches = list(loader)
    indices = sorted(int(i) for b in batches for i in b["episode_index"])
    assert indices == sorted([0, 1, 2, 3] * 3)  # 3 frames per episode, each episode once
    assert batches[0]["rgb"].shape == (3, 36, 48, 3) and batches[0]["rgb"].dtype == torch.uint8
