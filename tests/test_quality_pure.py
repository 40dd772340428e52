"""Pure parts of simgen.quality: histograms, image measures, coverage of declared laws,
comparison distances, warnings, failed episodes, and simgen.data.MixedSampler."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats as sps

from simgen.quality.accum import Histogram, Moments, cdf_distances
from simgen.quality.coverage import (
    ParameterCoverage,
    coverage_bins,
    declared_distributions,
    declared_path,
    law_of,
)
from simgen.random.kinds import DISTRIBUTIONS


def test_histogram_bins_edges_and_moments() -> None:
    h = Histogram(0.0, 1.0, 4)
    h.add(np.array([0.0, 0.1, 0.25, 0.5, 0.99, 1.0, -0.1, 1.5, np.nan]))
    assert h.counts.tolist() == [2, 1, 1, 2]  # 1.0 falls in the closed last bin
    assert (h.under, h.over, h.total) == (1, 1, 8)
    vals = np.array([0.0, 0.1, 0.25, 0.5, 0.99, 1.0, -0.1, 1.5])
    assert h.moments.mean == pytest.approx(vals.mean()) and h.moments.std == pytest.approx(
        vals.std()
    )
    lg = Histogram(1.0, 1000.0, 3, log=True)
    lg.add(np.array([1.0, 9.9, 10.0, 500.0, 0.0, -1.0]))
    assert lg.counts.tolist() == [2, 1, 1] and lg.under == 2
    back = Histogram.from_json(json.loads(json.dumps(h.to_json())))
    assert back.counts.tolist() == h.counts.tolist() and back.moments.mean == pytest.approx(
        h.moments.mean
    )
    a, b = Histogram(0, 1, 4), Histogram(0, 1, 4)
    a.add(np.array([0.1, 0.2])), b.add(np.array([0.9]))
    a.merge(b)
    assert a.counts.tolist() == [2, 0, 0, 1] and a.moments.count == 3
    i = Histogram.integer(0, 5)
    i.add(np.array([0, 1, 1, 4, 5]))
    assert i.counts.tolist() == [1, 2, 0, 0, 1] and i.over == 1


def test_moments_merge_equals_numpy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(3, 2, 1000)
    m = Moments()
    for part in np.array_split(x, 7):
        m.add(part)
    assert (m.count, m.min, m.max) == (1000, x.min(), x.max())
    assert m.mean == pytest.approx(x.mean()) and m.std == pytest.approx(x.std())


def test_cdf_distances() -> None:
    a, b, c = Histogram(0, 1, 10), Histogram(0, 1, 10), Histogram(0, 1, 10)
    a.add(np.full(5, 0.15))
    b.add(np.full(9, 0.15))
    c.add(np.full(3, 0.85))
    assert cdf_distances(a, b) == (0.0, 0.0)
    ks, w1 = cdf_distances(a, c)
    assert ks == 1.0 and w1 == pytest.approx(7 / 11)  # 7 bins apart of 11 steps (with under/over)
    with pytest.raises(ValueError):
        cdf_distances(a, Histogram(0, 2, 10))


def test_image_measures_hand_computed() -> None:
    from simgen.quality.images import channel_counts, image_measures

    img = np.zeros((5, 5, 3), np.uint8)
    img[2, 2] = 255
    m = image_measures(img)
    assert m["brightness"] == pytest.approx(255 / 25 / 255)
    assert m["contrast"] == pytest.approx(np.std([0] * 24 + [255]) / 255)
    assert m["saturation"] == 0.0
    # Laplacian: -4 * 255 at the center, 255 at its 4 neighbours, 0 elsewhere (mean 0)
    assert m["sharpness"] == pytest.approx((1020**2 + 4 * 255**2) / 25)
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    assert image_measures(red)["saturation"] == 1.0
    assert image_measures(red)["brightness"] == pytest.approx(76 / 255)  # round(0.299 * 255)
    half = np.zeros((20, 20, 3), np.uint8)
    half[:, 10:] = 255
    assert 0 < image_measures(half)["edge_density"] <= 0.1  # one or two columns of edges
    assert channel_counts(red)[0, 31] == 16 and channel_counts(red)[1, 0] == 16


# -- coverage ---------------------------------------------------------------------------------

LAWS = [
    {"uniform": [2.0, 5.0]},
    {"log_uniform": [0.01, 10.0]},
    {"normal": {"mean": 1.0, "std": 0.5}},
    {"normal": {"mean": 0.0, "std": 1.0, "low": -0.5, "high": 2.0}},
    {"in_box": {"center": [1, 2, 3], "size": [1, 0.5, 0]}},
    {"in_sphere": {"center": [0, 0, 1], "radius": 0.5}},
    {"in_shell": {"center": [1, 0, 0], "inner": 1.0, "outer": 2.0}},
    {"in_disk": {"center": [0, 0, 1], "radius": 2.0, "inner": 0.5, "normal": [0, 1, 1]}},
    {"hsv": {"hue_deg": [330, 390], "saturation": [0.5, 1.0], "value": [0.3, 0.9]}},
    {"axis_rotation": {"axis": [0, 0, 1], "angle_deg": [0, 360], "base_euler_deg": [90, 0, 0]}},
    {"axis_rotation": {"axis": [1, 1, 0], "angle_deg": [-30, 60]}},
    {"uniform_rotation": {}},
]


@pytest.mark.parametrize("spec", LAWS, ids=[next(iter(x)) for x in LAWS])
def test_each_law_maps_its_own_samples_to_uniform_u(spec) -> None:
    """Samples drawn from a distribution, mapped through its law, are uniform on [0, 1] in every
    dimension (KS test), and so cover every bin: the mappings are the laws' CDFs."""
    dist = DISTRIBUTIONS[next(iter(spec))].model_validate(spec)
    law = law_of(dist)
    assert law is not None and law.dims
    rng = np.random.default_rng(0)
    samples = [dist.sample(rng) for _ in range(600)]
    for dim in law.dims:
        u = np.array([dim.to_u(v) for v in samples])
        assert np.all((u > -1e-9) & (u < 1 + 1e-9)), dim.name
        assert sps.kstest(u, "uniform").pvalue > 1e-3, (spec, dim.name)
    pc = ParameterCoverage("x", dist, law, False)
    for v in samples:
        pc.add(v)
    r = pc.result()
    assert r["coverage"] == 1.0 and all(d["outside"] == 0 for d in r["dims"])
    assert r["largest_gap"] < 0.05


def test_to_value_inverts_to_u() -> None:
    for spec in (LAWS[0], LAWS[1], LAWS[2], LAWS[4], LAWS[9]):
        dist = DISTRIBUTIONS[next(iter(spec))].model_validate(spec)
        for dim in law_of(dist).dims:
            for u in (0.1, 0.5, 0.9):
                v = dim.to_value(u)
                if next(iter(spec)) in ("uniform", "log_uniform", "normal"):
                    assert dim.to_u(v) == pytest.approx(u)


def test_coverage_detects_a_parameter_sampled_in_half_its_range() -> None:
    dist = DISTRIBUTIONS["uniform"].model_validate({"uniform": [0.0, 10.0]})
    rng = np.random.default_rng(1)
    half, full = (ParameterCoverage("p", dist, law_of(dist), False) for _ in range(2))
    for _ in range(100):
        half.add(float(rng.uniform(0.0, 5.0)))
        full.add(float(rng.uniform(0.0, 10.0)))
    h, f = half.result(), full.result()
    k = coverage_bins(100)
    assert k == 20 and h["dims"][0]["bins"] == 20
    assert h["coverage"] == 0.5 and f["coverage"] == 1.0
    g0, g1 = h["dims"][0]["largest_gap_value"]
    assert 4.9 < g0 < 5.0 and g1 == 10.0 and h["largest_gap"] > 0.5
    from simgen.quality.checks import warnings

    stats = {"parameters": {"p": h, "q": f}}
    warns = warnings(stats)
    assert (
        len(warns) == 1
        and warns[0]["topic"] == "parameters"
        and "p: poor coverage 50%" in warns[0]["message"]
    )


def test_coverage_exact_values() -> None:
    dist = DISTRIBUTIONS["uniform"].model_validate({"uniform": [0.0, 1.0]})
    pc = ParameterCoverage("p", dist, law_of(dist), False)
    for v in (0.05, 0.15, 0.25, 0.35, 0.45, 0.75, 0.8, 0.85, 0.9, 0.95):
        pc.add(v)
    pc.add(1.5)  # outside the law
    r = pc.result()["dims"][0]
    assert (r["samples"], r["outside"], r["bins"], r["bins_hit"]) == (10, 1, 2, 2)
    assert r["largest_gap"] == pytest.approx(0.3) and r["largest_gap_u"] == pytest.approx(
        [0.45, 0.75]
    )


def test_discrete_laws() -> None:
    ch = DISTRIBUTIONS["choice"].model_validate(
        {"choice": {"values": ["a", "b", "c", "d"], "weights": [1, 1, 1, 0]}}
    )
    pc = ParameterCoverage("c", ch, law_of(ch), False)
    for v in ["a"] * 20 + ["b"] * 5:
        pc.add(v)
    r = pc.result()
    assert r["kind"] == "discrete" and r["values"] == 3 and r["values_hit"] == 2
    assert r["coverage"] == pytest.approx(2 / 3)
    assert {c["value"]: c["count"] for c in r["counts"]} == {"a": 20, "b": 5, "c": 0}
    ri = DISTRIBUTIONS["randint"].model_validate({"randint": [2, 5]})
    pc = ParameterCoverage("n", ri, law_of(ri), False)
    for v in (2, 3, 3, 5):
        pc.add(v)
    assert pc.result()["coverage"] == 0.75
    k = DISTRIBUTIONS["choice"].model_validate({"choice": {"values": [1, 2, 3], "k": 2}})
    pc = ParameterCoverage("k", k, law_of(k), False)
    pc.add([1, 2])
    assert pc.result()["values_hit"] == 2
    custom = DISTRIBUTIONS["custom"].model_validate({"custom": {"name": "f"}})
    pc = ParameterCoverage("f", custom, law_of(custom), False)
    pc.add(3.0), pc.add([1.0, 7.0])
    r = pc.result()
    assert r["kind"] == "undeclared" and r["coverage"] is None and r["range"]["max"] == 7.0


def test_declared_paths_of_a_scene_and_scatter_instances() -> None:
    from tests.conftest import scene_from

    scene = scene_from(
        """
schema_version: 1
objects:
  - {name: floor, class: floor, kind: plane}
  - {name: table, class: table, kind: box, size: [1, 1, 0.1], static: true}
  - {name: b, class: box, kind: box, size: [0.1, 0.1, 0.1], mass: {uniform: [1, 2]},
     pose: {position: [{uniform: [0, 1]}, 0, 1]}}
scatter:
  - name: s
    count: {randint: [1, 3]}
    objects:
      - {kind: sphere, class: ball, radius: {uniform: [0.01, 0.02]}}
      - {kind: box, class: cube, size: [0.05, 0.05, 0.05], mass: {log_uniform: [0.1, 1]}}
    weights: [1, 3]
    region: {on_top_of: {object: table}}
"""
    )
    decl = declared_distributions(json.loads(scene.model_dump_json(by_alias=True)))
    assert set(decl) == {
        "objects[2].mass",
        "objects[2].pose.position[0]",
        "scatter[0].count",
        "scatter[0].objects[0].radius",
        "scatter[0].objects[1].mass",
        "scatter[0].template",
    }
    sampled = {"scatter[0].instances[1].template": 1, "scatter[0].instances[1].mass": 0.5}
    assert (
        declared_path("scatter[0].instances[1].mass", decl, sampled) == "scatter[0].objects[1].mass"
    )
    assert declared_path("scatter[0].instances[1].template", decl, sampled) == "scatter[0].template"
    assert (
        declared_path("scatter[0].instances[0].radius", decl, {}) == "scatter[0].objects[0].radius"
    )
    assert declared_path("scatter[0].instances[0].pose", decl, {}) is None

    from simgen.quality.episodes import ParameterStats
    from simgen.random.sample import sample_episode

    ps = ParameterStats(json.loads(scene.model_dump_json(by_alias=True)))
    for i in range(30):
        ps.add_episode(json.loads(sample_episode(scene, 3, i).to_json()), {})
    r = ps.result()["parameters"]
    assert r["objects[2].mass"]["samples"] == 30
    n = r["scatter[0].count"]["samples"]
    assert n == 30 and r["scatter[0].count"]["coverage"] == 1.0
    t = {c["value"]: c["count"] for c in r["scatter[0].template"]["counts"]}
    assert sum(t.values()) > 30 and t[1] > t[0]  # weights 1:3
    assert r["scatter[0].objects[1].mass"]["samples"] == t[1]


def test_per_frame_parameters_pool_every_tick() -> None:
    from simgen.quality.episodes import ParameterStats

    scene_json = {"lights": [{"intensity": {"per_frame": {"uniform": [1.0, 3.0]}}}]}
    ps = ParameterStats(scene_json)
    ps.add_episode(
        {"sampled": {"lights[0].intensity": 1.2}},
        {"lights[0].intensity": np.array([1.2, 1.4, 1.6])},
    )
    r = ps.result()["parameters"]["lights[0].intensity"]
    assert r["per_frame"] and r["samples"] == 3 and r["episodes"] == 1


# -- comparison, warnings, failures -------------------------------------------------------------


def _side(brightness: list[float], classes: dict[str, int]):
    from simgen.quality.images import ImageStats
    from simgen.quality.objects import ObjectStats

    im = ImageStats()
    for b in brightness:
        im.measures["brightness"].add(np.array([b]))
    im.frames = len(brightness)
    names = ["background", *classes]
    ob = ObjectStats(names, [False] * len(names))
    for n, (name, count) in enumerate(classes.items(), 1):
        ob.per_class[name].instances = count
        ob.instances_per_frame.add(np.full(count, n))
    return {"name": "x", "kind": "coco", "images": im.to_json(), "objects": ob.to_json()}


def test_compare_distances_and_summary() -> None:
    from simgen.quality.compare import compare_stats

    a = _side([0.3, 0.35, 0.4, 0.45], {"car": 30, "person": 10})
    same = compare_stats(a, a)
    assert all(r["distance"] == 0.0 for r in same["distances"])
    assert same["summary"][0].startswith("no statistic differs")
    b = _side([0.7, 0.75, 0.8, 0.85], {"car": 10, "person": 10, "bike": 20})
    gap = compare_stats(a, b)
    first = gap["distances"][0]
    assert first["statistic"] == "brightness" and first["ks"] == 1.0 and first["level"] == "large"
    assert "B brighter" in first["summary"]
    cls = next(r for r in gap["distances"] if r["statistic"] == "class frequencies")
    # shares A: car .75, person .25; B: car .25, person .25, bike .5 -> TV = 0.5
    assert cls["distance"] == pytest.approx(0.5) and "only in B: bike" in cls["summary"]


def test_scenario_rate_warning() -> None:
    from simgen.quality.checks import warnings

    ok = {"episodes": 100, "scenarios": {"s": {"declared_rate": 0.3, "episodes": 33, "rate": 0.33}}}
    off = {"episodes": 100, "scenarios": {"s": {"declared_rate": 0.3, "episodes": 5, "rate": 0.05}}}
    assert warnings(ok) == []
    assert "happened in 5.0% of episodes, declared 30.0%" in warnings(off)[0]["message"]


def test_failures_from_reader_or_manifest(tmp_path) -> None:
    from simgen.quality.checks import warnings
    from simgen.quality.episodes import dataset_failures

    rec = {"index": 3, "seed": 99, "error": "SamplingError: no sample", "attempts": 2}
    assert dataset_failures(SimpleNamespace(path=tmp_path, failures=[rec])) == [rec]
    (tmp_path / "manifest.json").write_text(json.dumps({"failed": {"000003": rec}}))
    assert dataset_failures(SimpleNamespace(path=tmp_path)) == [rec]
    assert dataset_failures(SimpleNamespace(path=tmp_path / "d.h5")) == []
    w = warnings({"failures": [rec]})
    assert "1 episodes failed" in w[0]["message"] and "seed 99" in w[0]["message"]


# -- MixedSampler -------------------------------------------------------------------------------


def test_mixed_sampler_fixed_ratio_is_exact_in_every_prefix() -> None:
    from simgen.data import MixedSampler

    s = MixedSampler(40, 100, synthetic_fraction=0.3, num_samples=200, seed=5)
    idx = list(s)
    assert len(idx) == len(s) == 200
    synth = np.array([i >= 40 for i in idx])
    counts = np.cumsum(synth)
    m = np.arange(1, 201)
    assert np.all(np.abs(counts - 0.3 * m) <= 0.5 + 1e-9)
    real = [i for i in idx if i < 40]
    assert sorted(real[:40]) == list(range(40))  # every real item once before repeats
    assert list(s) == idx  # deterministic
    assert list(MixedSampler(40, 100, synthetic_fraction=0.3, num_samples=200, seed=6)) != idx
    s.set_epoch(1)
    assert list(s) != idx
    s.set_epoch(0)
    assert list(s) == idx


def test_mixed_sampler_curriculum() -> None:
    from simgen.data import MixedSampler

    s = MixedSampler(
        1000, 1000, synthetic_fraction=[(0, 0.0), (1, 1.0)], num_samples=100, epochs=4, seed=0
    )
    shares = []
    total = 0
    for e in range(4):
        s.set_epoch(e)
        src = s.sources()
        shares.append(src.mean())
        total += src.sum()
        assert np.all(np.array(list(s))[src] >= 1000) and np.all(np.array(list(s))[~src] < 1000)
    # progress runs 0..1 over 400 samples: mean shares of the quarters are 1/8, 3/8, 5/8, 7/8
    assert shares == pytest.approx([0.125, 0.375, 0.625, 0.875], abs=0.011)
    assert abs(total - sum(min(i / 400, 1) for i in range(400))) <= 0.5
    back = MixedSampler(10, 10, synthetic_fraction=lambda p: 1.0 - p, num_samples=10, seed=0)
    assert back.share(0.0) == 1.0 and back.share(1.0) == 0.0
    with pytest.raises(ValueError):
        MixedSampler(10, 10, synthetic_fraction=1.5)
    from simgen.errors import DatasetError

    with pytest.raises(DatasetError):
        MixedSampler(10, 0, synthetic_fraction=0.2)
    only_real = MixedSampler(10, 0, synthetic_fraction=0.0, num_samples=25)
    assert sorted(list(only_real)[:10]) == list(range(10))


def test_mixed_dataset_and_torch_loader() -> None:
    from simgen.data import MixedDataset, MixedSampler

    real = [{"x": i} for i in range(3)]
    synth = [{"x": 10 + i} for i in range(5)]
    mixed = MixedDataset(real, synth)
    assert (
        len(mixed) == 8
        and mixed[1] == {"x": 1, "source": "real"}
        and mixed[3]["source"] == "synthetic"
    )
    with pytest.raises(IndexError):
        mixed[8]
    torch = pytest.importorskip("torch", reason="torch is optional (pip install torch)")
    sampler = MixedSampler(real, synth, synthetic_fraction=0.5, num_samples=8, seed=1)
    loader = torch.utils.data.DataLoader(mixed, sampler=sampler, batch_size=4, collate_fn=list)
    got = [s["x"] for batch in loader for s in batch]
    assert got == [mixed[i]["x"] for i in sampler]


def test_histogram_rejects_a_log_range_at_zero() -> None:
    with pytest.raises(ValueError):
        Histogram(0.0, 1.0, 4, log=True)
    assert math.isnan(cdf_distances(Histogram(0, 1, 2), Histogram(0, 1, 2))[0])
