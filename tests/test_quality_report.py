"""A rendered dataset through stats, compare and the HTML report, opened in headless Chromium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.cdp import Browser, find_browser
from tests.conftest import scene_from

pytestmark = pytest.mark.gl

# The cube's x is declared uniform in [-1, 1], but 'require' keeps it within 1 m of the marker at
# x = -1: only [-1, 0) is ever sampled. Coverage must show it.
SCENE = """
schema_version: 1
name: quality-test
description: A colored cube and a marker ball on a floor, seen by a camera and a small LiDAR.
license: CC0-1.0
intended_use: Testing simgen's dataset report.
simulation: {duration: 0.2}
objects:
  - {name: floor, class: floor, kind: plane, size: [6, 6], material: {color: [0.45, 0.45, 0.42]}}
  - {name: marker, class: marker, kind: sphere, radius: 0.15, static: true,
     pose: {position: [-1, 0, 0.15]}, material: {color: [0.9, 0.9, 0.2]}}
  - name: cube
    class: cube
    kind: box
    size: [0.4, 0.4, 0.4]
    mass: {uniform: [0.5, 1.5]}
    pose: {position: [{uniform: [-1, 1]}, 0, 0.2]}
    material: {color: {hsv: {saturation: [0.6, 1], value: [0.5, 1]}}}
require:
  - {distance: {a: cube, b: marker, max: 1.0}}
scenarios:
  - name: shove
    probability: 0.5
    events: [{name: push, at: 0.05, action: {impulse: {object: cube, impulse: [0, 3, 0]}}}]
sensors:
  - {kind: camera, name: cam, resolution: [64, 48], rate_hz: 10, labels: [boxes, amodal],
     look_at: {eye: [0, -3.2, 2.2], target: [-0.3, 0, 0.1]}}
  - {kind: lidar, name: lid, channels: 8, upper_fov_deg: 5, lower_fov_deg: -30, columns: 90,
     rate_hz: 10, sectors: 1, pose: {position: [0, -2.5, 1.0]}}
"""
EPISODES = 16


@pytest.fixture(scope="module")
def data(sim, tmp_path_factory):
    from simgen.io.exporters import export
    from simgen.run.batch import render_dataset

    tmp = tmp_path_factory.mktemp("quality")
    path = tmp / "d.h5"
    render_dataset(scene_from(SCENE), path, episodes=range(EPISODES), seed=4, simulator=sim)
    export(path, "coco", tmp / "coco")
    return path, tmp


@pytest.fixture(scope="module")
def stats(data):
    from simgen.quality import compute_stats

    return compute_stats(data[0])


def test_coverage_finds_the_half_sampled_parameter(stats) -> None:
    from simgen.quality.checks import warnings

    x = stats["parameters"]["objects[2].pose.position[0]"]
    assert x["samples"] == EPISODES and x["dims"][0]["bins"] == 3
    assert x["coverage"] <= 2 / 3  # nothing above 0: the upper bin(s) stay empty
    g0, g1 = x["dims"][0]["largest_gap_value"]
    assert -0.35 < g0 < 0.0 and g1 == 1.0
    assert stats["parameters"]["objects[2].mass"]["coverage"] == 1.0
    assert stats["tries"]["mean"] > 1.2  # 'require' rejected samples
    warns = warnings(stats)
    flagged = [w["message"] for w in warns if w["topic"] == "parameters"]
    assert any(m.startswith("objects[2].pose.position[0]: poor coverage") for m in flagged)
    assert not any(m.startswith("objects[2].mass") for m in flagged)


def test_stats_agree_with_the_stored_arrays(data, stats) -> None:
    """Independent recount from the raw arrays (the reader, frame by frame)."""
    from simgen.io.reader import Dataset

    inst, px, depth_n, points = {}, {}, 0, 0
    with Dataset(data[0]) as ds:
        for ep in ds:
            cls = {o["instance_id"]: o["class_name"] for o in ep.objects}
            for k in range(ep.num_frames("cam")):
                f = ep.frame("cam", k)
                for c, n in zip(*np.unique(f["semantic"], return_counts=True), strict=True):
                    px[ds.classes[c]] = px.get(ds.classes[c], 0) + int(n)
                for i in np.nonzero(f["visible_pixels"])[0]:
                    if cls[i + 1] != "floor":
                        inst[cls[i + 1]] = inst.get(cls[i + 1], 0) + 1
                depth_n += int((f["depth_m"] > 0).sum())
            for k in range(ep.num_frames("lid")):
                points += len(ep.frame("lid", k, ["range_m"])["range_m"])
    c = stats["cameras"]["cam"]
    for name, n in px.items():
        assert c["objects"]["classes"][name]["pixels"] == n
    for name, n in inst.items():
        assert c["objects"]["classes"][name]["instances"] == n
    assert c["depth_m"]["count"] == depth_n
    assert stats["lidars"]["lid"]["range_m"]["count"] == points > 0
    sc = stats["scenarios"]["shove"]
    assert sc["declared_rate"] == 0.5 and sc["events"]["push"]["episodes"] == sc["episodes"] > 0


def test_compare_zero_against_itself_and_its_coco_export(data) -> None:
    from simgen.quality.compare import compare

    path, tmp = data
    for other in (path, tmp / "coco"):
        r = compare(path, other)
        assert r["distances"] and all(d["distance"] == 0.0 for d in r["distances"]), other
        assert r["a"]["images"] == r["b"]["images"] == EPISODES * 2


def test_compare_finds_a_brightness_shift(data) -> None:
    from simgen.quality.compare import compare

    path, tmp = data
    shifted = tmp / "coco_bright"
    if not shifted.exists():
        shutil.copytree(tmp / "coco", shifted)
        for p in (shifted / "images").glob("*.png"):
            img = cv2.imread(str(p))
            cv2.imwrite(str(p), np.clip(img.astype(np.int16) + 70, 0, 255).astype(np.uint8))
    r = compare(path, shifted / "annotations" / "instances.json")
    first = r["distances"][0]
    assert first["statistic"] in ("brightness", "red values", "green values", "blue values")
    by = {d["statistic"]: d for d in r["distances"]}
    assert (
        by["brightness"]["ks"] == 1.0
        and by["brightness"]["mean_b"] > by["brightness"]["mean_a"] + 0.2
    )
    assert "B brighter" in by["brightness"]["summary"]
    for s in ("box size", "box aspect", "box center x", "instances per image", "class frequencies"):
        assert by[s]["distance"] == 0.0, s  # same annotations


def test_report_opens_in_chromium_without_errors(data, stats, tmp_path) -> None:
    from typer.testing import CliRunner

    from simgen.cli import app
    from simgen.quality import save_stats

    path, tmp = data
    out = tmp_path / "report.html"
    save_stats(stats, tmp_path / "stats.json")
    r = CliRunner().invoke(
        app,
        [
            "report",
            str(path),
            "-o",
            str(out),
            "--stats",
            str(tmp_path / "stats.json"),
            "--reference",
            str(tmp / "coco"),
            "--card",
            str(tmp_path / "card.md"),
        ],
    )
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert "http://" not in text and "https://" not in text  # nothing to fetch
    for s in (
        "Dataset card",
        "Testing simgen&#x27;s dataset report.",
        "poor coverage",
        "Domain gap",
        "scenarios: shove",
        "lidar (bird&#x27;s-eye)",
        "objects[2].pose.position[0]",
    ):
        assert s in text, s
    assert "Testing simgen's dataset report." in (tmp_path / "card.md").read_text()

    exe = find_browser()
    if exe is None:
        pytest.skip(
            "no Chromium found (apt-get install -y chromium; ./install.sh --test installs it)"
        )
    shot = Path(os.environ.get("SIMGEN_SCREENSHOT_DIR", tmp_path)) / "report.png"
    with Browser(exe) as b:
        page = b.check_page(out.resolve().as_uri(), screenshot=shot)
    assert page.problems == [], page.problems
    assert page.ready and page.title == "simgen report: quality-test"
    n_img = text.count("<img ")
    assert page.images == n_img > 20
    png = cv2.imread(str(shot))
    assert png is not None and png.shape[1] == 1280 and png.shape[0] > 2000
    assert png.std() > 20  # not a blank page


def test_the_browser_check_can_fail(tmp_path) -> None:
    """Negative control: a page with a broken image and a script error is reported."""
    exe = find_browser()
    if exe is None:
        pytest.skip(
            "no Chromium found (apt-get install -y chromium; ./install.sh --test installs it)"
        )
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><link rel='icon' href='data:,'></head><body>"
        "<img alt='broken' src='data:image/png;base64,AAAA'>"
        "<script>console.error('boom'); undefinedFunction();</script></body></html>"
    )
    with Browser(exe) as b:
        page = b.check_page(bad.resolve().as_uri())
    assert page.broken_images == ["broken"]
    assert any("boom" in e for e in page.console_errors)
    assert any("undefinedFunction" in e for e in page.exceptions)
