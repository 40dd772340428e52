"""Warnings drawn from a dataset's statistics (pure): what a person should look at before
trusting the data. Each is ``{"level": "warning" | "info", "topic", "message"}``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    min_instances: int = 50  # a thing class with fewer instances (all cameras) is flagged
    min_coverage: float = 0.8  # a parameter whose coverage is lower is flagged ...
    min_samples: int = 10  # ... when it has at least this many samples
    max_imbalance: float = 10.0  # most / least frequent thing class (both with instances)
    rate_sigmas: float = 3.0  # scenario rate this many binomial standard deviations off


def warnings(stats: dict[str, Any], t: Thresholds | None = None) -> list[dict[str, str]]:
    t = t or Thresholds()
    out: list[dict[str, str]] = []
    out += _failures(stats)
    out += [_w("warning", "missing", str(p)) for p in stats.get("problems") or []]
    out += _classes(stats, t)
    out += _nothing_visible(stats)
    out += _parameters(stats, t)
    out += _scenarios(stats, t)
    out += _tries(stats)
    return out


def _w(level: str, topic: str, message: str) -> dict[str, str]:
    return {"level": level, "topic": topic, "message": message}


def _failures(stats: dict[str, Any]) -> list[dict[str, str]]:
    f = stats.get("failures") or []
    if not f:
        return []
    ex = ", ".join(
        f"episode {x.get('index', '?')} (seed {x.get('seed', '?')}): {str(x.get('error', ''))[:80]}"
        for x in f[:3]
    )
    return [_w("warning", "failures", f"{len(f)} episodes failed and are missing: {ex}")]


def thing_instances(stats: dict[str, Any]) -> dict[str, int]:
    """Instances of each thing class, all cameras together."""
    out: dict[str, int] = {}
    for cam in stats.get("cameras", {}).values():
        for name, c in cam["objects"]["classes"].items():
            if name != "background" and not c.get("stuff"):
                out[name] = out.get(name, 0) + int(c["instances"])
    return out


def _classes(stats: dict[str, Any], t: Thresholds) -> list[dict[str, str]]:
    out = []
    counts = thing_instances(stats)
    for name, n in counts.items():
        if n == 0:
            out.append(_w("warning", "classes", f"class {name!r} is never visible in any camera"))
        elif n < t.min_instances:
            out.append(
                _w(
                    "warning",
                    "classes",
                    f"class {name!r} has only {n} instances (fewer than {t.min_instances})",
                )
            )
    seen = {k: v for k, v in counts.items() if v > 0}
    if len(seen) >= 2:
        hi, lo = max(seen, key=seen.__getitem__), min(seen, key=seen.__getitem__)
        ratio = seen[hi] / seen[lo]
        if ratio > t.max_imbalance:
            out.append(
                _w(
                    "warning",
                    "classes",
                    f"heavy class imbalance: {hi!r} has {ratio:.0f}x the instances of {lo!r} "
                    f"({seen[hi]} vs {seen[lo]})",
                )
            )
    return out


def _nothing_visible(stats: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for cam, c in stats.get("cameras", {}).items():
        nv = c["objects"]["nothing_visible"]
        if nv["frames"]:
            ex = ", ".join(f"episode {e['episode']} frame {e['frame']}" for e in nv["examples"][:3])
            out.append(
                _w(
                    "warning",
                    "frames",
                    f"camera {cam!r}: {nv['frames']} frames ({100 * nv['share']:.1f}%) show no "
                    f"object of a thing class (e.g. {ex})",
                )
            )
    return out


def _parameters(stats: dict[str, Any], t: Thresholds) -> list[dict[str, str]]:
    out = []
    for path, p in stats.get("parameters", {}).items():
        if p["samples"] == 0:
            out.append(
                _w(
                    "info",
                    "parameters",
                    f"{path}: no sampled value recorded (drawn in placement or not in any episode)",
                )
            )
            continue
        if p.get("kind") == "continuous":
            for d in p["dims"]:
                if d["samples"] >= t.min_samples and d["coverage"] < t.min_coverage:
                    g0, g1 = d["largest_gap_value"]
                    gap = f"; nothing in [{_f(g0)}, {_f(g1)}]" if g0 is not None else ""
                    dim = "" if d["dim"] == "value" else f" ({d['dim']})"
                    out.append(
                        _w(
                            "warning",
                            "parameters",
                            f"{path}{dim}: poor coverage {100 * d['coverage']:.0f}% of "
                            f"{d['bins']} bins of {p['declared']}{gap}",
                        )
                    )
                if d["outside"]:
                    out.append(
                        _w(
                            "warning",
                            "parameters",
                            f"{path}: {d['outside']} values outside the declared law {p['declared']}",
                        )
                    )
        elif p.get("kind") == "discrete" and p["coverage"] is not None:
            n_values = max(int(p["values"]), 1)
            if p["samples"] >= 5 * n_values and p["coverage"] < t.min_coverage:
                missed = [c["value"] for c in p["counts"] if c["count"] == 0][:5]
                out.append(
                    _w(
                        "warning",
                        "parameters",
                        f"{path}: only {p['values_hit']} of {p['values']} values drawn "
                        f"(never: {', '.join(map(str, missed))})",
                    )
                )
    return out


def _f(x: float) -> str:
    return f"{x:.4g}"


def _scenarios(stats: dict[str, Any], t: Thresholds) -> list[dict[str, str]]:
    out = []
    n = stats.get("episodes", 0)
    for name, s in stats.get("scenarios", {}).items():
        p = s.get("declared_rate")
        if p is None or n == 0:
            continue
        sd = math.sqrt(max(p * (1 - p), 0.0) / n)
        if abs(s["rate"] - p) > t.rate_sigmas * sd + 1.0 / n:
            out.append(
                _w(
                    "warning",
                    "scenarios",
                    f"scenario {name!r} happened in {100 * s['rate']:.1f}% of episodes, "
                    f"declared {100 * p:.1f}%",
                )
            )
        if s["episodes"] == 0 and p > 0:
            out.append(_w("info", "scenarios", f"scenario {name!r} happened in no episode"))
    return out


def _tries(stats: dict[str, Any]) -> list[dict[str, str]]:
    tries = stats.get("tries") or {}
    mean = tries.get("mean")
    if mean is not None and mean > 2:
        return [
            _w(
                "info",
                "parameters",
                f"'require' rejected many samples: {mean:.1f} draws per episode on average "
                f"(at most {tries.get('max'):.0f}); the accepted values are not the declared laws",
            )
        ]
    return []
