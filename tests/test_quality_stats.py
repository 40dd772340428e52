"""simgen stats on a tiny hand-made dataset (written with DatasetWriter from known arrays, no
rendering): every statistic equals its hand-computed value."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.conftest import scene_from

SCENE = """
schema_version: 1
name: tiny
description: hand-made frames
license: CC0-1.0
intended_use: testing simgen stats
classes: [floor, box, ball]
stuff: [floor]
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: box, class: box, kind: box, size: [0.1, 0.1, 0.1], mass: {uniform: [1, 2]}}
  - {name: ball, class: ball, kind: sphere, radius: 0.05}
sensors:
  - {kind: camera, name: cam, resolution: [8, 6], look_at: {eye: [1, 1, 1], target: [0, 0, 0]}}
"""
H, W = 6, 8


def _frame(box=None, ball=None, top_background=False):
    inst = np.ones((H, W), np.uint16)  # floor
    if top_background:
        inst[0] = 0
    for iid, win in ((2, box), (3, ball)):
        if win is not None:
            u0, v0, u1, v1 = win
            inst[v0:v1, u0:u1] = iid
    return inst


# (instance map, rgb color, depth on labeled pixels) of ep0 f0, ep0 f1, ep1 f0, ep1 f1
FRAMES = [
    [
        (_frame(box=(2, 1, 5, 3)), (200, 0, 0), 2.0),
        (_frame(box=(2, 1, 5, 3), ball=(6, 4, 8, 6)), (100, 100, 100), 4.0),
    ],
    [
        (_frame(top_background=True), (0, 0, 200), 1.0),
        (_frame(ball=(0, 0, 2, 4)), (100, 100, 100), 3.0),
    ],
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from simgen.io.writer import DatasetWriter
    from simgen.labels.boxes import mask_boxes
    from simgen.random.sample import sample_episode
    from simgen.run.records import EpisodeEvents, EpisodeHeader, ObjectInfo, SensorFrame

    scene = scene_from(SCENE)
    path = tmp_path_factory.mktemp("tiny") / "tiny.h5"
    objects = [
        ObjectInfo(1, "floor", 1, "floor", "plane"),
        ObjectInfo(2, "box", 2, "box", "box"),
        ObjectInfo(3, "ball", 3, "ball", "sphere"),
    ]
    with DatasetWriter(path, scene, base_seed=0) as w:
        for e, frames in enumerate(FRAMES):
            recs = [
                EpisodeHeader(
                    objects, scene.class_table(), 2, 0.1, np.array([0, 1]), {"cam": "camera"}
                )
            ]
            for k, (inst, color, depth) in enumerate(frames):
                arrays = {
                    "rgb": np.broadcast_to(np.array(color, np.uint8), (H, W, 3)).copy(),
                    "depth_m": np.where(inst > 0, depth, 0).astype(np.float32),
                    "instance": inst,
                    "semantic": inst.copy(),  # class id == instance id here
                }
                if e == 0:  # episode 1 leaves the label arrays out: stats derive them from masks
                    boxes, counts = mask_boxes(inst, 3)
                    arrays["box2d_tight"], arrays["visible_pixels"] = boxes, counts
                recs.append(SensorFrame("cam", "camera", k, k, k, 0.1 * k, np.eye(4), arrays))
            ev = EpisodeEvents.empty(2)
            if e == 0:
                ev = EpisodeEvents(
                    ["push"],
                    ["s"],
                    ["impulse"],
                    ["timeline"],
                    np.array([1]),
                    np.array([2]),
                    np.array([0.1]),
                    np.array([[False], [True]]),
                    ["s"],
                    np.array([True]),
                    [],
                    np.zeros((2, 0)),
                )
            else:
                ev = EpisodeEvents(
                    [],
                    [],
                    [],
                    [],
                    np.zeros(0, np.int64),
                    np.zeros(0, np.int64),
                    np.zeros(0),
                    np.zeros((2, 0), bool),
                    ["s"],
                    np.array([False]),
                    [],
                    np.zeros((2, 0)),
                )
            recs.append(ev)
            w.write_episode(sample_episode(scene, 0, e), recs)
    return path


@pytest.fixture(scope="module")
def stats(tiny):
    from simgen.quality import compute_stats

    return compute_stats(tiny)


def test_class_counts_and_pixel_coverage(stats) -> None:
    cam = stats["cameras"]["cam"]
    o = cam["objects"]
    assert cam["frames"] == 4 and stats["frames"]["total"] == 4 and stats["episodes"] == 2
    assert cam["resolutions"] == [[W, H]]
    c = o["classes"]
    total = 4 * H * W
    assert o["pixels"] == total
    expected_pixels = {"background": 8, "box": 12, "ball": 12, "floor": total - 32}
    for name, px in expected_pixels.items():
        assert c[name]["pixels"] == px
        assert c[name]["pixel_coverage"] == pytest.approx(px / total)
    assert (c["box"]["instances"], c["ball"]["instances"], c["floor"]["instances"]) == (2, 2, 0)
    assert (c["box"]["frames"], c["ball"]["frames"], c["floor"]["frames"]) == (2, 2, 4)
    assert c["background"]["frames"] == 1 and c["floor"]["stuff"] and not c["box"]["stuff"]


def test_instances_per_frame_and_nothing_visible(stats) -> None:
    o = stats["cameras"]["cam"]["objects"]
    ipf = o["instances_per_frame"]
    assert ipf["counts"][:3] == [1, 2, 1] and ipf["mean"] == 1.0
    nv = o["nothing_visible"]
    assert nv["frames"] == 1 and nv["share"] == 0.25
    assert nv["examples"] == [{"episode": 1, "sensor": "cam", "frame": 0}]


def test_box_geometry(stats) -> None:
    o = stats["cameras"]["cam"]["objects"]
    sizes = [math.sqrt(6 / 48), math.sqrt(6 / 48), math.sqrt(4 / 48), math.sqrt(8 / 48)]
    aspects = [math.log2(3 / 2), math.log2(3 / 2), 0.0, -1.0]
    cx = [3.5 / 8, 3.5 / 8, 7 / 8, 1 / 8]
    cy = [2 / 6, 2 / 6, 5 / 6, 2 / 6]
    for key, vals in (
        ("box_size", sizes),
        ("box_aspect", aspects),
        ("box_center_x", cx),
        ("box_center_y", cy),
    ):
        h = o[key]
        assert h["count"] == 4, key
        assert h["mean"] == pytest.approx(np.mean(vals)), key
        assert h["min"] == pytest.approx(min(vals)) and h["max"] == pytest.approx(max(vals)), key
        edges = np.linspace(h["lo"], h["hi"], h["bins"] + 1)
        expected = np.histogram(vals, edges)[0]
        assert h["counts"] == expected.tolist(), key


def test_image_measures_and_depth(stats) -> None:
    cam = stats["cameras"]["cam"]
    m = cam["images"]["measures"]
    # OpenCV gray of (200, 0, 0) is round(0.299 * 200) = 60, of (0, 0, 200) round(0.114 * 200) = 23
    assert m["brightness"]["mean"] == pytest.approx((60 + 100 + 23 + 100) / 4 / 255)
    assert m["brightness"]["min"] == pytest.approx(23 / 255)
    assert m["contrast"]["max"] == 0.0 and m["edge_density"]["max"] == 0.0
    assert m["saturation"]["mean"] == pytest.approx(0.5)  # two pure colors, two grays
    assert m["sharpness"]["under"] == 4  # a flat image has a zero Laplacian (below the log range)
    red = cam["images"]["channels"]["red"]["counts"]
    assert red[200 >> 3] == 48 and red[100 >> 3] == 96 and red[0] == 48
    d = cam["depth_m"]
    assert d["count"] == 48 + 48 + 40 + 48
    assert d["mean"] == pytest.approx((48 * 2 + 48 * 4 + 40 * 1 + 48 * 3) / 184)
    assert (d["min"], d["max"]) == (1.0, 4.0)


def test_parameters_scenarios_and_card(stats) -> None:
    p = stats["parameters"]["objects[1].mass"]
    assert p["samples"] == 2 and p["episodes"] == 2 and p["law"] == "uniform"
    assert p["declared"] == '{"uniform": [1.0, 2.0]}'
    s = stats["scenarios"]["s"]
    assert s["episodes"] == 1 and s["rate"] == 0.5 and s["declared_rate"] is None
    assert s["events"]["push"]["count"] == 1 and s["events"]["push"]["start_time_s"][
        "mean"
    ] == pytest.approx(0.1)
    assert stats["failures"] == [] and stats["tries"]["mean"] == 1.0
    assert stats["dataset"]["scene"]["intended_use"] == "testing simgen stats"

    from simgen.quality.card import card_markdown, dataset_card
    from simgen.quality.checks import warnings

    warns = warnings(stats)
    text = card_markdown(dataset_card(stats, warns), "tiny")
    for s in (
        "testing simgen stats",
        "CC0-1.0",
        "hand-made frames",
        "1:floor (stuff)",
        "2:box (2 instances)",
    ):
        assert s in text
    assert any("show no object" in w["message"] for w in warns)  # the empty frame
    assert any("'box' has only 2 instances" in w["message"] for w in warns)


def test_stats_json_round_trip_and_cli(tiny, stats, tmp_path) -> None:
    from typer.testing import CliRunner

    from simgen.cli import app
    from simgen.quality import load_stats, save_stats

    back = load_stats(save_stats(stats, tmp_path / "s.json"))
    assert (
        back["cameras"]["cam"]["objects"]["classes"]
        == stats["cameras"]["cam"]["objects"]["classes"]
    )
    r = CliRunner().invoke(app, ["stats", str(tiny), "-o", str(tmp_path / "cli.json")])
    assert r.exit_code == 0, r.output
    assert "objects[1].mass" in r.output and "warning" in r.output
    assert load_stats(tmp_path / "cli.json")["episodes"] == 2
    r = CliRunner().invoke(app, ["stats", str(tmp_path / "missing.h5")])
    assert r.exit_code == 2 and "no such dataset" in r.output


def test_the_reader_blocks_equal_frames(tiny) -> None:
    from simgen.io.reader import Dataset

    with Dataset(tiny) as ds:
        ep = ds.episode(0)
        block = ep.frame_block("cam", 0, 2, ["rgb", "instance", "K", "nope"])
        assert "nope" not in block and block["rgb"].shape == (2, H, W, 3)
        for k in range(2):
            assert np.array_equal(block["instance"][k], ep.frame("cam", k)["instance"])


def test_report_of_the_tiny_dataset_is_self_contained(tiny, tmp_path) -> None:
    """Without a browser: every image of the page is a data URI that decodes, nothing is
    fetched, and the report handles a camera-only dataset with an empty frame."""
    import base64
    from html.parser import HTMLParser

    import cv2

    from simgen.quality.report import write_report

    summary = write_report(tiny, tmp_path / "r.html", card=tmp_path / "card.md", per_group=4)
    text = summary.path.read_text()
    srcs: list[str] = []

    class Images(HTMLParser):
        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "img":
                srcs.append(a["src"])
            for key in ("src", "href"):
                v = a.get(key)
                assert v is None or v.startswith(("data:", "#")), (tag, v)

    Images().feed(text)
    assert len(srcs) > 15
    for s in srcs:
        head, data = s.split(",", 1)
        assert head in ("data:image/png;base64", "data:image/jpeg;base64")
        img = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.size > 0
    assert "frames with no thing visible: 1" in text and 'id="lidar-' not in text
    assert "scenarios: s" in text and "scenarios: none" in text  # gallery groups
    assert summary.warnings >= 2 and "# Dataset card: tiny" in (tmp_path / "card.md").read_text()
