"""Episode-level statistics: randomized parameters against their declared laws, scenario and
event frequencies, sampling tries and failed episodes (streaming, one episode at a time)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from simgen.quality.accum import Histogram, Moments
from simgen.quality.coverage import (
    ParameterCoverage,
    declared_distributions,
    declared_path,
    law_of,
)
from simgen.random.distributions import SamplingContext
from simgen.random.kinds import PerFrame

MAX_TRIES_BIN = 50


class ParameterStats:
    """Every declared distribution of a scene, fed each episode's sampled values (per-frame
    distributions: every tick's value)."""

    def __init__(self, scene_json: dict[str, Any], scene_dir: str | None = None) -> None:
        from simgen.sim.assets import AssetResolver

        try:
            assets = AssetResolver.for_scene(scene_dir) if scene_dir else None
        except Exception:  # pragma: no cover - an unreadable scene folder
            assets = None
        ctx = SamplingContext(assets=assets)
        self.declared = declared_distributions(scene_json)
        self.params = {
            path: ParameterCoverage(path, d, law_of(d, ctx), isinstance(d, PerFrame))
            for path, d in self.declared.items()
        }
        self.without_law: dict[str, int] = {}
        self.tries = Histogram.integer(1, MAX_TRIES_BIN + 1, unit="samples drawn")

    def add_episode(self, params: dict[str, Any], per_frame: dict[str, np.ndarray]) -> None:
        sampled = params.get("sampled", {})
        self.tries.add(np.array([int(params.get("tries", 1))]))
        seen: set[str] = set()
        for key, value in sampled.items():
            path = declared_path(key, self.declared, sampled)
            if path is None:
                generic = re.sub(r"instances\[\d+\]", "instances[*]", key)
                self.without_law[generic] = self.without_law.get(generic, 0) + 1
                continue
            pc = self.params[path]
            if pc.per_frame:
                continue
            pc.add(value)
            seen.add(path)
        for path, pc in self.params.items():
            if not pc.per_frame:
                continue
            values = _per_frame_values(path, per_frame)
            if values is None:
                continue
            for v in values:
                pc.add(v)
            seen.add(path)
        for path in seen:
            self.params[path].episodes += 1

    def result(self) -> dict[str, Any]:
        return {
            "parameters": {p: pc.result() for p, pc in sorted(self.params.items())},
            "parameters_without_law": dict(sorted(self.without_law.items())),
            "tries": self.tries.to_json(),
        }


def _per_frame_values(path: str, columns: dict[str, np.ndarray]) -> list[Any] | None:
    """Every tick's value of a per-frame distribution: column ``path`` or components
    ``path[0]``, ``path[1]``, ... (colors)."""
    if path in columns:
        return [float(x) for x in columns[path]]
    comps: list[np.ndarray] = []
    while f"{path}[{len(comps)}]" in columns:
        comps.append(columns[f"{path}[{len(comps)}]"])
    if not comps:
        return None
    return [list(map(float, row)) for row in np.stack(comps, axis=1)]


class ScenarioStats:
    """How often each scenario happened (against its declared probability or quota) and how
    often each event fired, per scenario."""

    def __init__(self, scene_json: dict[str, Any]) -> None:
        self.declared: dict[str, float] = {}
        for sc in scene_json.get("scenarios", []) or []:
            p = sc.get("quota") if sc.get("quota") is not None else sc.get("probability")
            self.declared[sc["name"]] = 1.0 if p is None else float(p)
        self.episodes = 0
        self.selected: dict[str, int] = dict.fromkeys(self.declared, 0)
        self.events: dict[tuple[str, str], dict[str, Any]] = {}

    def add_episode(self, scenarios: dict[str, bool], events: list[dict[str, Any]]) -> None:
        self.episodes += 1
        for name, on in scenarios.items():
            self.selected[name] = self.selected.get(name, 0) + int(bool(on))
        fired: set[tuple[str, str]] = set()
        for e in events:
            key = (str(e.get("scenario", "")), str(e.get("name", "")))
            rec = self.events.setdefault(
                key, {"count": 0, "episodes": 0, "start_time": Moments(), "action": set()}
            )
            rec["count"] += 1
            rec["start_time"].add(np.array([float(e.get("start_time", math.nan))]))
            rec["action"].add(str(e.get("action", "")))
            fired.add(key)
        for key in fired:
            self.events[key]["episodes"] += 1

    def result(self) -> dict[str, Any]:
        n = self.episodes
        out: dict[str, Any] = {}
        names = list(self.declared) + sorted(
            {s for s, _ in self.events if s not in self.declared}
            | set(self.selected) - set(self.declared)
        )
        for name in names:
            sel = self.selected.get(name, 0)
            out[name] = {
                "declared_rate": self.declared.get(name),
                "episodes": sel,
                "rate": sel / n if n else 0.0,
                "events": {
                    ev: {
                        "count": r["count"],
                        "episodes": r["episodes"],
                        "per_episode": r["count"] / n if n else 0.0,
                        "rate": r["episodes"] / n if n else 0.0,
                        "start_time_s": r["start_time"].to_json(),
                        "actions": sorted(r["action"]),
                    }
                    for (s, ev), r in sorted(self.events.items())
                    if s == name
                },
            }
        return {"episodes": n, "scenarios": out}


def dataset_failures(ds: Any) -> list[dict[str, Any]]:
    """Failed episodes of a dataset, as recorded by the run: the reader's ``failures`` when it
    has them, else the ``failed`` records of a dataset directory's ``manifest.json``; [] for a
    single file (a run writes a file only when every episode succeeded)."""
    f = getattr(ds, "failures", None)
    if callable(f):
        f = f()
    if f is not None:
        return [_record(x) for x in (f.values() if isinstance(f, dict) else f)]
    path = Path(ds.path)
    manifest = path / "manifest.json" if path.is_dir() else None
    if manifest is None or not manifest.is_file():
        return []
    try:
        failed = json.loads(manifest.read_text()).get("failed", {})
    except (OSError, ValueError):
        return []
    return [_record(x) for x in (failed.values() if isinstance(failed, dict) else failed)]


def _record(x: Any) -> dict[str, Any]:
    if isinstance(x, dict):
        return dict(x)
    if hasattr(x, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(x)
    return {"error": str(x)}
