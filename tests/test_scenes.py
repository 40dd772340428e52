"""Conformance over every file in scenes/: validates, samples, renders, labels, reproducible."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from simgen.random.sample import sample_episode
from simgen.scene.loader import load_scene
from simgen.sensors.camera import scene_with_resolution
from tests.conftest import SCENES


def short(path, duration: float = 0.25):
    scene = scene_with_resolution(load_scene(path), 64, 48)
    sim = scene.simulation.model_copy(update={"duration": duration})
    return scene.model_copy(update={"simulation": sim})


def test_there_are_example_scenes() -> None:
    assert {p.stem for p in SCENES} >= {"tabletop", "warehouse", "street"}


@pytest.mark.parametrize("path", SCENES, ids=lambda p: p.stem)
def test_scene_validates_and_samples(path) -> None:
    scene = load_scene(path)
    assert scene.sensors, "example scenes have at least one sensor"
    a, b = sample_episode(scene, 1, 0), sample_episode(scene, 1, 0)
    assert a.to_json() == b.to_json()
    if a.sampled:
        assert sample_episode(scene, 2, 0).sampled != a.sampled


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal values, or the same bytes (float labels use NaN for 'undefined')."""
    if np.array_equal(a, b):
        return True
    return a.dtype.kind == "f" and a.shape == b.shape and a.tobytes() == b.tobytes()


def _arrays(path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with h5py.File(path) as f:
        f.visititems(
            lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None
        )
    return out


@pytest.mark.gl
@pytest.mark.parametrize("path", SCENES, ids=lambda p: p.stem)
def test_scene_renders_with_consistent_labels_verifies_and_same_seed_same_bytes(
    path, sim, tmp_path
) -> None:
    from simgen.io.reader import Dataset
    from simgen.run.batch import render_dataset

    scene = short(path)
    render_dataset(scene, tmp_path / "a.h5", episodes=[0], seed=7, simulator=sim)
    render_dataset(scene, tmp_path / "b.h5", episodes=[0], seed=7, simulator=sim)
    a, b = _arrays(tmp_path / "a.h5"), _arrays(tmp_path / "b.h5")
    assert a.keys() == b.keys()
    for key in a:
        assert _same(a[key], b[key]), key
    from simgen.io.verify import verify_dataset

    report = verify_dataset(tmp_path / "a.h5")  # every label agrees with every other
    assert report.ok, {c.name: (c.worst, c.where) for c in report.checks.values() if not c.ok}
    assert "box_tight" in report.checks
    with Dataset(tmp_path / "a.h5") as ds:
        assert ds.classes == scene.class_table()
        ep = ds.episode(0)
        class_of = {o["instance_id"]: o["class_id"] for o in ep.objects}
        lut = np.zeros(max(class_of) + 1, np.uint16)
        for i, c in class_of.items():
            lut[i] = c
        assert set(ep.sensors.values()) <= {"camera", "lidar"}
        for name, kind in ep.sensors.items():
            assert ep.num_frames(name) >= 1, name
            for k in range(ep.num_frames(name)):
                f = ep.frame(name, k)
                if kind == "lidar":
                    table = scene.class_table()
                    weather = table.index("weather") if "weather" in table else None
                    _check_lidar_frame(f, class_of, lut, weather)
                    continue
                ids = np.unique(f["instance"])
                assert set(ids.tolist()) - {0} <= set(class_of), "every id is an object"
                assert np.array_equal(f["semantic"], lut[f["instance"]])
                assert np.all((f["depth_m"] > 0) == (f["instance"] > 0))
                assert len(ids) >= 2, "something is in view"


@pytest.mark.gl
def test_different_seeds_differ(sim, tmp_path) -> None:
    from simgen.run.batch import render_dataset

    path = next(p for p in SCENES if p.stem == "tabletop")
    scene = short(path, 0.1)
    render_dataset(scene, tmp_path / "a.h5", episodes=[0], seed=1, simulator=sim)
    render_dataset(scene, tmp_path / "b.h5", episodes=[0], seed=2, simulator=sim)
    a, b = _arrays(tmp_path / "a.h5"), _arrays(tmp_path / "b.h5")
    assert not np.array_equal(
        a["episodes/000000/sensors/front/rgb"], b["episodes/000000/sensors/front/rgb"]
    )
    assert not np.array_equal(
        a["episodes/000000/state/position_w"], b["episodes/000000/state/position_w"]
    )


@pytest.mark.gl
def test_episode_alone_equals_episode_in_a_run(sim, tmp_path) -> None:
    from simgen.run.batch import render_dataset

    path = next(p for p in SCENES if p.stem == "street")
    scene = short(path, 0.1)
    render_dataset(scene, tmp_path / "all.h5", episodes=[0, 1, 2], seed=3, simulator=sim)
    render_dataset(scene, tmp_path / "one.h5", episodes=[2], seed=3, simulator=sim)
    a, b = _arrays(tmp_path / "all.h5"), _arrays(tmp_path / "one.h5")
    for key, value in b.items():
        if key.startswith("episodes/"):
            assert _same(a[key], value), key


def _check_lidar_frame(
    f: dict[str, np.ndarray], class_of: dict[int, int], lut: np.ndarray, weather: int | None
) -> None:
    """``weather``: the id of the class of fog / rain / snow returns (instance 0), if any."""
    assert len(f["points_s"]) > 100, "the LiDAR sees something"
    inst, sem = f["instance"], f["semantic"]
    surf = inst > 0
    assert set(np.unique(inst[surf]).tolist()) <= set(class_of)
    assert np.array_equal(sem[surf], lut[inst[surf]])
    assert np.all(sem[~surf] == weather) if weather is not None else np.all(surf)
    ret, img_surf = f["range_image"] > 0, f["instance_image"] > 0
    assert np.array_equal(f["semantic_image"][img_surf], lut[f["instance_image"][img_surf]])
    assert np.all(f["semantic_image"][ret & ~img_surf] == weather)
    assert np.all(f["semantic_image"][~ret] == 0) and np.all(ret[img_surf])
    assert np.allclose(np.linalg.norm(f["points_s"], axis=1), f["range_m"], rtol=1e-5)
    assert np.array_equal(f["range_image"][f["ring"], f["column"]], f["range_m"])
