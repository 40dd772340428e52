"""The dataset card: what the data is, how it was made, what it is for and where it falls
short, filled from the dataset's provenance, its statistics and the scene file's
``name``/``description``/``license``/``intended_use``/``limitations`` fields.

:func:`dataset_card` returns rows of (section, [(label, value)]); :func:`card_markdown` writes
them as Markdown (``simgen report --card CARD.md``); the HTML report shows the same rows.
"""

from __future__ import annotations

from typing import Any

from simgen.quality.checks import thing_instances

Rows = list[tuple[str, list[tuple[str, str]]]]


def _ranges(r: list[list[int]]) -> str:
    return ", ".join(f"{a}" if b == a + 1 else f"{a}..{b - 1}" for a, b in r) or "(none)"


def known_limitations(stats: dict[str, Any], warns: list[dict[str, str]]) -> list[str]:
    """Limitations that follow from how the data was made and from its statistics."""
    d = stats["dataset"]
    backend = d.get("render_backend") or {}
    renderer = backend.get("renderer", "?") if isinstance(backend, dict) else str(backend)
    out = [
        "Synthetic: rasterized with pyrender (OpenGL, no global illumination or ray-traced "
        f"shadows) on {renderer}; physics by pybullet rigid bodies. Appearance, noise and "
        "motion differ from real sensors: validate against real data (simgen compare).",
        "Labels are exact by construction (one label pass per frame); they do not model "
        "annotation noise of real datasets.",
    ]
    own = (d.get("scene") or {}).get("limitations")
    if own:
        out.insert(0, str(own))
    out += [w["message"] for w in warns if w["level"] == "warning"]
    return out


def dataset_card(stats: dict[str, Any], warns: list[dict[str, str]]) -> Rows:
    d = stats["dataset"]
    scene = d.get("scene") or {}
    frames = stats["frames"]["per_sensor"]
    sensors = d.get("sensors") or {}
    classes = d["classes"]
    stuff = d.get("class_is_stuff") or [False] * len(classes)
    inst = thing_instances(stats)
    params = stats.get("parameters", {})
    overview = [
        ("name", str(scene.get("name") or "(unnamed scene)")),
        ("description", str(scene.get("description") or "(the scene file has no description)")),
        ("license", str(scene.get("license") or "(not stated in the scene file)")),
        (
            "intended use",
            str(scene.get("intended_use") or "(not stated: add 'intended_use' to the scene file)"),
        ),
    ]
    provenance = [
        (
            "generator",
            f"simgen {d.get('simgen_version')} (dataset format {d.get('format_version')})",
        ),
        ("created", str(d.get("created_utc") or "?")),
        ("scene file", str(d.get("scene_path") or "(built in Python)")),
        ("scene sha256", str(d.get("scene_sha256") or "-")),
        ("renderer", _backend(d.get("render_backend"))),
        ("base seed", str(d.get("base_seed"))),
        (
            "episodes",
            f"{stats['episodes']} (indices {_ranges(stats.get('episode_indices', []))}); "
            "episode i's randomness derives from (base seed, i) only",
        ),
        ("failed episodes", str(len(stats.get("failures") or []))),
        *(("missing", str(p)) for p in stats.get("problems") or []),
    ]
    content = [
        (
            "sensors",
            ", ".join(f"{n} ({sensors.get(n, '?')}): {k} frames" for n, k in frames.items())
            or "(none)",
        ),
        ("frames", str(stats["frames"]["total"])),
        (
            "classes",
            ", ".join(
                f"{i}:{c}" + (" (stuff)" if stuff[i] else f" ({inst.get(c, 0)} instances)")
                for i, c in enumerate(classes)
                if i > 0
            ),
        ),
        ("resolutions", _resolutions(stats)),
    ]
    randomization = [
        (
            path,
            p["declared"]
            + ("" if p["coverage"] is None else f" (coverage {100 * p['coverage']:.0f}%)"),
        )
        for path, p in params.items()
    ] or [("(none)", "the scene has no distributions")]
    scen = [
        (
            name,
            f"declared {_pct(s.get('declared_rate'))}, happened in {s['episodes']} episodes "
            f"({_pct(s['rate'])})",
        )
        for name, s in stats.get("scenarios", {}).items()
    ]
    conv = d.get("conventions")
    conventions = (
        [(k, str(v)) for k, v in sorted(conv.items())]
        if isinstance(conv, dict)
        else [("", str(conv))]
    )
    lim = [(f"{i + 1}", x) for i, x in enumerate(known_limitations(stats, warns))]
    rows: Rows = [
        ("Dataset", overview),
        ("Provenance", provenance),
        ("Content", content),
        ("Randomized parameters (declared laws)", randomization),
    ]
    if scen:
        rows.append(("Scenarios", scen))
    rows += [("Known limitations", lim), ("Conventions", conventions)]
    return rows


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _backend(b: Any) -> str:
    if isinstance(b, dict):
        return f"{b.get('platform', '?')}: {b.get('renderer', '?')} ({b.get('version', '?')})"
    return str(b or "?")


def _resolutions(stats: dict[str, Any]) -> str:
    parts = []
    for name, c in stats.get("cameras", {}).items():
        res = ", ".join(f"{w}x{h}" for w, h in c.get("resolutions", []))
        parts.append(f"{name}: {res or '?'}")
    return "; ".join(parts) or "(no cameras)"


def card_markdown(rows: Rows, title: str) -> str:
    out = [f"# Dataset card: {title}", ""]
    for section, items in rows:
        out += [f"## {section}", ""]
        if section == "Known limitations":
            out += [f"- {v}" for _, v in items]
        else:
            out += ["| | |", "|---|---|"]
            out += [f"| {_md(k)} | {_md(v)} |" for k, v in items]
        out.append("")
    return "\n".join(out)


def _md(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")
