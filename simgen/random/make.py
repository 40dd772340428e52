"""Short constructors of distributions for scenes built in Python (``simgen.dist``)::

    from simgen import dist
    box = simgen.Box(name="b", class_name="box", size=(0.1, 0.1, 0.1),
                     pose=simgen.Pose(position=dist.in_box((0, 0, 1), (1, 1, 0)),
                                      orientation=dist.uniform_rotation()),
                     mass=dist.uniform(0.1, 0.5))

Each returns the same model the YAML form parses into (``dist.uniform(0, 1)`` is
``{uniform: [0, 1]}``), so Python and files build identical scenes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simgen.random.distributions import (
    Bernoulli,
    Choice,
    Custom,
    Distribution,
    IntRange,
    LogUniform,
    Normal,
    Schedule,
    Uniform,
)
from simgen.random.files import Files
from simgen.random.kinds import PerFrame
from simgen.random.spatial import (
    AxisRotation,
    Hsv,
    InBox,
    InDisk,
    InShell,
    InSphere,
    UniformRotation,
)

V3 = Sequence[float]


def uniform(low: float, high: float) -> Uniform:
    return Uniform(uniform=(low, high))


def log_uniform(low: float, high: float) -> LogUniform:
    return LogUniform(log_uniform=(low, high))


def normal(mean: float, std: float, low: float | None = None, high: float | None = None) -> Normal:
    return Normal.model_validate({"normal": {"mean": mean, "std": std, "low": low, "high": high}})


def randint(low: int, high: int) -> IntRange:
    """Integer in [low, high], both inclusive."""
    return IntRange(randint=(low, high))


def choice(
    values: Sequence[Any],
    weights: Sequence[float] | None = None,
    k: int | None = None,
    replace: bool = True,
) -> Choice:
    return Choice.model_validate(
        {"choice": {"values": list(values), "weights": weights, "k": k, "replace": replace}}
    )


def bernoulli(p: float) -> Bernoulli:
    return Bernoulli(bernoulli=p)


def schedule(
    start: float | tuple[float, float],
    end: float | tuple[float, float],
    by: str = "progress",
    episodes: int | None = None,
) -> Schedule:
    return Schedule.model_validate(
        {"schedule": {"start": start, "end": end, "by": by, "episodes": episodes}}
    )


def per_frame(d: Distribution) -> PerFrame:
    return PerFrame(per_frame=d)


def custom(name: str, **args: Any) -> Custom:
    return Custom.model_validate({"custom": {"name": name, "args": args}})


def uniform_rotation() -> UniformRotation:
    return UniformRotation()


def axis_rotation(
    axis: V3 = (0.0, 0.0, 1.0),
    angle_deg: tuple[float, float] = (0.0, 360.0),
    base_euler_deg: V3 = (0.0, 0.0, 0.0),
) -> AxisRotation:
    return AxisRotation.model_validate(
        {"axis_rotation": {"axis": axis, "angle_deg": angle_deg, "base_euler_deg": base_euler_deg}}
    )


def in_box(center: V3, size: V3) -> InBox:
    return InBox.model_validate({"in_box": {"center": center, "size": size}})


def in_sphere(center: V3, radius: float) -> InSphere:
    return InSphere.model_validate({"in_sphere": {"center": center, "radius": radius}})


def in_shell(center: V3, inner: float, outer: float) -> InShell:
    return InShell.model_validate({"in_shell": {"center": center, "inner": inner, "outer": outer}})


def in_disk(center: V3, radius: float, inner: float = 0.0, normal: V3 = (0.0, 0.0, 1.0)) -> InDisk:
    return InDisk.model_validate(
        {"in_disk": {"center": center, "radius": radius, "inner": inner, "normal": normal}}
    )


def hsv(
    hue_deg: tuple[float, float] = (0.0, 360.0),
    saturation: tuple[float, float] = (0.0, 1.0),
    value: tuple[float, float] = (0.0, 1.0),
    alpha: float | None = None,
) -> Hsv:
    return Hsv.model_validate(
        {"hsv": {"hue_deg": hue_deg, "saturation": saturation, "value": value, "alpha": alpha}}
    )


def files(
    folder: str, pattern: str = "*", pool_size: int | None = None, pool_seed: int = 0
) -> Files:
    return Files.model_validate(
        {
            "files": {
                "folder": folder,
                "pattern": pattern,
                "pool_size": pool_size,
                "pool_seed": pool_seed,
            }
        }
    )
