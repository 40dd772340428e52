"""Which distributions each kind of scene value accepts, as pydantic discriminated unions.

A distribution is written as a one-key mapping whose key names it; the union picks the model by
that key, and an unknown key is one error listing what is allowed for that kind of field:

==========  =====================================================================================
numbers     uniform, log_uniform, normal, randint, choice, schedule, per_frame, custom
vectors     in_box, in_sphere, in_shell, in_disk, choice, custom
colors      hsv, choice, per_frame, custom
rotations   uniform_rotation, axis_rotation, choice, custom
assets      files, choice, custom
counts      randint, choice, custom
==========  =====================================================================================

``{per_frame: <distribution>}`` marks a value that is drawn again at every tick (a flickering
light); the other distributions are drawn once per episode.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Discriminator, Tag

from simgen.random.distributions import (
    Bernoulli,
    Choice,
    Custom,
    Distribution,
    IntRange,
    LogUniform,
    Normal,
    SamplingContext,
    Schedule,
    Uniform,
    distribution_tag,
)
from simgen.random.files import Files
from simgen.random.spatial import (
    AxisRotation,
    Hsv,
    InBox,
    InDisk,
    InShell,
    InSphere,
    UniformRotation,
)


def dist_union(classes: tuple[type[Distribution], ...], expected: str) -> Any:
    """``Annotated[Union[...], Discriminator]`` of ``classes``, keyed by their one-key tag."""
    members = tuple(Annotated[c, Tag(c.tag)] for c in classes)
    union: Any = members[0]
    for m in members[1:]:
        union = union | m
    return Annotated[
        union,
        Discriminator(
            lambda v: distribution_tag(v) or "<not a distribution>",
            custom_error_type="invalid_distribution",
            custom_error_message=f"expected {expected}",
        ),
    ]


def _names(classes: tuple[type[Distribution], ...]) -> str:
    return ", ".join("{" + c.tag + ": ...}" for c in classes)


_FRAME_INNER = (Uniform, LogUniform, Normal, IntRange, Choice, Hsv, Custom)
FrameInner = dist_union(_FRAME_INNER, "a distribution: " + _names(_FRAME_INNER))


class PerFrame(Distribution):
    """Drawn again at every tick instead of once per episode: ``{per_frame: {uniform: [1, 3]}}``.

    Allowed on light intensities and colors and on the background color (the values the
    renderer can change between frames). Tick k draws from its own stream, so the values do
    not depend on which other ticks were drawn."""

    tag: ClassVar[str] = "per_frame"
    per_frame: FrameInner  # type: ignore[valid-type]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.inner.sample(rng)

    def sample_in(self, rng: np.random.Generator, ctx: SamplingContext) -> Any:
        return self.inner.sample_in(rng, ctx)

    @property
    def inner(self) -> Distribution:
        return self.per_frame  # type: ignore[no-any-return]

    def describe(self) -> str:
        return f"per_frame: {{{self.inner.describe()}}}"


NUMERIC = (Uniform, LogUniform, Normal, IntRange, Choice, Schedule, PerFrame, Custom)
VECTOR = (InBox, InSphere, InShell, InDisk, Choice, Custom)
COLOR = (Hsv, Choice, PerFrame, Custom)
ROTATION = (UniformRotation, AxisRotation, Choice, Custom)
ASSET = (Files, Choice, Custom)
COUNT = (IntRange, Choice, Custom)

NumDist = dist_union(
    NUMERIC,
    "a number or a distribution written as a one-key mapping ({uniform: [lo, hi]}, "
    "{normal: [mean, std]}, {log_uniform: [lo, hi]}, {randint: [lo, hi]}, {choice: [...]}, "
    "{schedule: {start: .., end: ..}}, {per_frame: {...}}, {custom: {name: ..}})",
)
VecDist = dist_union(VECTOR, "[x, y, z] or a point distribution: " + _names(VECTOR))
ColorDist = dist_union(COLOR, "[r, g, b], '#rrggbb' or a color distribution: " + _names(COLOR))
RotationDist = dist_union(ROTATION, "a rotation distribution: " + _names(ROTATION))
AssetDist = dist_union(ASSET, "an asset path or " + _names(ASSET))
CountDist = dist_union(COUNT, "an integer or " + _names(COUNT))

#: Every distribution by its tag. Explicit: extending it is an edit here, not an import side effect.
DISTRIBUTIONS: dict[str, type[Distribution]] = {
    d.tag: d
    for d in (
        Uniform,
        LogUniform,
        Normal,
        IntRange,
        Choice,
        Bernoulli,
        Schedule,
        Custom,
        PerFrame,
        UniformRotation,
        AxisRotation,
        InBox,
        InSphere,
        InShell,
        InDisk,
        Hsv,
        Files,
    )
}
