"""The report's sample gallery: a few frames per group of episodes (grouped by which scenarios
happened and by weather, when the scene has a ``weather`` block), drawn with simgen.viz: RGB
with instance masks and labeled boxes, colorized depth, and for a LiDAR its bird's-eye view
and its points projected on the image."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from simgen.io.reader import Dataset, Episode

MAX_WIDTH = 400  # gallery images are downscaled to at most this width
MIN_WIDTH = 320  # smaller frames are enlarged (nearest neighbour) before labels are drawn
PNG_PIXELS = 320 * 240  # smaller images are PNG, larger JPEG (quality 88)


def weather_label(params: dict[str, Any]) -> str | None:
    """A short name of the episode's weather: the resolved ``weather`` block's ``preset``,
    else its sampled values; None when the scene has no weather."""
    scene = params.get("scene") or {}
    w = scene.get("weather")
    if isinstance(w, dict) and w.get("preset"):
        return str(w["preset"])
    sampled = {
        k: v
        for k, v in (params.get("sampled") or {}).items()
        if k.split(".")[0].startswith("weather")
    }
    if sampled:
        return ", ".join(
            f"{k.removeprefix('weather.')}={_short(v)}" for k, v in sorted(sampled.items())
        )
    if isinstance(w, dict):
        return "weather"
    if isinstance(w, str):
        return w
    return None


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else json.dumps(v)[:24]


def group_key(ep: Episode, params: dict[str, Any]) -> str:
    on = [n for n, v in ep.scenarios().items() if v]
    key = "scenarios: " + (", ".join(on) if on else "none")
    weather = weather_label(params)
    return key + (f" · weather: {weather}" if weather else "")


def encode_image(img: np.ndarray, max_width: int = MAX_WIDTH) -> str:
    """A data URI of an RGB image (downscaled to ``max_width``)."""
    h, w = img.shape[:2]
    if w > max_width:
        img = cv2.resize(
            img, (max_width, max(1, round(h * max_width / w))), interpolation=cv2.INTER_AREA
        )
    bgr = np.ascontiguousarray(img[..., ::-1]) if img.ndim == 3 else img
    if img.shape[0] * img.shape[1] <= PNG_PIXELS:
        ok, buf = cv2.imencode(".png", bgr)
        mime = "image/png"
    else:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 88])
        mime = "image/jpeg"
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise ValueError("could not encode an image")
    return f"data:{mime};base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def boxes_overlay(
    rgb: np.ndarray, instance: np.ndarray, boxes: np.ndarray, labels: dict[int, str]
) -> np.ndarray:
    """RGB with instance masks tinted and outlined and the boxes of ``labels``' instances."""
    from simgen.viz import overlay, palette

    out = overlay(rgb, instance)
    colors = palette(int(max(labels, default=0)) + 1)
    scale = max(1, round(rgb.shape[1] / 320))
    for iid, name in labels.items():
        u0, v0, u1, v1 = (int(x) for x in boxes[iid - 1])
        if u1 <= u0 or v1 <= v0:
            continue
        c = tuple(int(x) for x in colors[iid])
        cv2.rectangle(out, (u0, v0), (u1 - 1, v1 - 1), c, scale)
        cv2.putText(out, name, (u0, max(v0 - 2, 9)), cv2.FONT_HERSHEY_PLAIN, 0.9 * scale, c, 1)
    return out


def _frame_at(ep: Episode, camera: str, time: float | None) -> int:
    n = ep.num_frames(camera)
    if time is None:
        return n // 2
    times = ep.g["sensors"][camera]["time"][()]
    later = np.nonzero(times >= time)[0]
    return int(later[0]) if len(later) else n - 1


def sample_images(
    ep: Episode, camera: str, k: int, classes: list[str], stuff: list[bool]
) -> dict[str, str]:
    """The gallery images of frame ``k`` of ``camera``, as data URIs."""
    from simgen.labels.boxes import mask_boxes
    from simgen.viz import colorize_depth

    f = ep.frame(
        camera,
        k,
        [x for x in ("rgb", "instance", "depth_m", "box2d_tight", "K") if x in ep.fields(camera)],
    )
    out: dict[str, str] = {}
    objs = {o["instance_id"]: o for o in ep.objects}
    n = max(objs, default=0)
    if "instance" in f and "box2d_tight" not in f:
        f["box2d_tight"] = mask_boxes(f["instance"], n)[0]
    f = _upscaled(f)
    if "rgb" in f and "instance" in f:
        boxes = f["box2d_tight"]
        present = {int(i) for i in np.unique(f["instance"]) if i > 0}
        labels = {
            i: classes[objs[i]["class_id"]]
            for i in present
            if i in objs and not stuff[objs[i]["class_id"]]
        }
        out["objects"] = encode_image(boxes_overlay(f["rgb"], f["instance"], boxes, labels))
    elif "rgb" in f:
        out["rgb"] = encode_image(f["rgb"])
    if "depth_m" in f:
        out["depth"] = encode_image(colorize_depth(f["depth_m"]))
    t = float(ep.g["sensors"][camera]["time"][k])
    for name, kind in ep.sensors.items():
        if kind == "lidar" and ep.num_frames(name):
            out.update(_lidar(ep, name, camera, t, f, len(classes)))
            break
    return out


def _upscaled(f: dict[str, Any]) -> dict[str, Any]:
    """Small frames enlarged (nearest neighbour) to at least MIN_WIDTH pixels, so that labels
    drawn on them stay legible; boxes and K scaled to match (pixel centers at integers)."""
    w = next((a.shape[1] for key, a in f.items() if key in ("rgb", "instance", "depth_m")), 0)
    s = -(-MIN_WIDTH // w) if 0 < w < MIN_WIDTH else 1
    if s == 1:
        return f
    out = dict(f)
    for key in ("rgb", "instance", "depth_m"):
        if key in f:
            out[key] = np.repeat(np.repeat(f[key], s, axis=0), s, axis=1)
    if "box2d_tight" in f:
        out["box2d_tight"] = f["box2d_tight"] * s
    if "K" in f:
        k = np.array(f["K"], np.float64)
        k[:2, :2] *= s
        k[:2, 2] = s * k[:2, 2] + (s - 1) / 2
        out["K"] = k
    return out


def _lidar(
    ep: Episode, lidar: str, camera: str, t: float, cam: dict[str, Any], n_classes: int
) -> dict[str, str]:
    from simgen.geometry import transform_points
    from simgen.io.layout import LIDAR_POINTS
    from simgen.viz import bev_image, draw_points, palette

    times = ep.g["sensors"][lidar]["time"][()]
    j = int(np.argmin(np.abs(times - t)))
    d = ep.frame(lidar, j, [LIDAR_POINTS, "semantic", "range_m", "pose_w"])
    pts = d[LIDAR_POINTS].astype(np.float64)
    extent = float(np.percentile(d["range_m"], 98)) if len(pts) else 10.0
    out = {
        "lidar (bird's-eye)": encode_image(
            bev_image(pts, d["semantic"], n_classes, extent_m=max(extent, 5.0), size_px=400)
        )
    }
    if "rgb" in cam and "K" in cam:
        c = ep.frame(camera, _nearest(ep, camera, t), ["extrinsics_w2c"])
        pts_c = transform_points(c["extrinsics_w2c"] @ d["pose_w"], pts)
        colors = palette(max(n_classes, int(d["semantic"].max(initial=0)) + 1))
        out["lidar on image"] = encode_image(
            draw_points(cam["rgb"], pts_c, cam["K"], colors[d["semantic"]], radius=2)
        )
    return out


def _nearest(ep: Episode, camera: str, t: float) -> int:
    times = ep.g["sensors"][camera]["time"][()]
    return int(np.argmin(np.abs(times - t)))


def gallery(
    path: str | Path, *, per_group: int = 2, max_groups: int = 8, camera: str | None = None
) -> list[dict[str, Any]]:
    """Groups of samples: ``[{"group": title, "samples": [{"episode", "camera", "frame",
    "time", "images": {name: data URI}}]}]``. Within a group, the first episodes; in each,
    the frame at its first event (else the middle frame) of the first camera (or ``camera``)."""
    chosen: dict[str, list[tuple[int, float | None]]] = {}
    with Dataset(path) as ds:
        stuff = (
            [bool(x) for x in ds.file["class_is_stuff"][()]]
            if "class_is_stuff" in ds.file
            else [False] * len(ds.classes)
        )
        # the resolved parameters (a JSON parse per episode) only matter for weather
        weather = "weather" in json.loads(ds.attrs.get("scene_json") or "{}")
        for ep in ds:
            key = group_key(ep, ep.params if weather else {})
            if key not in chosen and len(chosen) >= max_groups:
                continue
            picks = chosen.setdefault(key, [])
            if len(picks) < per_group:
                events = ep.events()
                picks.append((ep.index, float(events[0]["start_time"]) if events else None))
        groups = []
        for key, picks in chosen.items():
            samples = []
            for index, t in picks:
                ep = ds.episode(index)
                cams = [n for n, k in ep.sensors.items() if k == "camera"]
                cam = camera if camera in cams else (cams[0] if cams else None)
                if cam is None or ep.num_frames(cam) == 0:
                    continue
                k = _frame_at(ep, cam, t)
                samples.append(
                    {
                        "episode": index,
                        "camera": cam,
                        "frame": k,
                        "time": float(ep.g["sensors"][cam]["time"][k]),
                        "images": sample_images(ep, cam, k, ds.classes, stuff),
                    }
                )
            if samples:
                groups.append({"group": key, "samples": samples})
    return groups
