"""Plots of statistics as PNG bytes (matplotlib, Agg backend: no display, no network)."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from simgen.quality.accum import Histogram

COLORS = ("#3b6ea5", "#d9822b")
SIZE = (4.2, 2.5)
DPI = 90


def _figure(size: tuple[float, float] = SIZE) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=DPI)
    ax.tick_params(labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout(pad=0.4)
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def histogram_png(
    hists: list[Histogram], title: str, xlabel: str = "", labels: list[str] | None = None
) -> bytes:
    """Histograms over the same bins as step outlines, normalized to shares (one per dataset),
    with the mean as a dashed line; values below/above the range are noted in the title."""
    fig, ax = _figure()
    edges = hists[0].edges
    for i, h in enumerate(hists):
        total = max(h.total, 1)
        share = np.concatenate([h.counts / total, [h.counts[-1] / total]])
        lab = labels[i] if labels else None
        ax.step(edges, share, where="post", color=COLORS[i % 2], lw=1.3, label=lab)
        ax.fill_between(edges, share, step="post", alpha=0.18, color=COLORS[i % 2])
        if h.moments.count:
            ax.axvline(h.moments.mean, color=COLORS[i % 2], ls="--", lw=0.8)
    if hists[0].log:
        from matplotlib.ticker import NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    _trim(ax, hists)
    extra = []
    if any(h.under for h in hists):
        extra.append(f"{sum(h.under for h in hists)} below")
    if any(h.over for h in hists):
        extra.append(f"{sum(h.over for h in hists)} above")
    ax.set_title(title + (f"  ({', '.join(extra)} range)" if extra else ""), fontsize=8)
    ax.set_xlabel(xlabel or hists[0].unit, fontsize=7)
    ax.set_ylabel("share", fontsize=7)
    if labels:
        ax.legend(fontsize=7, frameon=False)
    return _png(fig)


def _trim(ax: Any, hists: list[Histogram]) -> None:
    """Zoom on the occupied bins (with a margin) so narrow distributions stay readable."""
    counts = np.sum([h.counts for h in hists], axis=0)
    nz = np.nonzero(counts)[0]
    if len(nz) == 0:
        return
    e = hists[0].edges
    a, b = max(nz[0] - 2, 0), min(nz[-1] + 3, len(e) - 1)
    ax.set_xlim(e[a], e[b])


def bars_png(
    names: list[str],
    series: list[list[float]],
    title: str,
    ylabel: str,
    labels: list[str] | None = None,
    log: bool = False,
) -> bytes:
    """Grouped bars (one group per name, one bar per series)."""
    width = max(SIZE[0], 0.35 * len(names) * max(len(series), 1) + 1.0)
    fig, ax = _figure((min(width, 9.0), SIZE[1] + 0.4))
    x = np.arange(len(names))
    k = len(series)
    for i, vals in enumerate(series):
        ax.bar(
            x + (i - (k - 1) / 2) * 0.8 / k,
            vals,
            0.8 / k,
            color=COLORS[i % 2],
            label=labels[i] if labels else None,
        )
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=35, ha="right", fontsize=7)
    if log:
        ax.set_yscale("symlog", linthresh=1)
    ax.set_title(title, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=7)
    if labels:
        ax.legend(fontsize=7, frameon=False)
    return _png(fig)


def coverage_png(param: dict[str, Any]) -> bytes:
    """A parameter's samples over its declared range, one panel per dimension, empty
    coverage bins shaded and the largest empty interval marked."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    dims = param["dims"]
    fig, axes = plt.subplots(
        len(dims), 1, figsize=(SIZE[0], 0.45 + 1.0 * len(dims)), dpi=DPI, squeeze=False
    )
    for ax, d in zip(axes[:, 0], dims, strict=True):
        counts = np.asarray(d["histogram_u"], float)
        edges = np.linspace(0, 1, len(counts) + 1)
        ax.bar(edges[:-1], counts, width=1 / len(counts), align="edge", color=COLORS[0])
        k = d["bins"]
        for j in range(k):  # shade coverage bins holding no sample
            a, b = j / k, (j + 1) / k
            lo, hi = math.floor(a * len(counts)), math.ceil(b * len(counts))
            if counts[lo:hi].sum() == 0:
                ax.axvspan(a, b, color="#c0392b", alpha=0.12, lw=0)
        g0, g1 = d["largest_gap_u"]
        ax.axvspan(g0, g1, ymin=0, ymax=0.06, color="#c0392b", alpha=0.8, lw=0)
        ax.set_xlim(0, 1)
        vals = d["histogram_value_edges"]
        ticks = [0, 0.25, 0.5, 0.75, 1.0]
        idx = [round(t * (len(vals) - 1)) for t in ticks]
        ax.set_xticks(ticks)
        ax.set_xticklabels([_tick(vals[i]) for i in idx], fontsize=6)
        ax.tick_params(labelsize=6)
        ax.set_ylabel(d["dim"], fontsize=7)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    axes[0, 0].set_title(
        f"{param['path']}: coverage {100 * (param['coverage'] or 0):.0f}%", fontsize=8
    )
    return _png(fig)


def _tick(v: float | None) -> str:
    return "?" if v is None else f"{v:.3g}"
