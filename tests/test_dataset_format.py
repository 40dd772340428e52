"""The HDF5 layout matches docs/dataset-format.md, and stored values read back exactly."""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest

from tests.conftest import ROOT, run_frames, scene_from

pytestmark = pytest.mark.gl

SCENE = """
schema_version: 1
simulation: {duration: 0.25}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: cube, class: box, kind: box, size: [0.2, 0.2, 0.2], pose: {position: [0, 0, 0.3]},
     keypoints: {top: [0, 0, 0.1]}}
sensors:
  - {kind: camera, name: cam, resolution: [48, 32], rate_hz: 8, look_at: {eye: [1, 1, 1], target: [0, 0, 0]},
     labels: [boxes, amodal, keypoints, panoptic, flow, normals], distortion: {k1: -0.1},
     effects: {noise: {}}}
  - {kind: lidar, name: lid, elevation_deg: [10, 0, -10, -30], columns: 64, rate_hz: 8, rotation_hz: 20,
     noise: {range_sigma_m: 0.01, dropout: 0.1}, pose: {position: [-1, 0, 0.5]}}
weather: {preset: rain_light}
"""


def documented() -> tuple[dict[str, tuple[str, str]], set[str], set[str]]:
    """(array path -> (shape, dtype)), root attributes, episode attributes from the doc."""
    text = (ROOT / "docs" / "dataset-format.md").read_text()
    arrays = {
        m[0]: (m[1], m[2])
        for m in re.findall(r"^\| `(/[^`]+)` \| ([^|]+?) \| (\w+) \|", text, re.M)
    }
    root_section = text.split("## Root")[1].split("## Episodes")[0]
    ep_section = text.split("## Episodes")[1].split("N = objects")[0]
    attr = r"^\| `(\w+)` \| (?:str|int|bool|float) \|"
    return (
        arrays,
        set(re.findall(attr, root_section, re.M)),
        set(re.findall(attr, ep_section, re.M)),
    )


def test_layout_matches_the_documentation(sim, tmp_path) -> None:
    from simgen.run.batch import render_dataset

    out = tmp_path / "d.h5"
    render_dataset(scene_from(SCENE), out, episodes=[0, 3], seed=9, simulator=sim)
    arrays, root_attrs, ep_attrs = documented()
    assert len(arrays) > 20
    with h5py.File(out) as f:
        assert set(f.attrs) == root_attrs
        found: dict[str, h5py.Dataset] = {}
        f.visititems(
            lambda name, obj: (
                found.__setitem__("/" + name, obj) if isinstance(obj, h5py.Dataset) else None
            )
        )
        generic = {
            re.sub(r"^/episodes/\d{6}", "/episodes/<index>", p)
            .replace("/sensors/cam/", "/sensors/<camera>/")
            .replace("/sensors/lid/", "/sensors/<lidar>/"): d
            for p, d in found.items()
        }
        assert set(generic) == set(arrays), set(generic) ^ set(arrays)
        for path, (shape, dtype) in arrays.items():
            d = generic[path]
            want = {"str": "O"}.get(dtype, dtype)
            assert d.dtype.kind == "O" if want == "O" else d.dtype == np.dtype(want), (
                path,
                d.dtype,
            )
            dims = [x for x in shape.strip("()").split(",") if x.strip()]
            assert d.ndim == len(dims), (path, d.shape, shape)
        assert set(f["episodes"]) == {"000000", "000003"}
        assert set(f["episodes/000003"].attrs) == ep_attrs
        assert f["episodes/000000/sensors/cam/rgb"].compression == "gzip"
        assert f["episodes/000000/sensors/cam/rgb"].shuffle
        for name, d in f["episodes/000000/sensors/lid"].items():
            layout = d.attrs.get("layout")
            assert layout in ("per_frame", "constant", "ragged") or name.endswith("_offsets")


def test_stored_frames_equal_the_rendered_ones(sim, tmp_path) -> None:
    from simgen.io.reader import Dataset
    from simgen.run.batch import render_dataset

    scene = scene_from(SCENE)
    _, states, frames = run_frames(sim, scene, seed=4, index=2)
    out = tmp_path / "d.h5"
    render_dataset(scene, out, episodes=[2], seed=4, simulator=sim)
    with Dataset(out) as ds:
        ep = ds.episode(2)
        cams = [f for f in frames if f.sensor == "cam"]
        lidars = [f for f in frames if f.sensor == "lid"]
        assert ep.num_frames("cam") == len(cams) == 2  # t = 0 and 0.125 in [0, 0.25)
        # sweeps start at 0 and 0.125 s and last 0.05 s: frames at their ends
        assert ep.num_frames("lid") == len(lidars) == 2
        assert [f.time for f in lidars] == [12 / 240, 42 / 240]
        for k, f in enumerate(lidars):
            stored = ep.frame("lid", k)
            for key in (*f.arrays, *f.static, *f.ragged):
                assert np.array_equal(stored[key], getattr(f, key)), key
            assert len(stored["points_s"]) > 50 and len(stored["noisy_index"]) < len(
                stored["points_s"]
            )
        for k, f in enumerate(cams):
            stored = ep.frame("cam", k)
            for key in (
                "rgb",
                "rgb_clean",
                "particle_mask",
                "depth_m",
                "instance",
                "semantic",
                "extrinsics_w2c",
                "K",
                "dist_coeffs",
            ):
                assert np.array_equal(stored[key], getattr(f, key)), key
            assert stored["time"] == f.time
        st = ep.state()
        assert np.array_equal(st["position_w"], np.stack([s.objects.position_w for s in states]))
        assert ds.classes == ["background", "floor", "box", "weather"]
        assert [o["name"] for o in ep.objects] == ["floor", "cube"]


@pytest.mark.parametrize("level", [1, 6])
def test_frame_chunks_compressed_by_simgen_decode_with_hdf5s_own_filters(tmp_path, level) -> None:
    """Frame chunks are deflated by simgen (ISA-L where installed) and stored raw with
    write_direct_chunk: HDF5's shuffle + deflate filters must decode them to the same values."""
    import platform

    from simgen.io import writer

    if platform.machine() in ("x86_64", "AMD64", "aarch64", "arm64"):  # isal has wheels there
        assert writer._deflate.__module__ == writer.__name__  # the ISA-L wrapper, not zlib
    rng = np.random.default_rng(0)
    frames = [
        rng.normal(0, 50, (48, 64, 2)).astype(np.float32),  # like optical flow: hard to compress
        np.repeat(np.arange(64, dtype=np.uint16)[None], 48, 0),
        np.zeros((48, 64, 2), np.float32),
    ]
    with h5py.File(tmp_path / "c.h5", "w") as f:
        for i, a in enumerate(frames):
            ds = f.create_dataset(
                str(i), shape=(1, *a.shape), dtype=a.dtype, chunks=(1, *a.shape),
                compression="gzip", compression_opts=level, shuffle=True,
            )  # fmt: skip
            ds.id.write_direct_chunk((0,) * ds.ndim, writer._shuffle_deflate(a, level, True))
    with h5py.File(tmp_path / "c.h5", "r") as f:
        for i, a in enumerate(frames):
            assert f[str(i)][0].tobytes() == a.tobytes()


def test_ragged_rows_written_a_chunk_at_a_time_read_back_exactly(tmp_path) -> None:
    """Ragged arrays (LiDAR points) are buffered and written a whole chunk at a time (16384
    rows, compressed in the writer's threads): appends of any size, across chunk borders, must
    read back exactly, with offsets, and hash as the reader hashes them."""
    from simgen.io.digest import dataset_hash
    from simgen.io.writer import DEFAULT_COMPRESSION, _EpisodeWriter

    rng = np.random.default_rng(1)
    sizes = [10_000, 20_000, 5, 0, 16_384, 3, 40_000]
    parts = [rng.normal(size=(n, 3)).astype(np.float32) for n in sizes]
    with h5py.File(tmp_path / "r.h5", "w") as f:
        w = _EpisodeWriter(f.create_group("e"), DEFAULT_COMPRESSION)
        sg = f["e"].create_group("lidar")
        for p in parts:
            w._ragged(sg, "points_s", p)
        w._flush()
        hashes = w.array_hashes()
        w.abort()
    with h5py.File(tmp_path / "r.h5", "r") as f:
        ds = f["e/lidar/points_s"]
        assert ds.shape == (sum(sizes), 3)
        assert ds[:].tobytes() == np.concatenate(parts).tobytes()
        assert f["e/lidar/points_s_offsets"][:].tolist() == np.cumsum([0, *sizes]).tolist()
        assert hashes[ds.name] == dataset_hash(ds)
