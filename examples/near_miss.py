"""A scripted near-miss: a pedestrian steps out in front of a car, which brakes when close.

The scene is built in Python: the car's speed and the moment the pedestrian appears are random;
a trigger calls a Python action (``brake``, registered explicitly) when the pedestrian comes
within the braking distance, and that action fires a braking ``force`` event lasting until the
car stops. The episode runs interactively: frames are iterated as they are rendered, a step
callback tracks the closest approach, and the events are printed with their times. With
``--out`` the episodes are also written to a dataset (with their event labels).

    python examples/near_miss.py --episodes 5
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from pathlib import Path

import numpy as np

import simgen
from simgen import dist
from simgen.io.writer import DatasetWriter
from simgen.run.records import SensorFrame
from simgen.scenario.runtime import ActionContext
from simgen.scenario.spec import Force

CAR_MASS = 1500.0
DECELERATION = 7.0  # m/s^2, hard braking


def brake(ctx: ActionContext, deceleration: float) -> None:
    """Brake the car to a stop: a constant force against its velocity for v / a seconds."""
    b = ctx.world.body("car")
    v = np.asarray(ctx.world.client.getBaseVelocity(b.body_id)[0])
    speed = float(np.linalg.norm(v[:2]))
    if speed < 1e-3:
        return
    force = -CAR_MASS * deceleration * v / speed
    ctx.fire(
        "brake",
        Force(force={"object": "car", "force": tuple(force.tolist())}),
        duration=speed / deceleration,
    )


def build_scene(width: int, height: int) -> simgen.Scene:
    return simgen.Scene(
        schema_version=1,
        name="near_miss",
        simulation=simgen.Simulation(duration=4.0, timestep=0.01),
        classes=["road", "vehicle", "pedestrian"],
        objects=[
            simgen.Plane(
                name="road", class_name="road", material=simgen.Material(color=(0.25, 0.25, 0.27))
            ),
            simgen.Box(
                name="car",
                class_name="vehicle",
                size=(4.5, 1.8, 1.4),
                mass=CAR_MASS,
                friction=0.0,
                pose=simgen.Pose(position=(0, 0, 0.7)),
                velocity=simgen.Velocity(linear=(dist.uniform(8, 14), 0, 0)),
                material=simgen.Material(color=dist.hsv(saturation=(0.6, 1), value=(0.5, 0.9))),
            ),
        ],
        sensors=[
            simgen.Camera(
                name="dashcam",
                resolution=(width, height),
                intrinsics={"fov_deg": 60},
                attach_to=simgen.Attachment(object="car"),
                pose=simgen.Pose(position=(2.3, 0, 0.3)),
                rate_hz=10,
            )
        ],
        scenarios=[
            simgen.Scenario(
                name="crossing",
                template={
                    "pedestrian_crossing": {
                        "vehicle": "car",
                        "at": dist.uniform(0.2, 0.8),
                        "ahead": dist.uniform(14, 20),
                        "lateral": 3.0,
                        "speed": 1.6,
                        "near_miss": 3.0,
                    }
                },
                triggers=[
                    {
                        "name": "brake",
                        "when": {"distance_below": {"a": "car", "b": "pedestrian", "distance": 12}},
                        "action": {
                            "call": {"name": "brake", "args": {"deceleration": DECELERATION}}
                        },
                    }
                ],
            )
        ],
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resolution", default="320x240", help="WxH")
    ap.add_argument("--out", type=Path, default=None, help="also write a dataset here")
    args = ap.parse_args()
    w, h = (int(x) for x in args.resolution.split("x"))
    scene = build_scene(w, h)
    registry = simgen.Registry().add_action("brake", brake)
    out = DatasetWriter(args.out, scene, args.seed, overwrite=True) if args.out else nullcontext()
    with out as writer, simgen.Simulator(registry=registry) as sim:
        for index in range(args.episodes):
            closest = [np.inf]

            def track(ctx: ActionContext, closest: list[float] = closest) -> None:
                p = ctx.world.object_states().position_w
                if np.all(np.isfinite(p[2])):
                    closest[0] = min(closest[0], float(np.linalg.norm(p[2, :2] - p[1, :2])))

            callbacks = simgen.Callbacks(
                on_step=track,
                on_event=lambda ev, ctx: print(f"  {ctx.time:5.2f} s  {ev.scenario}/{ev.name}"),
            )
            params = sim.prepare(scene, args.seed, index, num_episodes=args.episodes)
            print(f"episode {index}: car at {params.scene.objects[1].velocity.linear[0]:.1f} m/s")
            records = sim.run(params, callbacks)
            if writer is not None:
                writer.write_episode(params, records)
            else:
                frames = sum(1 for r in records if isinstance(r, SensorFrame))
                print(f"  {frames} frames")
            print(f"  closest approach {closest[0]:.2f} m")
    if args.out:
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
