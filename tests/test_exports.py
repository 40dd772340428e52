"""Exporters validated by the formats' own tools: COCO (pycocotools), KITTI (devkit geometry
round trip), YOLO, plain folders; and `simgen verify` on good, corrupted and LiDAR datasets."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from simgen.geometry import euler_deg_to_quat, pose_matrix
from tests.conftest import ROOT, scene_from

pytestmark = pytest.mark.gl

# Upright boxes of several sizes and headings on a floor, all fully in view of a camera that
# looks down at them (pitched and rolled); one carries keypoints; a sphere partly hides nothing.
SCENE = """
schema_version: 1
simulation: {duration: 0.25, gravity: [0, 0, 0]}
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: car, class: car, kind: box, size: [0.9, 0.4, 0.3], static: true,
     pose: {position: [0.3, 0.2, 0.15], orientation: {euler_deg: [0, 0, 35]}},
     keypoints: {front: [0.45, 0, 0], roof: [0, 0, 0.15], hidden: [-0.45, 0, -0.15]}}
  - {name: van, class: car, kind: box, size: [0.7, 0.35, 0.4], static: true,
     pose: {position: [-0.6, -0.5, 0.2], orientation: {euler_deg: [0, 0, -70]}}}
  - {name: crate, class: crate, kind: box, size: [0.3, 0.3, 0.3], static: true,
     pose: {position: [0.9, 0.7, 0.15], orientation: {euler_deg: [0, 0, 10]}}}
  - {name: ball, class: ball, kind: sphere, radius: 0.15, pose: {position: [0.6, -0.6, 0.15]},
     velocity: {linear: [-0.4, 0.2, 0]}}
sensors:
  - {kind: camera, name: cam, resolution: [160, 120], intrinsics: {fov_deg: 55}, rate_hz: 8,
     labels: [boxes, amodal, keypoints, panoptic, flow, normals],
     look_at: {eye: [2.4, -1.6, 1.8], target: [0, 0, 0.1], up: [0.1, 0, 1]}}
"""

T_C_S = pose_matrix([0.1, -0.2, 0.05], euler_deg_to_quat((5, -10, 20)))  # LiDAR in the camera


def _fake_lidar(frame):
    """A LiDAR sweep made of the camera's own surface points (every 3rd pixel), expressed in a
    LiDAR frame mounted at T_C_S, with per-point instance ids: a stand-in for the LiDAR sensor."""
    from simgen.run.records import SensorFrame

    v, u = np.nonzero(frame.depth_m > 0)
    keep = (u % 3 == 0) & (v % 3 == 0)
    v, u = v[keep], u[keep]
    z = frame.depth_m[v, u].astype(np.float64)
    p_c = (np.stack([u, v, np.ones_like(u)], 1) @ np.linalg.inv(frame.K).T) * z[:, None]
    t_s_c = np.linalg.inv(T_C_S)
    p_s = p_c @ t_s_c[:3, :3].T + t_s_c[:3, 3]
    return SensorFrame(
        sensor="lidar",
        kind="lidar",
        index=frame.index,
        tick=frame.tick,
        step=frame.step,
        time=frame.time,
        pose_w=frame.pose_w @ T_C_S,
        ragged={
            "points_deskewed_s": p_s.astype(np.float32),
            "intensity": (1.0 / z).astype(np.float32),
            "instance": frame.instance[v, u],
        },
    )


@pytest.fixture(scope="module")
def data(sim, tmp_path_factory) -> dict[str, Path]:
    """The scene rendered normally, and again with the stand-in LiDAR."""
    from simgen.io.writer import DatasetWriter
    from simgen.random.sample import sample_episode
    from simgen.run.batch import render_dataset
    from simgen.run.records import EpisodeHeader, SensorFrame

    root = tmp_path_factory.mktemp("exports")
    scene = scene_from(SCENE)
    render_dataset(scene, root / "d.h5", episodes=[0, 1], seed=3, simulator=sim)

    def with_lidar(params):
        for rec in sim.run(params):
            if isinstance(rec, EpisodeHeader):
                kinds = {**rec.sensor_kinds, "lidar": "lidar"}
                yield dataclasses.replace(rec, sensor_kinds=kinds)
            elif isinstance(rec, SensorFrame):
                yield rec
                yield _fake_lidar(rec)
            else:
                yield rec

    with DatasetWriter(root / "lidar.h5", scene, 3) as w:
        params = sample_episode(scene, 3, 0)
        w.write_episode(params, with_lidar(params))
    return {"plain": root / "d.h5", "lidar": root / "lidar.h5", "root": root}


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools
def test_coco_loads_in_pycocotools_and_ground_truth_scores_ap_1(data) -> None:
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from simgen.io.exporters import export
    from simgen.io.reader import Dataset

    out = data["root"] / "coco"
    summary = export(data["plain"], "coco", out)
    assert summary.frames == 4 and summary.objects > 10
    gt = COCO(str(out / "annotations" / "instances.json"))
    assert [c["name"] for c in gt.dataset["categories"]] == ["car", "crate", "ball"]  # no floor
    assert gt.dataset["categories"][0]["keypoints"] == ["front", "roof", "hidden"]
    results = [dict(a, score=1.0) for a in gt.dataset["annotations"]]
    for kind in ("bbox", "segm", "keypoints"):
        if kind == "keypoints":  # objects that declare keypoints, as a keypoint detector reports
            results = [r for r in results if r.get("num_keypoints", 0) > 0]
        ev = COCOeval(gt, gt.loadRes(results), kind)
        if kind == "keypoints":  # the one category with keypoints
            ev.params.catIds = [gt.dataset["categories"][0]["id"]]
            ev.params.kpt_oks_sigmas = np.full(3, 0.05)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        assert ev.stats[0] == pytest.approx(1.0), kind
    with Dataset(data["plain"]) as ds:
        img = gt.dataset["images"][1]
        f = ds.episode(img["simgen_episode"]).frame("cam", img["simgen_frame"])
        anns = gt.loadAnns(gt.getAnnIds(imgIds=[img["id"]]))
        assert {a["simgen_instance_id"] for a in anns} == {2, 3, 4, 5}
        for a in anns:
            i = a["simgen_instance_id"]
            assert np.array_equal(mask_utils.decode(a["segmentation"]), f["instance"] == i)
            u0, v0, u1, v1 = f["box2d_tight"][i - 1].tolist()
            assert a["bbox"] == [u0, v0, u1 - u0, v1 - v0]
            assert a["area"] == f["visible_pixels"][i - 1]
            assert a["visibility"] == pytest.approx(float(f["visibility"][i - 1]))
            assert len(a["amodal_bbox"]) == 4
        car = next(a for a in anns if a["simgen_object"] == "car")
        kp = np.array(car["keypoints"]).reshape(3, 3)
        assert kp[:, 2].tolist() == [2, 2, 1] and car["num_keypoints"] == 3
        assert np.allclose(kp[:, :2], f["keypoints_uv"], atol=1e-4)
    rgb = cv2.imread(str(out / "images" / img["file_name"]))[..., ::-1]
    assert np.array_equal(rgb, f["rgb"])


def _kitti_calib(path: Path) -> dict[str, np.ndarray]:
    out = {}
    for line in path.read_text().splitlines():
        key, vals = line.split(":", 1)
        out[key] = np.array([float(x) for x in vals.split()])
    return out


def _kitti_corners(h, w, l_, loc, ry):  # the KITTI devkit's computeBox3D
    x = np.array([l_, l_, -l_, -l_, l_, l_, -l_, -l_]) / 2
    y = np.array([0, 0, 0, 0, -h, -h, -h, -h])
    z = np.array([w, -w, -w, w, w, -w, -w, w]) / 2
    r = np.array([[np.cos(ry), 0, np.sin(ry)], [0, 1, 0], [-np.sin(ry), 0, np.cos(ry)]])
    return (r @ np.stack([x, y, z])).T + loc


def test_kitti_3d_boxes_reproject_onto_their_2d_boxes_and_lidar_lands_inside(data) -> None:
    from simgen.io.exporters import export
    from simgen.io.reader import Dataset

    out = data["root"] / "kitti"
    summary = export(data["lidar"], "kitti", out)
    root = out / "training"
    assert summary.frames == 2
    rows = (out / "mapping.csv").read_text().splitlines()
    assert rows[1] == "000000,0,cam,0,lidar,0"
    with Dataset(data["lidar"]) as ds:
        ep = ds.episode(0)
        for kid in ("000000", "000001"):
            calib = _kitti_calib(root / "calib" / f"{kid}.txt")
            p2 = calib["P2"].reshape(3, 4)
            r0 = calib["R0_rect"].reshape(3, 3)
            tr = np.vstack([calib["Tr_velo_to_cam"].reshape(3, 4), [0, 0, 0, 1]])
            labels = [
                ln.split() for ln in (root / "label_2" / f"{kid}.txt").read_text().splitlines()
            ]
            assert sorted(x[0] for x in labels) == ["ball", "car", "car", "crate"]
            boxes = {}
            for x in labels:
                h, w, l_, cx, cy, cz, ry = (float(v) for v in x[8:15])
                corners = _kitti_corners(h, w, l_, np.array([cx, cy, cz]), ry)
                uvw = np.hstack([corners, np.ones((8, 1))]) @ p2.T
                uv = uvw[:, :2] / uvw[:, 2:]
                box2d = np.array([float(v) for v in x[4:8]])
                assert float(x[1]) == 0.0 and x[2] == "0"  # all in the image, none hidden
                boxes[tuple(round(float(v), 2) for v in x[4:8])] = (h, w, l_, cx, cy, cz, ry)
                if x[0] == "ball":
                    continue
                # boxes: the 3D box projected with P2 encloses the 2D box (its extreme pixel
                # centers) and differs by less than the pixel sampling of its corners
                assert np.all(uv.min(0) <= box2d[:2] + 1e-6) and np.all(
                    uv.max(0) >= box2d[2:] - 1e-6
                )
                assert np.abs(uv.min(0) - box2d[:2]).max() < 1.5, (kid, x)
                assert np.abs(uv.max(0) - box2d[2:]).max() < 1.5, (kid, x)
                # ... and its corners are the object's own projected corners
                f = ep.frame("cam", int(kid), fields=["box2d_tight", "box3d_corners_uv"])
                i = next(
                    j
                    for j, b in enumerate(f["box2d_tight"])
                    if [b[0], b[1], b[2] - 1, b[3] - 1] == box2d.tolist()
                )
                ours = f["box3d_corners_uv"][i]
                assert np.abs(ours[:, None, :] - uv[None]).sum(-1).min(1).max() < 0.01
            # velodyne points: rect = R0 @ Tr @ x; each object's points lie in its KITTI box
            pts = np.fromfile(root / "velodyne" / f"{kid}.bin", "<f4").reshape(-1, 4)
            lidar = ep.frame("lidar", int(kid), fields=["instance", "points_deskewed_s"])
            assert np.array_equal(pts[:, :3], lidar["points_deskewed_s"])
            rect = (np.hstack([pts[:, :3], np.ones((len(pts), 1))]) @ tr.T)[:, :3] @ r0.T
            f = ep.frame("cam", int(kid))
            for i in (2, 3, 4):  # the three upright boxes
                u0, v0, u1, v1 = f["box2d_tight"][i - 1].tolist()
                h, w, l_, cx, cy, cz, ry = boxes[(u0, v0, u1 - 1, v1 - 1)]
                p = rect[lidar["instance"] == i] - [cx, cy, cz]
                c, s = np.cos(ry), np.sin(ry)
                local = p @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])  # undo R_y(ry)
                assert len(local) > 10
                assert np.all(np.abs(local[:, 0]) <= l_ / 2 + 2e-3)
                assert np.all((local[:, 1] <= 2e-3) & (local[:, 1] >= -h - 2e-3))
                assert np.all(np.abs(local[:, 2]) <= w / 2 + 2e-3)


def test_yolo_detection_and_segmentation_labels(data) -> None:
    import yaml

    from simgen.io.exporters import export
    from simgen.io.reader import Dataset

    out = data["root"] / "yolo"
    export(data["plain"], "yolo", out)
    doc = yaml.safe_load((out / "data.yaml").read_text())
    assert doc["names"] == {0: "car", 1: "crate", 2: "ball"} and doc["train"] == "images"
    assert (out / "segment" / "images" / "000001_cam_000000.png").is_file()  # via the link
    with Dataset(data["plain"]) as ds:
        f = ds.episode(1).frame("cam", 0)
    h, w = f["instance"].shape
    det = [ln.split() for ln in (out / "labels" / "000001_cam_000000.txt").read_text().splitlines()]
    seg = (out / "segment" / "labels" / "000001_cam_000000.txt").read_text().splitlines()
    yolo_of = {2: 0, 3: 0, 4: 1, 5: 2}
    assert len(det) == len(seg) == 4
    for i, (line, sline) in enumerate(zip(det, seg, strict=True)):
        inst = [2, 3, 4, 5][i]
        u0, v0, u1, v1 = f["box2d_tight"][inst - 1]
        c, cx, cy, bw, bh = (float(x) for x in line)
        assert c == yolo_of[inst]
        assert np.allclose(
            [cx * w, cy * h, bw * w, bh * h],
            [(u0 + u1) / 2, (v0 + v1) / 2, u1 - u0, v1 - v0],
            atol=1e-3,
        )
        poly = np.array([float(x) for x in sline.split()[1:]]).reshape(-1, 2) * [w, h]
        raster = np.zeros((h, w), np.uint8)
        cv2.fillPoly(raster, [np.round(poly * 16 - 8).astype(np.int32)], 1, shift=4)
        mask = f["instance"] == inst
        iou = np.sum(mask & (raster > 0)) / np.sum(mask | (raster > 0))
        assert iou > 0.8, (inst, iou)


def test_mask_polygon_joins_pieces_into_one_ring() -> None:
    from simgen.io.exporters.yolo import mask_polygon

    mask = np.zeros((40, 60), bool)
    mask[5:15, 5:20] = True
    mask[25:35, 30:55] = True
    poly = mask_polygon(mask)
    raster = np.zeros((40, 60), np.uint8)
    cv2.fillPoly(raster, [np.round(poly * 16 - 8).astype(np.int32)], 1, shift=4)
    assert np.all(raster[mask] > 0)  # both pieces are covered ...
    assert np.sum((raster > 0) & ~mask) <= 20  # ... plus the one-pixel trace of the bridge


def test_folders_hold_exact_images_depth_in_millimeters_and_ply_points(data) -> None:
    from simgen.io.exporters import export
    from simgen.io.reader import Dataset

    out = data["root"] / "folders"
    export(data["lidar"], "folders", out)
    with Dataset(data["lidar"]) as ds:
        ep = ds.episode(0)
        f = ep.frame("cam", 1)
        lidar = ep.frame("lidar", 1)
    depth = cv2.imread(str(out / "cam" / "depth" / "000000_000001.png"), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16
    assert np.abs(depth / 1000.0 - f["depth_m"]).max() <= 0.0005 + 1e-7
    inst = cv2.imread(str(out / "cam" / "instance" / "000000_000001.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(inst, f["instance"])
    rgb = cv2.imread(str(out / "cam" / "rgb" / "000000_000001.png"))[..., ::-1]
    assert np.array_equal(rgb, f["rgb"])
    meta = [json.loads(x) for x in (out / "cam" / "cameras.jsonl").read_text().splitlines()]
    assert np.allclose(meta[1]["pose_w"], f["pose_w"]) and meta[1]["stem"] == "000000_000001"
    raw = (out / "lidar" / "points" / "000000_000001.ply").read_bytes()
    head, body = raw.split(b"end_header\n", 1)
    assert b"property float intensity" in head and b"property ushort instance" in head
    rec = np.frombuffer(
        body,
        dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4"), ("instance", "<u2")],
    )
    assert np.array_equal(np.stack([rec["x"], rec["y"], rec["z"]], 1), lidar["points_deskewed_s"])
    assert np.array_equal(rec["instance"], lidar["instance"])
    assert json.loads((out / "classes.json").read_text())[1] == {
        "id": 1,
        "name": "floor",
        "stuff": True,
    }


def test_exporters_refuse_a_non_empty_folder_without_force(data, tmp_path) -> None:
    from simgen.errors import OutputError
    from simgen.io.exporters import export

    out = tmp_path / "busy"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not empty"):
        export(data["plain"], "kitti", out)
    export(data["plain"], "kitti", out, force=True)  # a foreign folder: written into, kept
    assert (out / "mine.txt").read_text() == "keep me"
    own = tmp_path / "own"
    export(data["plain"], "coco", own)
    (own / "images" / "stale.png").write_bytes(b"x")
    export(data["plain"], "coco", own, force=True)  # our own previous export: replaced
    assert not (own / "images" / "stale.png").exists()


def simgen_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simgen.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_verify_passes_on_good_data_and_finds_corruption(data, tmp_path) -> None:
    from simgen.io.verify import verify_dataset

    report = verify_dataset(data["lidar"])
    assert report.ok, {c.name: (c.worst, c.where) for c in report.checks.values() if not c.ok}
    checks = report.checks
    assert {"box_tight", "visible_in_amodal", "flow_poses", "lidar_depth", "lidar_ids"} <= set(
        checks
    )
    assert checks["lidar_depth"].worst < 1e-9 and checks["lidar_ids"].worst == 0.0
    assert checks["flow_poses"].worst < 1e-3
    r = simgen_cli("verify", str(data["plain"]))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "flow_scene_flow" in r.stdout
    bad = tmp_path / "bad.h5"
    shutil.copy(data["lidar"], bad)
    with h5py.File(bad, "r+") as f:
        cam = f["episodes/000000/sensors/cam"]
        boxes = cam["box2d_tight"][0]
        boxes[1, 2] += 1
        cam["box2d_tight"][0] = boxes
        flow = cam["flow_fwd_px"][0]
        flow[cam["instance"][0] == 5] += 0.5  # the ball's flow, off by half a pixel
        cam["flow_fwd_px"][0] = flow
        ids = f["episodes/000000/sensors/lidar/instance"]
        ids[:200] = 4
    report = verify_dataset(bad)
    failed = {c.name for c in report.checks.values() if not c.ok}
    # each corruption is caught by its own check (and a widened box also pokes out of its
    # amodal box; shifted flow also lands on the wrong depth); untouched labels still pass
    assert failed == {
        "box_tight",
        "tight_in_amodal",
        "flow_scene_flow",
        "flow_poses",
        "flow_visible_depth",
        "lidar_ids",
    }
    assert report.checks["flow_poses"].worst == pytest.approx(0.5, abs=1e-3)
    r = simgen_cli("verify", str(bad))
    assert r.returncode == 1 and "FAIL" in r.stdout
    r = simgen_cli("verify", str(tmp_path / "missing.h5"))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_export_cli_reports_and_refuses(data, tmp_path) -> None:
    out = tmp_path / "k"
    r = simgen_cli("export", str(data["plain"]), "--format", "kitti", "--out", str(out))
    assert r.returncode == 0 and "4 frames" in r.stdout, r.stderr
    r = simgen_cli("export", str(data["plain"]), "--format", "kitti", "--out", str(out))
    assert r.returncode == 2 and "--force" in r.stderr and "Traceback" not in r.stderr
    r = simgen_cli("export", str(data["plain"]), "--format", "voc", "--out", str(tmp_path / "v"))
    assert r.returncode == 2 and "coco, kitti, yolo, folders" in r.stderr
