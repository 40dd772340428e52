"""The explicit registry of Python extensions: custom samplers, actions and the weather hook.

Nothing registers itself: you make a :class:`Registry`, add plain functions to it and pass it
to the :class:`~simgen.run.episode.Simulator` (``Simulator(registry=reg)``)::

    reg = simgen.Registry()
    reg.add_sampler("shelf_slot", lambda rng, row: [0.4 * rng.integers(4), 0.0, 0.3 * row])
    reg.add_action("open_door", open_door)        # fn(ctx, **args); ctx: ActionContext

A scene names them: ``position: {custom: {name: shelf_slot, args: {row: 2}}}`` and
``action: {call: {name: open_door, args: {speed: 1}}}``. Samplers get a seeded generator, so
they keep simgen's seeding guarantees as long as they draw only from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simgen.errors import SamplingError, SimulationError

Sampler = Callable[..., Any]  # fn(rng: numpy.random.Generator, **args) -> value
ActionFn = Callable[..., None]  # fn(ctx: simgen.scenario.runtime.ActionContext, **args)


@dataclass
class Registry:
    """Named Python functions a scene may refer to. Pass it explicitly; it is never global."""

    samplers: dict[str, Sampler] = field(default_factory=dict)
    actions: dict[str, ActionFn] = field(default_factory=dict)
    #: Called for ``weather`` actions as ``weather(ctx, **params)``; None: they are only labeled.
    weather: ActionFn | None = None

    def add_sampler(self, name: str, fn: Sampler) -> Registry:
        _check_name(name, self.samplers, "sampler")
        self.samplers[name] = fn
        return self

    def add_action(self, name: str, fn: ActionFn) -> Registry:
        _check_name(name, self.actions, "action")
        self.actions[name] = fn
        return self

    def get_sampler(self, name: str) -> Sampler:
        if name not in self.samplers:
            raise SamplingError(_missing(name, self.samplers, "sampler"))
        return self.samplers[name]

    def get_action(self, name: str) -> ActionFn:
        if name not in self.actions:
            raise SimulationError(_missing(name, self.actions, "action"))
        return self.actions[name]


def _check_name(name: str, table: dict[str, Any], what: str) -> None:
    if not name or not isinstance(name, str):
        raise ValueError(f"a {what} needs a non-empty name")
    if name in table:
        raise ValueError(f"a {what} named {name!r} is already registered")


def _missing(name: str, table: dict[str, Any], what: str) -> str:
    known = ", ".join(sorted(table)) or "(none)"
    return f"no {what} named {name!r} in the registry; registered: {known}"
