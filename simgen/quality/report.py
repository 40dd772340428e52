"""``simgen report``: one self-contained HTML file (inline CSS and script, images as data URIs,
no network) with the dataset card, warnings, plots of every statistic, parameter coverage,
scenario frequencies, the domain gap to a reference dataset and a sample gallery."""

from __future__ import annotations

import base64
import html
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from simgen.errors import OutputError
from simgen.quality import plots
from simgen.quality.accum import Histogram
from simgen.quality.card import card_markdown, dataset_card
from simgen.quality.checks import Thresholds, warnings

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#222;background:#f6f7f9}
header{background:#24313f;color:#fff;padding:14px 24px}header h1{margin:0;font-size:21px}
header p{margin:4px 0 0;color:#c9d3de;font-size:13px}
nav{background:#fff;border-bottom:1px solid #ddd;padding:6px 24px;font-size:13px;position:sticky;top:0}
nav a{margin-right:14px;color:#3b6ea5;text-decoration:none}
main{padding:8px 24px 40px;max-width:1400px}
section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:10px 16px;margin:14px 0}
h2{font-size:17px;margin:6px 0 10px}h3{font-size:14px;margin:14px 0 6px;color:#3a4a5a}
table{border-collapse:collapse;font-size:12.5px;margin:4px 0}
td,th{border-bottom:1px solid #eceef1;padding:3px 10px 3px 0;text-align:left;vertical-align:top}
th{color:#555;font-weight:600;cursor:default}th.sort{cursor:pointer}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}.grid img{border:1px solid #eee;max-width:100%}
.warn{color:#8a4b00}.info{color:#2d5a88}
ul li{margin:3px 0;font-size:13px}
.badge{display:inline-block;border-radius:3px;padding:0 5px;font-size:11px;color:#fff}
.b-warning{background:#c77700}.b-info{background:#3b6ea5}
.b-small{background:#3a8a4a}.b-moderate{background:#c77700}.b-large{background:#b03a2e}
.sample{display:inline-block;margin:0 12px 12px 0;vertical-align:top}
.sample figure{display:inline-block;margin:0 4px 0 0;text-align:center;font-size:11px;color:#555}
.sample img{height:180px;image-rendering:auto;border:1px solid #ddd}
.muted{color:#777;font-size:12px}
"""

SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.classList.add('sort');
    th.addEventListener('click', function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var asc = th.getAttribute('data-asc') !== '1';
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute('data-v') || a.cells[col].textContent;
        var y = b.cells[col].getAttribute('data-v') || b.cells[col].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
      th.setAttribute('data-asc', asc ? '1' : '0');
    });
  });
});
document.body.setAttribute('data-report-ready', '1');
"""

#: (key in the camera's images.measures, title, x label)
IMAGE_MEASURES = [
    ("brightness", "brightness (mean gray / 255)", ""),
    ("contrast", "contrast (std of gray / 255)", ""),
    ("saturation", "saturation (mean HSV S)", ""),
    ("sharpness", "sharpness (variance of the Laplacian)", ""),
    ("edge_density", "edge density (share of Canny edge pixels)", ""),
]
OBJECT_HISTS = [
    ("instances_per_frame", "instances per frame (thing classes)"),
    ("box_size", "2D box size, sqrt(area / image area)"),
    ("box_aspect", "2D box aspect, log2(width / height)"),
    ("box_center_x", "box center, horizontal (u / W)"),
    ("box_center_y", "box center, vertical (v / H)"),
    ("visibility", "visibility (visible / amodal pixels)"),
    ("truncation", "truncation (share outside the image)"),
]


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


@dataclass
class ReportSummary:
    path: Path
    bytes: int
    warnings: int
    seconds: float
    card: Path | None = None


def _table(headers: list[str], rows: list[list[Any]], sortable: bool = True) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for r in rows:
        cells = []
        for v in r:
            if isinstance(v, float):
                cells.append(f'<td class="num" data-v="{v!r}">{_num(v)}</td>')
            elif isinstance(v, int) and not isinstance(v, bool):
                cells.append(f'<td class="num" data-v="{v}">{v}</td>')
            else:
                cells.append(f"<td>{esc(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls = ' class="sortable"' if sortable else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _num(v: float) -> str:
    if v != v:  # NaN
        return "-"
    return f"{v:.4g}"


def _hist_plot(
    d: dict[str, Any] | None,
    title: str,
    ref: dict[str, Any] | None = None,
    labels: list[str] | None = None,
) -> str:
    if not d:
        return ""
    h = Histogram.from_json(d)
    if h.total == 0:
        return f'<p class="muted">{esc(title)}: no values</p>'
    hs = [h] + ([Histogram.from_json(ref)] if ref else [])
    return img(plots.histogram_png(hs, title, labels=labels), title)


# -- sections ---------------------------------------------------------------------------------


def _card_section(rows: list[tuple[str, list[tuple[str, str]]]]) -> str:
    parts = ['<section id="card"><h2>Dataset card</h2>']
    for title, items in rows:
        parts.append(f"<h3>{esc(title)}</h3>")
        if title == "Known limitations":
            parts.append("<ul>" + "".join(f"<li>{esc(v)}</li>" for _, v in items) + "</ul>")
        elif title == "Conventions":
            parts.append("<details><summary class='muted'>show</summary>")
            parts.append(_table(["", ""], [[k, v] for k, v in items], sortable=False))
            parts.append("</details>")
        else:
            parts.append(_table(["", ""], [[k, v] for k, v in items], sortable=False))
    parts.append("</section>")
    return "".join(parts)


def _warnings_section(warns: list[dict[str, str]]) -> str:
    if not warns:
        return '<section id="warnings"><h2>Warnings</h2><p>No warnings.</p></section>'
    items = "".join(
        f'<li class="{"warn" if w["level"] == "warning" else "info"}"><span class="badge b-{esc(w["level"])}">'
        f"{esc(w['level'])}</span> <b>{esc(w['topic'])}</b>: {esc(w['message'])}</li>"
        for w in warns
    )
    n = sum(w["level"] == "warning" for w in warns)
    return (
        f'<section id="warnings"><h2>Warnings ({n})</h2><ul class="warnings">{items}</ul></section>'
    )


def _camera_section(name: str, c: dict[str, Any]) -> str:
    o = c["objects"]
    classes = [(k, v) for k, v in o["classes"].items()]
    rows = [
        [
            k,
            "stuff" if v["stuff"] else ("-" if k == "background" else "thing"),
            v["instances"],
            v["frames"],
            100 * v["pixel_coverage"],
        ]
        for k, v in classes
    ]
    parts = [
        f'<section id="cam-{esc(name)}"><h2>Camera {esc(name)}</h2>',
        f'<p class="muted">{c["frames"]} frames; resolutions '
        + esc(", ".join(f"{w}x{h}" for w, h in c.get("resolutions", [])))
        + f"; frames with no thing visible: {o['nothing_visible']['frames']}</p>",
        "<h3>Classes</h3>",
        _table(["class", "type", "instances", "frames visible", "pixel coverage %"], rows),
        '<div class="grid">',
    ]
    things = [(k, v) for k, v in classes if k != "background" and not v["stuff"]]
    if things:
        parts.append(
            img(
                plots.bars_png(
                    [k for k, _ in things],
                    [[v["instances"] for _, v in things]],
                    "instances per class",
                    "instances",
                ),
                "instances per class",
            )
        )
    parts.append(
        img(
            plots.bars_png(
                [k for k, _ in classes],
                [[100 * v["pixel_coverage"] for _, v in classes]],
                "pixel coverage per class",
                "% of pixels",
            ),
            "pixel coverage",
        )
    )
    for key, title in OBJECT_HISTS:
        parts.append(_hist_plot(o.get(key), title))
    parts.append(_hist_plot(c.get("depth_m"), "depth (m), labeled pixels"))
    for key, title, _ in IMAGE_MEASURES:
        parts.append(_hist_plot(c["images"]["measures"].get(key), title))
    ch = c["images"]["channels"]
    if ch["red"]["count"]:
        parts.append(
            img(
                plots.histogram_png(
                    [Histogram.from_json(ch[k]) for k in ("red", "green")],
                    "pixel values: red, green",
                    "value",
                    ["red", "green"],
                ),
                "channels",
            )
        )
    parts.append("</div></section>")
    return "".join(parts)


def _lidar_section(name: str, li: dict[str, Any]) -> str:
    cp = {k: v for k, v in li["class_points"].items() if v > 0}
    parts = [
        f'<section id="lidar-{esc(name)}"><h2>LiDAR {esc(name)}</h2>',
        f'<p class="muted">{li["frames"]} sweeps</p><div class="grid">',
        _hist_plot(li["range_m"], "range (m), clean points"),
        _hist_plot(li["intensity"], "intensity"),
        _hist_plot(li["points_per_frame"], "points per sweep"),
        _hist_plot(li["return_rate"], "return rate (points / beams)"),
    ]
    if cp:
        parts.append(
            img(
                plots.bars_png(
                    list(cp), [list(cp.values())], "points per class", "points", log=True
                ),
                "points per class",
            )
        )
    parts.append("</div></section>")
    return "".join(parts)


def _parameters_section(stats: dict[str, Any]) -> str:
    params = stats.get("parameters", {})
    parts = ['<section id="parameters"><h2>Randomized parameters: coverage</h2>']
    if not params:
        parts.append("<p>The scene declares no distributions.</p></section>")
        return "".join(parts)
    parts.append(
        '<p class="muted">Coverage: share of K equal-probability bins of the declared law '
        "holding a sample (K = n // 5, between 2 and 50); largest gap: longest empty stretch "
        "of the law's range, as a share of it. See docs/quality.md.</p>"
    )
    rows = []
    for path, p in params.items():
        cov = p["coverage"]
        rows.append(
            [
                path,
                p["declared"],
                p["samples"],
                p["episodes"],
                float("nan") if cov is None else 100 * cov,
                float("nan") if p.get("largest_gap") is None else p["largest_gap"],
            ]
        )
    parts.append(
        _table(
            ["parameter", "declared law", "samples", "episodes", "coverage %", "largest gap"], rows
        )
    )
    parts.append('<div class="grid">')
    for p in params.values():
        if p.get("kind") == "continuous" and p["samples"]:
            parts.append(img(plots.coverage_png(p), f"coverage of {p['path']}"))
        elif p.get("kind") == "discrete" and p["samples"] and len(p["counts"]) <= 40:
            names = [str(c["value"])[-24:] for c in p["counts"]]
            parts.append(
                img(
                    plots.bars_png(
                        names,
                        [[c["count"] for c in p["counts"]]],
                        f"{p['path']}: {p['values_hit']} of {p['values']} values drawn",
                        "samples",
                    ),
                    p["path"],
                )
            )
    parts.append("</div>")
    wl = stats.get("parameters_without_law") or {}
    if wl:
        parts.append("<h3>Recorded values without a declared law</h3>")
        parts.append(_table(["field", "values"], [[k, v] for k, v in wl.items()]))
    parts.append("</section>")
    return "".join(parts)


def _scenarios_section(stats: dict[str, Any]) -> str:
    sc = stats.get("scenarios", {})
    parts = ['<section id="scenarios"><h2>Scenarios and events</h2>']
    if not sc:
        parts.append("<p>The scene has no scenarios and no events fired.</p></section>")
        return "".join(parts)
    rows, ev_rows = [], []
    for name, s in sc.items():
        dr = s.get("declared_rate")
        rows.append(
            [name, float("nan") if dr is None else 100 * dr, s["episodes"], 100 * s["rate"]]
        )
        for ev, e in s["events"].items():
            mean = e["start_time_s"].get("mean")
            ev_rows.append(
                [
                    name,
                    ev,
                    ", ".join(e["actions"]),
                    e["count"],
                    e["episodes"],
                    100 * e["rate"],
                    float("nan") if mean is None else mean,
                ]
            )
    parts.append(_table(["scenario", "declared %", "episodes", "observed %"], rows))
    if ev_rows:
        parts.append("<h3>Events</h3>")
        parts.append(
            _table(
                ["scenario", "event", "action", "fired", "episodes", "episodes %", "mean start s"],
                ev_rows,
            )
        )
    names = [r[0] for r in rows]
    parts.append('<div class="grid">')
    parts.append(
        img(
            plots.bars_png(
                names,
                [[0 if r[1] != r[1] else r[1] for r in rows], [r[3] for r in rows]],
                "scenario frequency",
                "% of episodes",
                ["declared", "observed"],
            ),
            "scenario frequency",
        )
    )
    parts.append("</div></section>")
    return "".join(parts)


def _episodes_section(stats: dict[str, Any]) -> str:
    parts = [
        '<section id="episodes"><h2>Episodes: sampling tries and failures</h2><div class="grid">'
    ]
    parts.append(
        _hist_plot(stats.get("tries"), "samples drawn per episode ('require' rejections + 1)")
    )
    parts.append("</div>")
    f = stats.get("failures") or []
    if f:
        parts.append(f"<h3>Failed episodes ({len(f)})</h3>")
        parts.append(
            _table(
                ["episode", "seed", "attempts", "error"],
                [
                    [
                        x.get("index", "?"),
                        str(x.get("seed", "?")),
                        x.get("attempts", "?"),
                        str(x.get("error", "")),
                    ]
                    for x in f
                ],
            )
        )
    else:
        parts.append("<p>No failed episodes recorded.</p>")
    missing = stats.get("problems") or []
    if missing:
        parts.append(f"<h3>Missing or unknown ({len(missing)})</h3><ul>")
        parts.append("".join(f"<li>{esc(str(p))}</li>" for p in missing))
        parts.append("</ul>")
    parts.append("</section>")
    return "".join(parts)


def _gap_section(gap: dict[str, Any], a_set: dict[str, Any], b_set: dict[str, Any]) -> str:
    from simgen.quality.compare import STATISTICS

    parts = [
        '<section id="gap"><h2>Domain gap to the reference</h2>',
        f'<p class="muted">A: {esc(gap["a"]["name"])} ({gap["a"]["images"]} images, {gap["a"]["instances"]} instances) · '
        f"B (reference): {esc(gap['b']['name'])} ({gap['b']['images']} images, {gap['b']['instances']} instances)</p>",
        "<h3>Summary (largest gaps first)</h3><ul>",
        "".join(f"<li>{esc(s)}</li>" for s in gap["summary"]),
        "</ul>",
    ]
    rows = [
        [
            r["statistic"],
            r["metric"],
            r["distance"],
            float("nan") if r["w1"] is None else r["w1"],
            r["level"],
        ]
        for r in gap["distances"]
    ]
    parts.append(_table(["statistic", "metric", "distance", "W1 (share of span)", "gap"], rows))
    parts.append('<div class="grid">')
    for r in gap["distances"][:8]:
        if r["metric"] != "KS":
            continue
        where, key, _ = STATISTICS[r["statistic"]]
        if where == "objects":
            da, db = a_set["objects"].get(key), b_set["objects"].get(key)
        else:
            da, db = a_set["images"][where].get(key), b_set["images"][where].get(key)
        parts.append(
            _hist_plot(da, f"{r['statistic']}: KS {r['ks']:.3f}", db, ["A (this)", "B (reference)"])
        )
    shares = gap.get("class_shares") or {}
    if shares:
        names = list(shares)
        parts.append(
            img(
                plots.bars_png(
                    names,
                    [[100 * shares[n][0] for n in names], [100 * shares[n][1] for n in names]],
                    "class frequencies",
                    "% of instances",
                    ["A (this)", "B (reference)"],
                ),
                "class frequencies",
            )
        )
    parts.append("</div></section>")
    return "".join(parts)


def _gallery_section(groups: list[dict[str, Any]]) -> str:
    parts = ['<section id="gallery"><h2>Sample gallery</h2>']
    if not groups:
        parts.append("<p>No camera frames to show.</p>")
    for g in groups:
        parts.append(f"<h3>{esc(g['group'])}</h3>")
        for s in g["samples"]:
            parts.append(
                f'<div class="sample"><div class="muted">episode {s["episode"]}, {esc(s["camera"])} frame {s["frame"]} (t = {s["time"]:.2f} s)</div>'
            )
            for kind, uri in s["images"].items():
                alt = f"episode {s['episode']} {kind}"
                parts.append(
                    f'<figure><img src="{uri}" alt="{esc(alt)}"><figcaption>{esc(kind)}</figcaption></figure>'
                )
            parts.append("</div>")
    parts.append("</section>")
    return "".join(parts)


# -- the page ---------------------------------------------------------------------------------


def render_html(
    stats: dict[str, Any],
    *,
    gallery: list[dict[str, Any]],
    warns: list[dict[str, str]],
    gap: tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None = None,
) -> str:
    d = stats["dataset"]
    title = (d.get("scene") or {}).get("name") or Path(d["path"]).name
    rows = dataset_card(stats, warns)
    nav = [("card", "Card"), ("warnings", "Warnings")]
    body = [_card_section(rows), _warnings_section(warns)]
    for name, c in stats.get("cameras", {}).items():
        nav.append((f"cam-{name}", f"Camera {name}"))
        body.append(_camera_section(name, c))
    for name, li in stats.get("lidars", {}).items():
        nav.append((f"lidar-{name}", f"LiDAR {name}"))
        body.append(_lidar_section(name, li))
    nav += [("parameters", "Parameters"), ("scenarios", "Scenarios"), ("episodes", "Episodes")]
    body += [_parameters_section(stats), _scenarios_section(stats), _episodes_section(stats)]
    if gap is not None:
        nav.append(("gap", "Domain gap"))
        body.append(_gap_section(*gap))
    nav.append(("gallery", "Gallery"))
    body.append(_gallery_section(gallery))
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<link rel='icon' href='data:,'>"
        f"<title>simgen report: {esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>Dataset report: {esc(title)}</h1><p>{esc(d['path'])} · {stats['episodes']} episodes · "
        f"{stats['frames']['total']} frames · generated {esc(now)} by simgen {esc(d.get('simgen_version'))}</p></header>"
        "<nav>" + "".join(f'<a href="#{esc(i)}">{esc(t)}</a>' for i, t in nav) + "</nav>"
        "<main>" + "".join(body) + f"</main><script>{SCRIPT}</script></body></html>\n"
    )


def write_report(
    dataset: str | Path,
    out: str | Path,
    *,
    stats: dict[str, Any] | None = None,
    reference: str | Path | None = None,
    thresholds: Thresholds | None = None,
    card: str | Path | None = None,
    per_group: int = 2,
    max_groups: int = 8,
) -> ReportSummary:
    """Write the HTML report of ``dataset`` to ``out`` (and its card as Markdown to ``card``).
    ``stats`` reuses statistics computed before (``simgen stats -o``); ``reference`` adds the
    domain gap to another dataset (simgen or COCO)."""
    from simgen.quality.compare import compare_stats, image_set, load_side
    from simgen.quality.engine import compute_stats
    from simgen.quality.gallery import gallery

    t0 = time.perf_counter()
    if stats is None:
        stats = compute_stats(dataset)
    warns = warnings(stats, thresholds)
    gap = None
    if reference is not None:
        a_set, b_set = image_set(stats), load_side(reference)
        gap = (compare_stats(a_set, b_set), a_set, b_set)
    groups = gallery(dataset, per_group=per_group, max_groups=max_groups)
    text = render_html(stats, gallery=groups, warns=warns, gap=gap)
    out = Path(out)
    card_path = Path(card) if card is not None else None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".partial")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
        if card_path is not None:
            title = (stats["dataset"].get("scene") or {}).get("name") or Path(str(dataset)).name
            card_path.write_text(card_markdown(dataset_card(stats, warns), title), encoding="utf-8")
    except OSError as e:
        raise OutputError(f"cannot write the report: {e}") from None
    return ReportSummary(
        out,
        len(text.encode()),
        sum(w["level"] == "warning" for w in warns),
        time.perf_counter() - t0,
        card_path,
    )
