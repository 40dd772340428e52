"""Cost of weather and sensor effects per camera frame and per LiDAR sweep.

Camera (street scene, ``front`` camera at ``--width`` x ``--height``, no labels):

* the frame: render (RGB + depth + ids) through the episode pipeline, ms per frame;
* each effect alone, timed as a pure function on that frame's arrays (minimum of ``--repeat``);
* the full stack end to end (fog + heavy rain + motion blur + vignetting + chromatic aberration
  + exposure + noise + JPEG), with and without lens distortion, against the frame.

LiDAR (street scene, ``hdl-64e`` with ``--columns`` columns: 64 x 2048 = 131072 rays):

* the sweep's weather stage (attenuation, fog backscatter, particle sampling, strongest return)
  as pure functions on one clean sweep's ranges;
* whole sweeps end to end under each weather, against the clear sweep.

    python benchmarks/bench_effects.py [--width 640 --height 480] [--columns 2048] [--repeat 5]
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from simgen.effects import camera as fx
from simgen.effects.color import decode, encode
from simgen.effects.lidar_weather import (
    BACKSCATTER_PER_EXTINCTION,
    BeamOptics,
    sample_particle_returns,
    strongest_returns,
)
from simgen.effects.particles import composite, far_distance, rasterize, sample_particles
from simgen.effects.state import WEATHER_PRESETS, WeatherState, beta_from_visibility
from simgen.random.sample import sample_episode
from simgen.run.episode import Simulator
from simgen.run.records import SensorFrame
from simgen.scene.effects import (
    CameraEffects,
    ChromaticAberration,
    Distortion,
    Jpeg,
    Noise,
    Vignetting,
)
from simgen.scene.loader import load_scene
from simgen.scene.weather import Weather
from simgen.sensors.camera import scene_with_resolution
from simgen.sensors.lens import Lens, pixel_rays, project_distorted

ROOT = Path(__file__).resolve().parents[1]
CAMERA, LIDAR = "front", "roof_lidar"


def best_ms(fn: Callable[[], Any], repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, 1000 * (time.perf_counter() - t0))
    return best


def camera_scene(width: int, height: int, **update: Any):  # type: ignore[no-untyped-def]
    base = scene_with_resolution(load_scene(ROOT / "scenes" / "street.yaml"), width, height)
    cam = next(s for s in base.sensors if s.name == CAMERA)
    cam = cam.model_copy(update={"labels": update.pop("labels", []), **update.pop("camera", {})})
    return base.model_copy(update={"sensors": [cam], **update})


def frame_ms(sim: Simulator, scene: Any, repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        n = sum(isinstance(r, SensorFrame) for r in sim.run(sample_episode(scene, 0, 0)))
        best = min(best, 1000 * sim.timings["sensors"] / n)
    return best


def camera_bench(sim: Simulator, args: argparse.Namespace) -> None:
    w, h, rep = args.width, args.height, args.repeat
    plain = camera_scene(w, h)
    base = frame_ms(sim, plain, rep)
    # one frame's arrays (with its optical flow, for a true motion field)
    frames = [
        r
        for r in sim.run(sample_episode(camera_scene(w, h, labels=["flow"]), 0, 0))
        if isinstance(r, SensorFrame)
    ]
    f = frames[len(frames) // 2]
    k = f.static["K"]
    rgb, depth = f.arrays["rgb"], f.arrays["depth_m"]
    rays = pixel_rays(k, None, w, h).astype(np.float32)
    norm = np.sqrt(1 + (rays**2).sum(-1)).astype(np.float32)
    lin = decode(rgb)
    beta = beta_from_visibility(300.0)
    air = np.array([0.6, 0.62, 0.65], np.float32)
    half = f.arrays["flow_fwd_px"] * (0.005 * 10.0)  # 5 ms of motion at 10 Hz frames
    rain = WeatherState(rain_mm_h=25.0).rain
    rng = np.random.default_rng(0)
    bounds = (
        float(rays[..., 0].min()) * 1.3,
        float(rays[..., 0].max()) * 1.3,
        float(rays[..., 1].min()) * 1.3,
        float(rays[..., 1].max()) * 1.3,
    )
    edges, _ = rain.bins()
    mid = np.sqrt(edges[1:] * edges[:-1])
    z_far = far_distance(mid, rain.fall_speed(mid), float(k[0, 0]), 0.01)

    def project(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return project_distorted(k, None, p)

    def rain_fx() -> None:
        p = sample_particles(
            rain,
            rng,
            bounds_n=bounds,
            z_far=z_far,
            velocity_c_of=lambda d: np.c_[
                np.zeros((len(d), 1)), rain.fall_speed(d), np.zeros((len(d), 1))
            ],
        )
        composite(lin.copy(), rasterize(p, project, float(k[0, 0]), 0.01, depth), air)

    snow = WeatherState(snow_mm_h=2.5).snow
    z_far_s = far_distance(snow.geometric_diameter(mid), snow.fall_speed(mid), float(k[0, 0]), 0.01)

    def snow_fx() -> None:
        p = sample_particles(
            snow,
            rng,
            bounds_n=bounds,
            z_far=z_far_s,
            velocity_c_of=lambda d: np.c_[
                np.zeros((len(d), 1)), snow.fall_speed(d), np.zeros((len(d), 1))
            ],
        )
        composite(lin.copy(), rasterize(p, project, float(k[0, 0]), 0.01, depth), air)

    ca = fx.chromatic_maps(k, w, h, 1.0)
    vig = fx.vignetting_gain(norm, 1.0)
    lens = Lens.build(k, np.array([-0.28, 0.08, 0.0, 0.0, 0.0]), w, h)
    canvas = np.zeros((lens.canvas_size[1], lens.canvas_size[0], 3), np.uint8)
    canvas_d = np.zeros(canvas.shape[:2], np.float32)
    rows = [
        ("decode + encode (linear RGB)", lambda: encode(decode(rgb))),
        (
            "fog (Koschmieder, per-pixel distance)",
            lambda: fx.koschmieder(lin.copy(), fx.distance_from_depth(depth, norm), beta, air),
        ),
        ("rain 25 mm/h (sample, rasterize, composite)", rain_fx),
        ("snow 2.5 mm/h (sample, rasterize, composite)", snow_fx),
        ("motion blur (given the motion field)", lambda: fx.motion_blur(lin, half)),
        ("vignetting", lambda: lin * vig[..., None]),
        ("chromatic aberration", lambda: fx.chromatic_aberration(lin, ca)),
        (
            "exposure + Poisson-Gaussian noise",
            lambda: fx.sensor_response(lin.copy(), 0.01, 1.0, np.random.default_rng(1), 1e4, 3.0),
        ),
        ("JPEG quality 90", lambda: fx.jpeg(rgb, 90)),
        (
            "lens: resample RGB + 4 label maps",
            lambda: (lens.bilinear(canvas), *(lens.nearest(canvas_d) for _ in range(4))),
        ),
    ]
    print(
        f"\ncamera: street '{CAMERA}' at {w}x{h}; frame (render RGB + depth + ids): {base:.1f} ms"
    )
    print(f"{'effect (pure function on one frame)':48s} {'ms':>7s} {'of frame':>9s}")
    for name, fn in rows:
        ms = best_ms(fn, rep)
        print(f"{name:48s} {ms:7.2f} {100 * ms / base:8.1f}%")
    effects = CameraEffects(
        motion_blur=True,
        vignetting=Vignetting(),
        chromatic_aberration=ChromaticAberration(),
        noise=Noise(),
        jpeg=Jpeg(quality=90),
    )
    weather = Weather(rain_mm_h=25.0, fog={"visibility_m": 300.0})  # type: ignore[arg-type]
    full = camera_scene(w, h, camera={"effects": effects}, weather=weather)
    lens_full = camera_scene(
        w,
        h,
        camera={"effects": effects, "distortion": Distortion(k1=-0.28, k2=0.08)},
        weather=weather,
    )
    lens_only = camera_scene(w, h, camera={"distortion": Distortion(k1=-0.28, k2=0.08)})
    print(f"\n{'end to end (ms per frame, min of repeats)':48s} {'ms':>7s} {'added':>9s}")
    base = frame_ms(sim, plain, rep)  # again, alternating with the others
    for name, scene in (
        ("no effects (the frame)", plain),
        ("full stack: fog + rain + sensor effects", full),
        ("lens distortion alone (canvas render + resample)", lens_only),
        ("full stack + lens distortion", lens_full),
    ):
        ms = frame_ms(sim, scene, rep)
        print(f"{name:48s} {ms:7.1f} {100 * (ms - base) / base:8.1f}%")


def lidar_bench(sim: Simulator, args: argparse.Namespace) -> None:
    base = load_scene(ROOT / "scenes" / "street.yaml")
    lid = next(s for s in base.sensors if s.name == LIDAR)
    lid = lid.model_copy(update={"preset": "hdl-64e", "columns": args.columns, "noise": lid.noise})
    sim_ = base.simulation.model_copy(update={"duration": 0.15})
    scene = base.model_copy(update={"sensors": [lid], "simulation": sim_})

    def sweep_ms(s: Any) -> tuple[float, Any]:
        best, frame = math.inf, None
        for _ in range(args.repeat):
            frames = [r for r in sim.run(sample_episode(s, 0, 0)) if isinstance(r, SensorFrame)]
            best = min(best, 1000 * sim.timings["sensors"] / len(frames))
            frame = frames[0]
        return best, frame

    clear_ms, f = sweep_ms(scene)
    rays = f.arrays["range_image"].size
    r0 = f.arrays["range_image"].T.ravel().astype(np.float64)  # firing order
    inten = f.arrays["intensity_image"].T.ravel().astype(np.float64)
    hard_range = np.where(r0 > 0, r0, np.inf)
    optics = BeamOptics(3e-3, 0.01)
    common = {"r_ref": 10.0, "threshold": 2e-4, "r_min": 0.9, "r_max": 120.0}
    print(
        f"\nLiDAR: street, hdl-64e x {args.columns} columns = {rays} rays; clear sweep "
        f"{clear_ms:.1f} ms end to end"
    )
    print(f"{'weather stage (pure functions on one sweep)':48s} {'ms':>7s} {'of sweep':>9s}")
    for preset in ("fog_light", "fog_dense", "rain_heavy", "snow"):
        p = WEATHER_PRESETS[preset]
        ws = WeatherState(
            fog_extinction_per_m=beta_from_visibility(p.visibility_m) if p.visibility_m else 0.0,
            rain_mm_h=p.rain_mm_h,
            snow_mm_h=p.snow_mm_h,
        )
        alpha = ws.extinction_per_m

        def stage(ws: WeatherState = ws, alpha: float = alpha) -> None:
            rng = np.random.default_rng(0)
            parts = [
                sample_particle_returns(d, hard_range, optics, alpha=alpha, rng=rng, **common)
                for d in (ws.rain, ws.snow)
                if not d.empty
            ]
            strongest_returns(
                hard_range,
                inten * np.exp(-2 * alpha * np.nan_to_num(hard_range, posinf=0)),
                fog_beta=BACKSCATTER_PER_EXTINCTION * ws.fog_extinction_per_m,
                alpha=alpha,
                particles=parts,
                rng=rng,
                **common,
            )

        ms = best_ms(stage, args.repeat)
        print(f"{preset:48s} {ms:7.2f} {100 * ms / clear_ms:8.1f}%")
    print(f"\n{'whole sweep end to end (ms, min of repeats)':48s} {'ms':>7s} {'added':>9s}")
    for preset in ("clear", "fog_light", "fog_dense", "rain_heavy", "snow"):
        s = scene.model_copy(update={"weather": Weather(preset=preset)})  # type: ignore[arg-type]
        ms, _ = sweep_ms(s)
        print(f"{preset:48s} {ms:7.1f} {100 * (ms - clear_ms) / clear_ms:8.1f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--columns", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip-lidar", action="store_true")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {platform.python_version()}, repeat {args.repeat}")
    with Simulator() as sim:
        camera_bench(sim, args)
        if not args.skip_lidar:
            lidar_bench(sim, args)


if __name__ == "__main__":
    main()
