"""Random distributions that may stand anywhere a scene file has a number or a choice.

In a file a distribution is a one-key mapping, the key naming the distribution::

    mass: {uniform: [0.5, 2.0]}
    friction: {normal: {mean: 0.5, std: 0.1, low: 0.1, high: 0.9}}
    color: {choice: [[1, 0, 0], [0, 1, 0]]}

Each is a small immutable pydantic model with ``sample(rng)``; the generator is always passed in
(see :mod:`simgen.random.seeding`). Sampling happens once per episode in
:func:`simgen.random.sample.sample_episode`.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Tag, model_validator

from simgen.errors import SamplingError


class Distribution(BaseModel):
    """Base class: a random value, resolved by ``sample(rng)``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    tag: ClassVar[str] = ""

    def sample(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.tag}: {self.model_dump()[self.tag]}"


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


class Choice(Distribution):
    """One of the listed values, optionally weighted:
    ``{choice: [a, b, c]}`` or ``{choice: {values: [a, b], weights: [3, 1]}}``."""

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
        return self

    def sample(self, rng: np.random.Generator) -> Any:
        c = self.choice
        p = None if c.weights is None else np.asarray(c.weights) / np.sum(c.weights)
        return c.values[int(rng.choice(len(c.values), p=p))]


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


#: Every distribution by its tag. Explicit: extending it is an edit here, not an import side effect.
DISTRIBUTIONS: dict[str, type[Distribution]] = {
    d.tag: d for d in (Uniform, LogUniform, Normal, IntRange, Choice, Bernoulli)
}

NUMERIC_DISTRIBUTIONS = ("uniform", "log_uniform", "normal", "randint", "choice")


def distribution_tag(value: Any) -> str | None:
    """The tag of a distribution given as a one-key mapping (or a model), else None."""
    if isinstance(value, Distribution):
        return value.tag
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        return key if isinstance(key, str) else None
    return None


def _numeric_tag(value: Any) -> str:
    if isinstance(value, (dict, Distribution)):
        tag = distribution_tag(value)
        return tag if tag is not None else "<not a distribution>"
    return "value"


NumDist = Annotated[
    Annotated[Uniform, Tag("uniform")]
    | Annotated[LogUniform, Tag("log_uniform")]
    | Annotated[Normal, Tag("normal")]
    | Annotated[IntRange, Tag("randint")]
    | Annotated[Choice, Tag("choice")],
    Discriminator(
        lambda v: distribution_tag(v) or "<not a distribution>",
        custom_error_type="invalid_distribution",
        custom_error_message=(
            "expected a number or a distribution written as a one-key mapping "
            "({uniform: [lo, hi]}, {normal: [mean, std]}, {log_uniform: [lo, hi]}, "
            "{randint: [lo, hi]}, {choice: [...]})"
        ),
    ),
]


def numeric_discriminator(value: Any) -> str:
    """Discriminator for ``number | distribution`` fields."""
    return _numeric_tag(value)
