"""Each distribution follows its law (Kolmogorov-Smirnov / chi-square at a fixed seed), the same
seed gives the same values, and distributions work in every kind of scene field."""

from __future__ import annotations

import colorsys
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from simgen import dist
from simgen.errors import AssetError, SamplingError, SceneError, SceneFileError
from simgen.geometry import quat_to_matrix
from simgen.random.distributions import SamplingContext
from simgen.random.sample import sample_episode
from simgen.random.seeding import episode_rng
from simgen.sim.assets import AssetResolver
from tests.conftest import ROOT, scene_from

N = 4000
P_MIN = 0.001  # the laws hold: p-values above this at the fixed seed (negative controls: < 1e-6)


def draws(d, n: int = N, ctx: SamplingContext | None = None) -> list:
    rng = episode_rng(1234, 0, "test", d.tag)
    c = ctx or SamplingContext()
    return [d.sample_in(rng, c) for _ in range(n)]


def ks(x, cdf) -> float:
    return float(stats.kstest(np.asarray(x, dtype=float), cdf).pvalue)


def test_scalar_laws() -> None:
    assert ks(draws(dist.uniform(-2, 3)), stats.uniform(-2, 5).cdf) > P_MIN
    lu = np.log(draws(dist.log_uniform(0.01, 10)))
    assert ks(lu, stats.uniform(math.log(0.01), math.log(1000)).cdf) > P_MIN
    assert ks(draws(dist.normal(1.5, 0.3)), stats.norm(1.5, 0.3).cdf) > P_MIN
    trunc = stats.truncnorm((0 - 1) / 2, (2 - 1) / 2, loc=1, scale=2)
    x = draws(dist.normal(1, 2, low=0, high=2))
    assert min(x) >= 0 and max(x) <= 2 and ks(x, trunc.cdf) > P_MIN
    counts = np.bincount(draws(dist.randint(2, 6)), minlength=7)[2:]
    assert stats.chisquare(counts).pvalue > P_MIN and len(counts) == 5
    b = draws(dist.bernoulli(0.3))
    assert stats.binomtest(sum(b), N, 0.3).pvalue > P_MIN


def test_weighted_choice_and_sets_without_replacement() -> None:
    x = draws(dist.choice(["a", "b", "c"], weights=[1, 2, 7]))
    counts = [x.count(v) for v in "abc"]
    assert stats.chisquare(counts, np.array([0.1, 0.2, 0.7]) * N).pvalue > P_MIN
    sets = draws(dist.choice(list(range(10)), k=4, replace=False), n=2000)
    assert all(len(set(s)) == 4 for s in sets)
    members = np.bincount(np.concatenate(sets), minlength=10)
    assert stats.chisquare(members).pvalue > P_MIN  # each value equally likely to be in the set
    with pytest.raises(ValueError, match="distinct"):
        dist.choice([1, 2], k=3, replace=False)


def test_uniform_rotation_is_haar() -> None:
    qs = np.array([d["quat_wxyz"] for d in draws(dist.uniform_rotation())])
    assert np.allclose(np.linalg.norm(qs, axis=1), 1) and np.all(qs[:, 0] >= 0)
    r = quat_to_matrix(qs)
    # the rotated z axis is uniform on the sphere: its z component is uniform in [-1, 1]
    assert ks(r[:, 2, 2], stats.uniform(-1, 2).cdf) > P_MIN
    # the rotation angle has density (1 - cos t) / pi on [0, pi]
    angle = 2 * np.arccos(np.clip(qs[:, 0], -1, 1))
    assert ks(angle, lambda t: (t - np.sin(t)) / np.pi) > P_MIN
    # negative control: angles uniform in [0, pi] are not Haar rotations
    assert (
        ks(np.random.default_rng(0).uniform(0, np.pi, N), lambda t: (t - np.sin(t)) / np.pi) < 1e-6
    )


def test_axis_rotation() -> None:
    d = dist.axis_rotation(axis=(0, 0, 1), angle_deg=(30, 90), base_euler_deg=(90, 0, 0))
    qs = np.array([x["quat_wxyz"] for x in draws(d)])
    r = quat_to_matrix(qs)
    # base: roll 90 maps local y to world z; then the yaw keeps world z fixed
    assert np.allclose(r[:, :, 1] @ [0, 0, 1], 1, atol=1e-9)
    yaw = np.degrees(np.arctan2(r[:, 1, 0], r[:, 0, 0]))
    assert ks(yaw, stats.uniform(30, 60).cdf) > P_MIN


def test_points_in_regions() -> None:
    p = np.array(draws(dist.in_box((1, 2, 3), (2, 4, 0))))
    assert np.all(p[:, 2] == 3)
    assert (
        ks(p[:, 0], stats.uniform(0, 2).cdf) > P_MIN
        and ks(p[:, 1], stats.uniform(0, 4).cdf) > P_MIN
    )
    c = np.array([0.5, -1.0, 2.0])
    p = np.array(draws(dist.in_sphere(c, 2.0))) - c
    r = np.linalg.norm(p, axis=1)
    assert r.max() <= 2.0 and ks((r / 2) ** 3, stats.uniform(0, 1).cdf) > P_MIN
    assert ks(p[:, 2] / r, stats.uniform(-1, 2).cdf) > P_MIN  # direction uniform
    p = np.array(draws(dist.in_shell((0, 0, 0), 1.0, 3.0)))
    r = np.linalg.norm(p, axis=1)
    assert r.min() >= 1.0 and ks((r**3 - 1) / 26, stats.uniform(0, 1).cdf) > P_MIN
    # a tilted annulus: points in the plane, r^2 uniform, angle uniform
    n = np.array([1.0, 1.0, 0.0]) / math.sqrt(2)
    p = np.array(draws(dist.in_disk((0, 0, 1), 2.0, inner=0.5, normal=tuple(n))))
    p -= [0, 0, 1]
    assert np.allclose(p @ n, 0, atol=1e-12)
    r = np.linalg.norm(p, axis=1)
    assert ks((r**2 - 0.25) / (4 - 0.25), stats.uniform(0, 1).cdf) > P_MIN
    phi = np.arctan2(p[:, 2], p @ np.array([1.0, -1.0, 0.0]) / math.sqrt(2))
    assert ks(phi, stats.uniform(-math.pi, 2 * math.pi).cdf) > P_MIN
    # negative control: r uniform (not r^2) fails the disk law
    assert ks(np.random.default_rng(1).uniform(0.5, 2, N) ** 2 / 4, stats.uniform(0, 1).cdf) < 1e-6


def test_hsv_colors() -> None:
    x = np.array(draws(dist.hsv(hue_deg=(300, 420), saturation=(0.5, 1), value=(0.2, 0.9))))
    assert x.shape == (N, 3) and x.min() >= 0 and x.max() <= 1
    hsv = np.array([colorsys.rgb_to_hsv(*c) for c in x])
    hue = (hsv[:, 0] * 360 - 300) % 360  # unwrap the range that crosses 360
    assert ks(hue, stats.uniform(0, 120).cdf) > P_MIN
    assert ks(hsv[:, 1], stats.uniform(0.5, 0.5).cdf) > P_MIN
    assert ks(hsv[:, 2], stats.uniform(0.2, 0.7).cdf) > P_MIN
    assert len(dist.hsv(alpha=0.5).sample(np.random.default_rng(0))) == 4


def test_files_pools_and_confinement(tmp_path: Path) -> None:
    ctx = SamplingContext(assets=AssetResolver.for_scene(ROOT))
    d = dist.files("pybullet:random_urdfs", "*/*.urdf")
    assert len(d.candidates(ctx)) == 1000
    picks = draws(d, n=3000, ctx=ctx)
    assert all(p.startswith("pybullet:random_urdfs/") and p.endswith(".urdf") for p in picks)
    folders = np.bincount([int(p.split("/")[1]) // 100 for p in picks], minlength=10)
    assert stats.chisquare(folders).pvalue > P_MIN  # uniform over the 1000 files
    pool = dist.files("pybullet:random_urdfs", "*/*.urdf", pool_size=20, pool_seed=3)
    members = pool.candidates(ctx)
    assert len(members) == 20 and members == pool.candidates(ctx)
    assert set(draws(pool, n=500, ctx=ctx)) <= set(members)
    assert dist.files("pybullet:random_urdfs", "*/*.urdf", 20, 4).candidates(ctx) != members
    with pytest.raises(AssetError, match="outside the allowed folders"):
        dist.files("/etc", "*").candidates(ctx)
    with pytest.raises(ValueError, match=r"without '\.\.'"):
        dist.files("pybullet:", "../*")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_text("x")
    inside = tmp_path / "scene"
    inside.mkdir()
    (inside / "link").symlink_to(outside)
    (inside / "ok.png").write_text("y")
    ctx2 = SamplingContext(assets=AssetResolver.for_scene(inside))
    assert dist.files(".", "**/*.png").candidates(ctx2) == ("./ok.png",)


def test_schedule_interpolates_over_the_dataset() -> None:
    d = dist.schedule(start=(0.0, 0.1), end=(0.9, 1.0))
    rng = np.random.default_rng(0)
    lo, hi = [], []
    for i in range(5):
        v = [d.sample_in(rng, SamplingContext(episode_index=i, num_episodes=5)) for _ in range(200)]
        lo.append(min(v))
        hi.append(max(v))
        assert 0.225 * i - 1e-9 <= min(v) and max(v) <= 0.1 + 0.225 * i + 1e-9
    assert lo[-1] >= 0.9 and hi[0] <= 0.1
    fixed = dist.schedule(start=2.0, end=4.0, by="episode", episodes=10)
    assert fixed.sample_in(rng, SamplingContext(episode_index=5)) == 3.0
    assert fixed.sample_in(rng, SamplingContext(episode_index=50)) == 4.0
    with pytest.raises(SamplingError, match="dataset size"):
        d.sample_in(rng, SamplingContext(episode_index=1))
    with pytest.raises(SamplingError, match="outside the dataset"):
        d.sample_in(rng, SamplingContext(episode_index=7, num_episodes=5))


SCENE = """
schema_version: 1
objects:
  - {name: floor, class: floor, kind: plane}
  - name: a
    class: thing
    kind: box
    size: {choice: [[0.1, 0.1, 0.1], [0.2, 0.1, 0.1]]}
    pose:
      position: {in_sphere: {center: [0, 0, 1], radius: 0.5}}
      orientation: {uniform_rotation: {}}
    mass: {schedule: {start: [1, 2], end: [5, 6]}}
    material: {color: {hsv: {hue_deg: [0, 60]}}}
  - name: b
    class: thing
    kind: urdf
    asset: {files: {folder: 'pybullet:random_urdfs', pattern: '*/*.urdf'}}
    pose: {position: [{uniform: [-1, 1]}, 0, {normal: [1, 0.1]}], orientation: {axis_rotation: {}}}
lights:
  - {kind: ambient, intensity: {per_frame: {uniform: [0.1, 0.5]}}}
  - {kind: directional, color: {per_frame: {hsv: {saturation: [0, 0.2], value: [0.8, 1]}}}}
"""


def test_distributions_in_every_kind_of_field_are_resolved_and_recorded() -> None:
    scene = scene_from(SCENE)
    p = sample_episode(scene, 5, 2, num_episodes=4)
    assert p.to_json() == sample_episode(scene, 5, 2, num_episodes=4).to_json()
    assert p.sampled != sample_episode(scene, 6, 2, num_episodes=4).sampled
    a, b = p.scene.objects[1], p.scene.objects[2]
    assert a.size in ((0.1, 0.1, 0.1), (0.2, 0.1, 0.1))
    assert np.linalg.norm(np.subtract(a.pose.position, (0, 0, 1))) <= 0.5
    assert np.isclose(np.linalg.norm(a.pose.orientation.quat_wxyz), 1)
    assert 4.0 <= a.mass <= 5.0  # index 2 of 4: two thirds of the way from [1, 2] to [5, 6]
    assert b.asset.startswith("pybullet:random_urdfs/")
    assert set(p.sampled) == {
        "objects[1].size",
        "objects[1].pose.position",
        "objects[1].pose.orientation",
        "objects[1].mass",
        "objects[1].material.color",
        "objects[2].asset",
        "objects[2].pose.position[0]",
        "objects[2].pose.position[2]",
        "objects[2].pose.orientation",
        "lights[0].intensity",
        "lights[1].color",
    }
    assert set(p.per_frame) == {"lights[0].intensity", "lights[1].color"}
    assert p.sampled["objects[1].mass"] == a.mass


def test_sampled_values_are_checked_against_the_field() -> None:
    scene = scene_from(
        SCENE.replace(
            "mass: {schedule: {start: [1, 2], end: [5, 6]}}", "mass: {normal: {mean: -2, std: 0.1}}"
        )
    )  # (a bounded range beyond the field's limits is refused at load time: test_limits.py)
    with pytest.raises(SceneError, match=r"objects\[1\]\.mass: sampled value is invalid"):
        sample_episode(scene, 0, 0, num_episodes=1)


@pytest.mark.parametrize(
    ("snippet", "field", "allowed"),
    [
        ("pose: {position: {in_bux: {}}}", "objects[1].pose.position", "in_box"),
        ("pose: {orientation: {random: {}}}", "objects[1].pose.orientation", "uniform_rotation"),
        ("material: {color: {hsb: {}}}", "objects[1].material.color", "hsv"),
        ("mass: {uniform: [2, 1]}", "objects[1].mass.uniform", None),
        (
            "pose: {position: {in_sphere: {center: [0, 0, 0], radius: -1}}}",
            "objects[1].pose.position.in_sphere.radius",
            None,
        ),
        (
            "material: {color: [1, 0, 0], metallic: {per_frame: {uniform: [0, 1]}}}",
            "objects[1].material.metallic",
            None,
        ),
    ],
)
def test_bad_distributions_point_at_their_line(
    tmp_path: Path, snippet: str, field: str, allowed
) -> None:
    text = f"""schema_version: 1
objects:
  - {{name: floor, class: floor, kind: plane}}
  - {{name: a, class: c, kind: box, size: [1, 1, 1], {snippet}}}
"""
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    from simgen.scene.loader import load_scene

    with pytest.raises(SceneFileError) as info:
        load_scene(f)
    (p,) = info.value.problems
    assert p.line == 4 and p.field == field, p.render(None)
    if allowed:
        assert allowed in (p.allowed or "")


def test_choice_values_must_be_plain() -> None:
    scene = scene_from(
        SCENE.replace(
            "mass: {schedule: {start: [1, 2], end: [5, 6]}}", "mass: {choice: [{uniform: [1, 2]}]}"
        )
    )
    with pytest.raises(SamplingError, match="plain values"):
        sample_episode(scene, 0, 0, num_episodes=1)
