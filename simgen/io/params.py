"""What was sampled in each episode of a dataset (``simgen params``)."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import numpy as np

from simgen.io.reader import Dataset


def episode_records(path: str | Path, pattern: str | None = None) -> list[dict[str, Any]]:
    """Per episode: index, tries, sampled values (optionally only paths matching ``pattern``),
    placement, scenarios and events."""
    out = []
    with Dataset(path) as ds:
        for ep in ds:
            p = ep.params
            sampled = {
                k: v
                for k, v in sorted(p.get("sampled", {}).items())
                if pattern is None or fnmatch.fnmatchcase(k, pattern)
            }
            out.append(
                {
                    "episode": ep.index,
                    "tries": p.get("tries", 1),
                    "dataset_size": p.get("dataset_size"),
                    "sampled": sampled,
                    "per_frame": p.get("per_frame", {}),
                    "placement": p.get("placement", {}),
                    "scenarios": ep.scenarios(),
                    "events": [
                        {
                            "name": e["name"],
                            "scenario": e["scenario"],
                            "time": float(e["start_time"]),
                        }
                        for e in ep.events()
                    ],
                }
            )
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _flat(sampled: dict[str, Any]) -> dict[str, Any]:
    """Mapping values (poses, orientations) split into one entry per key."""
    out: dict[str, Any] = {}
    for k, v in sampled.items():
        if isinstance(v, dict):
            for sub, x in v.items():
                out[f"{k}.{sub}"] = x
        else:
            out[k] = v
    return out


def fmt(v: Any) -> str:
    """A sampled value in a table cell."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {fmt(x)}" for k, x in v.items()) + "}"
    return str(v)


def episode_rows(rec: dict[str, Any]) -> list[tuple[str, str]]:
    """(parameter, value) rows of one episode."""
    rows = [(k, fmt(v)) for k, v in rec["sampled"].items()]
    for k, d in rec["per_frame"].items():
        rows.append((k, f"per frame ({d}); values in per_frame/value"))
    rows.append(("tries", str(rec["tries"])))
    pl = rec["placement"]
    for name, s in pl.get("scatter", {}).items():
        rows.append((f"scatter {name}", f"{s['count']} objects, tries per object {s['tries']}"))
    if "settle_steps" in pl:
        rows.append(
            ("settling", f"{pl['settle_time']:.3g} s, at rest: {str(pl['at_rest']).lower()}")
        )
    if rec["scenarios"]:
        rows.append(
            (
                "scenarios",
                ", ".join(f"{n}: {'yes' if v else 'no'}" for n, v in rec["scenarios"].items()),
            )
        )
    if rec["events"]:
        rows.append(
            (
                "events",
                ", ".join(
                    f"{e['scenario']}/{e['name']} @ {e['time']:.3g} s" for e in rec["events"]
                ),
            )
        )
    return rows


def parameter_rows(records: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(parameter, episodes, summary) over all episodes: numbers as min / mean / max,
    anything else as its distinct values (most common first)."""
    values: dict[str, list[Any]] = {}
    for rec in records:
        for k, v in _flat(rec["sampled"]).items():
            values.setdefault(k, []).append(v)
    rows = []
    for k in sorted(values):
        vs = values[k]
        if all(_is_number(v) for v in vs):
            a = np.asarray(vs, dtype=np.float64)
            summary = f"min {a.min():.4g}, mean {a.mean():.4g}, max {a.max():.4g}"
        elif all(isinstance(v, list) and v and all(_is_number(x) for x in v) for v in vs) and (
            len({len(v) for v in vs}) == 1
        ):
            a = np.asarray(vs, dtype=np.float64)
            ranges = ", ".join(
                f"{lo:.4g}..{hi:.4g}" for lo, hi in zip(a.min(0), a.max(0), strict=True)
            )
            summary = f"per component min..max [{ranges}]"
        else:
            counts: dict[str, int] = {}
            for v in vs:
                key = json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else fmt(v)
                counts[key] = counts.get(key, 0) + 1
            top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            shown = ", ".join(
                f"{fmt(json.loads(c)) if c[:1] in '[{' else c} x{n}" for c, n in top[:4]
            )
            more = f", ... ({len(top)} distinct)" if len(top) > 4 else ""
            summary = shown + more
        rows.append((k, str(len(vs)), summary))
    return rows
