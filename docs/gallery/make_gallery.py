"""Render docs/gallery: the street and warehouse scenes under every weather preset.

    python docs/gallery/make_gallery.py [--out docs/gallery] [--width 320] [--presets clear,fog_dense]

For each scene and preset: one camera frame (the weather's ``rgb``) next to a bird's-eye view of
the LiDAR sweep ending at the same time (points colored by class; weather returns in white),
written as ``<scene>_<preset>.png``, plus README.md listing them.

Each scene is changed in the same way for every preset: its ambient and directional lights and
its background give way to a ``lighting`` block (so cloud cover and night act), its point and
spot lights stay (the warehouse's ceiling lamps), at night the street's ego car turns on two
headlights (spot lights attached to it), and the LiDAR gets a detection threshold of 0.003 (a 10% target seen to
about 58 m, closer to real spinning sensors than simgen's very sensitive default; see
docs/weather.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from simgen.effects.state import WEATHER_PRESETS
from simgen.random.sample import sample_episode
from simgen.run.episode import Simulator
from simgen.run.records import SensorFrame
from simgen.scene.lights import PointLight, SpotLight
from simgen.scene.loader import load_scene
from simgen.scene.types import Attachment
from simgen.scene.weather import Lighting, Weather
from simgen.viz import bev_image

SCENES = {
    # scene: (camera, lidar, time of the frame in s, BEV extent in m)
    "street": ("front", "roof_lidar", 0.3, 40.0),
    "warehouse": ("aisle", "flash", 0.3, 12.0),
}
HEADLIGHTS = [
    SpotLight(
        kind="spot",
        name=f"headlight_{side}",
        position=(2.3, y, 0.0),
        direction=(1.0, 0.0, -0.06),
        intensity=20.0,
        inner_cone_deg=10.0,
        outer_cone_deg=25.0,
        range=80.0,
        color=(1.0, 0.95, 0.85),
        attach_to=Attachment(object="ego"),
    )
    for side, y in (("left", 0.7), ("right", -0.7))
]


def gallery_scene(name: str, preset: str):  # type: ignore[no-untyped-def]
    scene = load_scene(ROOT / "scenes" / f"{name}.yaml")
    lights = [light for light in scene.lights if isinstance(light, (PointLight, SpotLight))]
    if name == "street" and WEATHER_PRESETS[preset].time_of_day == "night":
        lights += HEADLIGHTS
    sensors = []
    for s in scene.sensors:
        if s.kind == "camera":
            s = s.model_copy(update={"labels": []})
        elif s.kind == "lidar":
            s = s.model_copy(update={"detection_threshold": 0.003})
        sensors.append(s)
    cam, lidar, t, _ = SCENES[name]
    keep = [s for s in sensors if s.name in (cam, lidar)]
    sim = scene.simulation.model_copy(update={"duration": t + 0.02})
    return scene.model_copy(
        update={
            "lights": lights,
            "background": None,
            "lighting": Lighting(),
            "weather": Weather(preset=preset),  # type: ignore[arg-type]
            "sensors": keep,
            "simulation": sim,
        }
    )


def render(sim: Simulator, name: str, preset: str, width: int) -> np.ndarray:
    scene = gallery_scene(name, preset)
    cam, lidar, t, extent = SCENES[name]
    params = sample_episode(scene, 0, 0)
    frames = [r for r in sim.run(params) if isinstance(r, SensorFrame)]
    camera = [f for f in frames if f.sensor == cam and f.time <= t + 1e-9][-1]
    sweep = [f for f in frames if f.sensor == lidar][-1]
    rgb = camera.arrays["rgb"]
    h = round(rgb.shape[0] * width / rgb.shape[1])
    small = cv2.resize(rgb, (width, h), interpolation=cv2.INTER_AREA)
    n_classes = len(scene.class_table())
    weather_id = scene.class_table().index("weather")
    pts, sem = sweep.ragged["points_deskewed_s"], sweep.ragged["semantic"]
    size = 2 * h
    solid = sem != weather_id
    bev = bev_image(pts[solid], sem[solid], n_classes, extent_m=extent, size_px=size)
    # weather returns (fog, drops, flakes) in white
    scale, c = size / (2.0 * extent), size / 2.0
    u = np.rint(c - pts[~solid, 1] * scale).astype(int)
    v = np.rint(c - pts[~solid, 0] * scale).astype(int)
    ok = (u >= 0) & (u < size - 1) & (v >= 0) & (v < size - 1)
    for du, dv in ((0, 0), (1, 0), (0, 1), (1, 1)):
        bev[v[ok] + dv, u[ok] + du] = 255
    bev = cv2.resize(bev, (h, h), interpolation=cv2.INTER_AREA)
    tile = np.concatenate([small, np.full((h, 4, 3), 255, np.uint8), bev], axis=1)
    label = f"{name} / {preset}"
    cv2.rectangle(tile, (0, 0), (8 + 8 * len(label), 20), (0, 0, 0), -1)
    cv2.putText(
        tile, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA
    )
    return tile


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "gallery"))
    ap.add_argument("--width", type=int, default=320, help="camera image width in the gallery")
    ap.add_argument("--presets", default=",".join(WEATHER_PRESETS))
    ap.add_argument("--scenes", default=",".join(SCENES))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    presets = [p for p in args.presets.split(",") if p]
    names = [s for s in args.scenes.split(",") if s]
    rows = []
    with Simulator() as sim:
        for name in names:
            for preset in presets:
                tile = render(sim, name, preset, args.width)
                path = out / f"{name}_{preset}.png"
                cv2.imwrite(str(path), tile[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
                rows.append((name, preset, path.name))
                print(f"{path} {path.stat().st_size // 1024} KiB")  # noqa: T201
    lines = [
        "# Gallery: every weather preset on the example scenes",
        "",
        "Generated by `python docs/gallery/make_gallery.py` (see its docstring for how the",
        "scenes are adapted: a `lighting` block replaces their sun and sky, the street's ego car",
        "turns its headlights on at night, and the LiDARs detect down to an intensity of 0.003,",
        "about a real spinning sensor's sensitivity; wet floors reflect the warehouse's lamps).",
        "Left: the camera image (`rgb`, after the weather); right: the",
        "LiDAR sweep from above (sensor at the cross, rings every 10 m, points colored by class;",
        "returns of fog, rain drops and snowflakes, class `weather`, in white). Formulas:",
        "[../weather.md](../weather.md).",
        "",
    ]
    for name in names:
        lines += [f"## {name}", ""]
        for n, preset, file in rows:
            if n == name:
                lines += [f"### `{preset}`", "", f"![{name} {preset}]({file})", ""]
    (out / "README.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
