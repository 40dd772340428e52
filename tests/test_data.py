"""simgen.data: random access by (episode, frame) and a PyTorch dataset with several workers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from tests.conftest import scene_from

pytestmark = pytest.mark.gl

SCENE = """
schema_version: 1
simulation: {duration: 0.3}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: cube, class: box, kind: box, size: [0.2, 0.2, 0.2], pose: {position: [0, 0, 0.5]}}
sensors:
  - {kind: camera, name: cam, resolution: [40, 30], rate_hz: 10, labels: [boxes, amodal],
     look_at: {eye: [1.5, 1, 1], target: [0, 0, 0.2]}}
  - {kind: camera, name: side, resolution: [20, 16], rate_hz: 5, look_at: {eye: [0, 2, 1], target: [0, 0, 0.2]}}
"""


@pytest.fixture(scope="module")
def path(sim, tmp_path_factory):
    from simgen.run.batch import render_dataset

    out = tmp_path_factory.mktemp("data") / "d.h5"
    render_dataset(scene_from(SCENE), out, episodes=[0, 2, 5], seed=1, simulator=sim)
    return out


def test_random_access_reads_the_stored_frames(path) -> None:
    from simgen.data import Dataset
    from simgen.errors import DatasetError
    from simgen.io.reader import Dataset as File

    frames = Dataset(path, fields=["rgb", "box2d_tight", "amodal_masks", "K"])
    assert frames.sensor == "cam" and len(frames) == 9
    assert frames.index[3] == (2, 0)
    with File(path) as f:
        for i in (0, 4, -1):
            e, k = frames.index[i]
            want = f.episode(e).frame("cam", k)
            got = frames[i]
            assert (got["episode"], got["frame"]) == (e, k)
            assert set(got) == {"episode", "frame", "rgb", "box2d_tight", "amodal_masks", "K"}
            for key in ("rgb", "box2d_tight", "amodal_masks", "K"):
                assert np.array_equal(got[key], want[key]), key
    assert np.array_equal(frames.get(5, 1)["rgb"], frames[7]["rgb"])
    with pytest.raises(IndexError):
        frames[9]
    side = Dataset(path, sensor="side", episodes=[2])
    assert len(side) == 2 and "box2d_tight" in side.fields and "amodal_masks" not in side.fields
    with pytest.raises(DatasetError, match="no field 'flow_fwd_px'"):
        Dataset(path, fields=["flow_fwd_px"])
    frames[0]  # opens the file in this process
    copy = pickle.loads(pickle.dumps(frames))  # what a DataLoader worker receives
    assert copy._h5 is None and np.array_equal(copy[1]["rgb"], frames[1]["rgb"])
    frames.close()
    copy.close()


def test_torch_dataset_with_two_workers(path) -> None:
    torch = pytest.importorskip("torch")
    from simgen.data import Dataset, TorchDataset

    ds = TorchDataset(path, fields=["rgb", "instance", "visible_pixels"])
    plain = Dataset(path, fields=["rgb", "instance", "visible_pixels"])
    ds[0]  # a handle opened in the parent must not leak into the workers
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, shuffle=False)
    batches = list(loader)
    assert len(batches) == 3
    assert batches[0]["rgb"].shape == (3, 30, 40, 3) and batches[0]["rgb"].dtype == torch.uint8
    for b, start in zip(batches, (0, 3, 6), strict=True):
        for j in range(3):
            want = plain[start + j]
            assert torch.equal(b["rgb"][j], torch.from_numpy(want["rgb"]))
            assert b["episode"][j].item() == want["episode"]
    pickle.loads(pickle.dumps(ds))  # spawn-started workers pickle the dataset
