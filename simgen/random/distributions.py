"""Random distributions that may stand anywhere a scene file has a number or a choice.

In a file a distribution is a one-key mapping, the key naming the distribution::

    mass: {uniform: [0.5, 2.0]}
    friction: {normal: {mean: 0.5, std: 0.1, low: 0.1, high: 0.9}}
    color: {choice: [[1, 0, 0], [0, 1, 0]]}

Each is a small immutable pydantic model with ``sample(rng)``; the generator is always passed in
(see :mod:`simgen.random.seeding`). Sampling happens once per episode in
:func:`simgen.random.sample.sample_episode` (or once per frame inside ``{per_frame: ...}``).

Distributions that need more than a generator (a schedule needs the episode's place in the
dataset, ``files`` the allowed asset folders, ``custom`` the sampler registry) implement
``sample_in(rng, ctx)`` with a :class:`SamplingContext`. Spatial distributions (rotations,
points, colors) live in :mod:`simgen.random.spatial`, files and asset pools in
:mod:`simgen.random.files`; :mod:`simgen.random.kinds` groups them into the unions each kind of
scene field accepts. docs/randomization.md lists them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from simgen.errors import SamplingError


@dataclass(frozen=True)
class SamplingContext:
    """What some distributions need besides a generator.

    ``num_episodes`` is the dataset size (``None`` when unknown: schedules ``by: progress`` and
    scenario quotas then refuse to sample); ``assets`` resolves folders for ``files``;
    ``registry`` holds custom samplers (:class:`simgen.registry.Registry`).
    """

    episode_index: int = 0
    num_episodes: int | None = None
    assets: Any = None  # simgen.sim.assets.AssetResolver
    registry: Any = None  # simgen.registry.Registry
    extra: dict[str, Any] = field(default_factory=dict)


class Distribution(BaseModel):
    """Base class: a random value, resolved by ``sample(rng)``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    tag: ClassVar[str] = ""

    def sample(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def sample_in(self, rng: np.random.Generator, ctx: SamplingContext) -> Any:
        """Sample with context (schedules, files, custom samplers override this)."""
        return self.sample(rng)

    def describe(self) -> str:
        return f"{self.tag}: {self.model_dump(mode='json')[self.tag]}"


class Uniform(Distribution):
    """Uniform real number in ``[low, high)``: ``{uniform: [low, high]}``."""

    tag: ClassVar[str] = "uniform"
    uniform: tuple[float, float]

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.uniform[0] > self.uniform[1]:
            raise ValueError(f"uniform: low {self.uniform[0]} is above high {self.uniform[1]}")
        return self

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(*self.uniform))


class LogUniform(Distribution):
    """Log-uniform in ``[low, high)``, both > 0: ``{log_uniform: [low, high]}``."""

    tag: ClassVar[str] = "log_uniform"
    log_uniform: tuple[float, float]

    @model_validator(mode="after")
    def _positive(self) -> LogUniform:
        lo, hi = self.log_uniform
        if lo <= 0 or hi <= 0 or lo > hi:
            raise ValueError("log_uniform needs 0 < low <= high")
        return self

    def sample(self, rng: np.random.Generator) -> float:
        lo, hi = self.log_uniform
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


class NormalParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    mean: float
    std: float
    low: float | None = None
    high: float | None = None


class Normal(Distribution):
    """Gaussian, optionally truncated to ``[low, high]`` by rejection:
    ``{normal: {mean: 0, std: 1, low: -2, high: 2}}`` or ``{normal: [mean, std]}``."""

    tag: ClassVar[str] = "normal"
    normal: NormalParams

    @model_validator(mode="before")
    @classmethod
    def _pair(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("normal"), (list, tuple)):
            pair = data["normal"]
            if len(pair) != 2:
                raise ValueError("normal: expected [mean, std] or {mean, std, low, high}")
            return {"normal": {"mean": pair[0], "std": pair[1]}}
        return data

    @model_validator(mode="after")
    def _valid(self) -> Normal:
        p = self.normal
        if p.std < 0:
            raise ValueError("normal: std must be >= 0")
        if p.low is not None and p.high is not None and p.low > p.high:
            raise ValueError("normal: low is above high")
        return self

    def sample(self, rng: np.random.Generator) -> float:
        p = self.normal
        lo = -math.inf if p.low is None else p.low
        hi = math.inf if p.high is None else p.high
        for _ in range(10_000):
            x = float(rng.normal(p.mean, p.std))
            if lo <= x <= hi:
                return x
        raise SamplingError(
            f"normal(mean={p.mean}, std={p.std}) truncated to [{lo}, {hi}]: no sample accepted "
            "in 10000 tries; widen the bounds"
        )


class IntRange(Distribution):
    """Integer uniformly from ``low`` to ``high`` inclusive: ``{randint: [low, high]}``."""

    tag: ClassVar[str] = "randint"
    randint: tuple[int, int]

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if self.randint[0] > self.randint[1]:
            raise ValueError("randint: low is above high")
        return self

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.randint[0], self.randint[1], endpoint=True))


class ChoiceParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    values: list[Any]
    weights: list[float] | None = None
    k: int | None = Field(default=None, ge=0, description="draw a list of k values")
    replace: bool = Field(default=True, description="with k: false draws a set (no repeats)")


class Choice(Distribution):
    """One of the listed values, optionally weighted:
    ``{choice: [a, b, c]}`` or ``{choice: {values: [a, b], weights: [3, 1]}}``.

    With ``k`` it draws a list of k values; ``replace: false`` makes them distinct (a set, in
    the order drawn): ``{choice: {values: [a, b, c, d], k: 2, replace: false}}``."""

    tag: ClassVar[str] = "choice"
    choice: ChoiceParams

    @model_validator(mode="before")
    @classmethod
    def _plain_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("choice"), (list, tuple)):
            return {"choice": {"values": list(data["choice"])}}
        return data

    @model_validator(mode="after")
    def _valid(self) -> Choice:
        c = self.choice
        if not c.values:
            raise ValueError("choice: needs at least one value")
        if c.weights is not None:
            if len(c.weights) != len(c.values):
                raise ValueError("choice: weights and values differ in length")
            if any(w < 0 for w in c.weights) or sum(c.weights) <= 0:
                raise ValueError("choice: weights must be >= 0 with a positive sum")
        if c.k is not None and not c.replace:
            usable = len(c.values) if c.weights is None else sum(w > 0 for w in c.weights)
            if c.k > usable:
                raise ValueError(
                    f"choice: k={c.k} distinct values asked of {usable} (replace: false)"
                )
        return self

    def sample(self, rng: np.random.Generator) -> Any:
        c = self.choice
        p = None if c.weights is None else np.asarray(c.weights) / np.sum(c.weights)
        if c.k is None:
            return c.values[int(rng.choice(len(c.values), p=p))]
        picks = rng.choice(len(c.values), size=c.k, replace=c.replace, p=p)
        return [c.values[int(i)] for i in picks]


class Bernoulli(Distribution):
    """True with probability p: ``{bernoulli: 0.3}``."""

    tag: ClassVar[str] = "bernoulli"
    bernoulli: float

    @model_validator(mode="after")
    def _prob(self) -> Bernoulli:
        if not 0.0 <= self.bernoulli <= 1.0:
            raise ValueError("bernoulli: probability must be in [0, 1]")
        return self

    def sample(self, rng: np.random.Generator) -> bool:
        return bool(rng.random() < self.bernoulli)


Range = tuple[float, float]


class ScheduleParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    start: float | Range = Field(description="value, or [low, high] of a uniform, at the start")
    end: float | Range = Field(description="value, or [low, high] of a uniform, at the end")
    by: Literal["progress", "episode"] = Field(
        default="progress",
        description="progress: episode index / (dataset size - 1); episode: index / episodes",
    )
    episodes: int | None = Field(
        default=None, ge=1, description="with by: episode, the index at which 'end' is reached"
    )


def _range(x: float | Range) -> Range:
    return (float(x), float(x)) if isinstance(x, (int, float)) else (float(x[0]), float(x[1]))


class Schedule(Distribution):
    """A curriculum: a value or a uniform range that moves linearly from ``start`` to ``end``
    over the dataset, ``{schedule: {start: [0, 0.01], end: [0.04, 0.05]}}``.

    With ``by: progress`` (default) the fraction is ``index / (N - 1)`` of a dataset of N
    episodes (so the first episode uses ``start`` and the last ``end``); with
    ``by: episode, episodes: K`` it is ``min(1, index / K)`` and does not need N."""

    tag: ClassVar[str] = "schedule"
    schedule: ScheduleParams

    @model_validator(mode="after")
    def _valid(self) -> Schedule:
        p = self.schedule
        for what, r in (("start", _range(p.start)), ("end", _range(p.end))):
            if r[0] > r[1]:
                raise ValueError(f"schedule: {what} low {r[0]} is above high {r[1]}")
        if p.by == "episode" and p.episodes is None:
            raise ValueError("schedule: by: episode needs 'episodes' (index reaching 'end')")
        return self

    def fraction(self, ctx: SamplingContext) -> float:
        p = self.schedule
        if p.by == "episode":
            assert p.episodes is not None
            return min(1.0, ctx.episode_index / p.episodes)
        n = ctx.num_episodes
        if n is None:
            raise SamplingError(
                "a schedule 'by: progress' needs the dataset size: pass the number of episodes "
                "(simgen render --episodes N, or num_episodes= in Python)"
            )
        if ctx.episode_index >= n:
            raise SamplingError(
                f"episode {ctx.episode_index} is outside the dataset of {n} episodes that the "
                "schedule spans; give the full dataset size (--episodes N)"
            )
        return ctx.episode_index / (n - 1) if n > 1 else 0.0

    def range_at(self, t: float) -> Range:
        (a0, b0), (a1, b1) = _range(self.schedule.start), _range(self.schedule.end)
        return (a0 + (a1 - a0) * t, b0 + (b1 - b0) * t)

    def sample(self, rng: np.random.Generator) -> float:
        raise SamplingError("a schedule samples only inside an episode (it needs its index)")

    def sample_in(self, rng: np.random.Generator, ctx: SamplingContext) -> float:
        lo, hi = self.range_at(self.fraction(ctx))
        return float(rng.uniform(lo, hi)) if hi > lo else float(lo)


class CustomParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    name: str = Field(min_length=1, description="name of a sampler in the registry")
    args: dict[str, Any] = Field(default_factory=dict, description="keyword arguments")


class Custom(Distribution):
    """A sampler registered in Python, ``{custom: {name: shelf_slot, args: {row: 2}}}``: the
    function ``fn(rng, **args)`` from the :class:`simgen.registry.Registry` given to the
    simulator. Its value must fit the field (a number, a vector, a color, ...)."""

    tag: ClassVar[str] = "custom"
    custom: CustomParams

    def sample(self, rng: np.random.Generator) -> Any:
        raise SamplingError(
            f"custom sampler {self.custom.name!r} needs a registry (Simulator(registry=...))"
        )

    def sample_in(self, rng: np.random.Generator, ctx: SamplingContext) -> Any:
        if ctx.registry is None:
            return self.sample(rng)
        fn = ctx.registry.get_sampler(self.custom.name)
        return fn(rng, **self.custom.args)


def distribution_tag(value: Any) -> str | None:
    """The tag of a distribution given as a one-key mapping (or a model), else None."""
    if isinstance(value, Distribution):
        return value.tag
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        return key if isinstance(key, str) else None
    return None


def numeric_discriminator(value: Any) -> str:
    """Discriminator for ``number | distribution`` fields."""
    if isinstance(value, (dict, Distribution)):
        tag = distribution_tag(value)
        return tag if tag is not None else "<not a distribution>"
    return "value"
