"""A randomized tabletop dataset, built in Python with the same models as scene files.

Every episode scatters 4-8 objects drawn from a pool of 100 of pybullet's random URDFs onto a
table (no overlaps, dropped and settled before t = 0), gives them random colors, moves the
camera and the sun, draws the sun's color from a custom sampler (a color temperature,
registered explicitly), and rejects episodes where fewer than 3 objects are in view.

    python examples/randomized_tabletop.py --episodes 20 --out out/tabletop_dr.h5
    simgen params out/tabletop_dr.h5 --by parameter
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

import simgen
from simgen import dist


def color_temperature(rng: np.random.Generator, kelvin: list[float]) -> list[float]:
    """RGB in [0, 1] of a black body at a temperature drawn uniformly from ``kelvin``
    (Tanner Helland's fit of the Planckian locus, normalized to the brightest channel)."""
    t = float(rng.uniform(*kelvin)) / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = (
        99.4708025861 * math.log(t) - 161.1195681661
        if t <= 66
        else 288.1221695283 * (t - 60) ** -0.0755148492
    )
    b = (
        255.0
        if t >= 66
        else (0.0 if t <= 19 else 138.5177312231 * math.log(t - 10) - 305.0447927307)
    )
    rgb = np.clip([r, g, b], 0, 255)
    return [float(c) for c in rgb / rgb.max()]


def build_scene(width: int, height: int, duration: float) -> simgen.Scene:
    return simgen.Scene(
        schema_version=1,
        name="randomized_tabletop",
        simulation=simgen.Simulation(duration=duration, timestep=1 / 240),
        objects=[
            simgen.Plane(
                name="floor",
                class_name="floor",
                size=(20, 20),
                material=simgen.Material(color=dist.hsv(saturation=(0, 0.3), value=(0.3, 0.7))),
            ),
            simgen.Urdf(
                name="table", class_name="table", asset="pybullet:table/table.urdf", static=True
            ),
        ],
        scatter=[
            simgen.Scatter(
                name="toy",
                class_name="toy",
                count=dist.randint(4, 8),
                assets=dist.files("pybullet:random_urdfs", "*/*.urdf", pool_size=100),
                unique=True,
                scale=dist.uniform(1.5, 2.5),
                material=simgen.Material(color=dist.hsv(saturation=(0.5, 1), value=(0.4, 1))),
                region={"on_top_of": {"object": "table", "margin": 0.05}},
                orientation=dist.uniform_rotation(),
                min_gap=0.01,
            )
        ],
        lights=[
            simgen.AmbientLight(intensity=dist.uniform(0.2, 0.5)),
            simgen.DirectionalLight(
                direction=dist.in_box((-0.4, 0.2, -1.0), (0.6, 0.6, 0.0)),
                intensity=dist.uniform(1.5, 3.5),
                color=dist.custom("color_temperature", kelvin=[3000, 8000]),
            ),
        ],
        sensors=[
            simgen.Camera(
                name="front",
                resolution=(width, height),
                intrinsics={"fov_deg": 50},
                look_at=simgen.LookAt(
                    eye=dist.in_shell((0, 0, 1.4), 1.1, 1.4), target=(0, 0, 0.63)
                ),
                rate_hz=10,
            )
        ],
        require=[{"in_view": {"camera": "front", "min": 3, "group": "toy"}}],
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("out/tabletop_dr.h5"))
    ap.add_argument("--resolution", default="320x240", help="WxH")
    ap.add_argument("--duration", type=float, default=1.0)
    args = ap.parse_args()
    w, h = (int(x) for x in args.resolution.split("x"))
    registry = simgen.Registry().add_sampler("color_temperature", color_temperature)
    scene = build_scene(w, h, args.duration)
    with simgen.Simulator(registry=registry) as sim:
        summary = simgen.render_dataset(
            scene,
            args.out,
            episodes=range(args.episodes),
            seed=args.seed,
            simulator=sim,
            overwrite=True,
        )
    print(f"wrote {summary.path}: {len(summary.episodes)} episodes, {summary.frames} frames")
    with simgen.open_dataset(args.out) as ds:
        for ep in ds:
            p = ep.params
            toys = p["placement"]["scatter"]["toy"]
            print(
                f"episode {ep.index}: {toys['count']} toys, tries {p['tries']}, "
                f"settled in {p['placement']['settle_time']:.2f} s"
            )


if __name__ == "__main__":
    main()
