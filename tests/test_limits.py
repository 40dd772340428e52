"""Resource limits (simgen.limits): a mistaken value fails fast at load time with an error naming
the field, the limit and how to raise it; limits are raised with --limit, $SIMGEN_LIMITS or
simgen.limits.override."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from simgen import limits
from simgen.errors import SamplingError, SceneFileError, SimgenError
from simgen.random.sample import sample_episode
from simgen.scene.loader import parse_scene
from tests.conftest import ROOT

HEAD = "schema_version: 1\n"
CAM = "{{kind: camera, name: c, resolution: [{w}, {h}], look_at: {{eye: [1, 0, 0], target: [0, 0, 0]}}}}"


def problem(text: str):
    with pytest.raises(SceneFileError) as info:
        parse_scene(HEAD + text, filename="s.yaml", base_dir=ROOT)
    assert len(info.value.problems) == 1, str(info.value)
    return info.value.problems[0]


def loads(text: str) -> None:
    parse_scene(HEAD + text, filename="s.yaml", base_dir=ROOT)


def assert_names_limit(p, field: str, line: int, name: str) -> None:
    assert p.field == field and p.line == line, p
    assert f"limit {name}=" in p.message and f"--limit {name}=" in p.message, p.message


def test_defaults_and_parse() -> None:
    d = limits.Limits()
    assert limits.current() == d
    assert (d.max_objects, d.max_image_side, d.max_rays_per_sweep) == (1000, 8192, 4 * 1024**2)
    assert d.max_duration_s == 3600.0 and d.max_texture_pixels == 8192**2
    assert limits.parse("max_objects=5000, max_duration_s=1e4") == {
        "max_objects": 5000,
        "max_duration_s": 1e4,
    }
    for bad, msg in (
        ("max_objets=5", "unknown limit 'max_objets'; limits are: max_scene_bytes"),
        ("max_objects", "expected NAME=VALUE"),
        ("max_objects=2.5", "expected an integer"),
        ("max_objects=lots", "expected an integer"),
        ("max_duration_s=nan", "positive finite"),
        ("max_objects=0", "positive finite"),
    ):
        with pytest.raises(SimgenError, match=msg):
            limits.current().replace(**limits.parse(bad))


def test_override_env_and_precedence(monkeypatch) -> None:
    monkeypatch.setenv(limits.ENV, "max_objects=7")
    assert limits.current().max_objects == 7
    with limits.override(max_objects=9) as lim:
        assert lim.max_objects == 9 and limits.current().max_objects == 9
        assert limits.current().max_image_side == 8192
    assert limits.current().max_objects == 7
    monkeypatch.setenv(limits.ENV, "max_objects=x")
    with pytest.raises(SimgenError, match=r"\$SIMGEN_LIMITS: limit max_objects='x'"):
        limits.current()
    assert limits.Limits().replace(max_objects=12).to_env() == "max_objects=12"


def test_resolution() -> None:
    p = problem(f"sensors: [{CAM.format(w=10000, h=10)}]\n")
    assert_names_limit(p, "sensors[0].resolution[0]", 2, "max_image_side")
    assert "(10000)" in p.message
    p = problem(f"sensors: [{CAM.format(w=8000, h=8000)}]\n")
    assert_names_limit(p, "sensors[0].resolution", 2, "max_image_pixels")
    with limits.override(max_image_side=20000, max_image_pixels=1e8):
        loads(f"sensors: [{CAM.format(w=10000, h=8000)}]\n")


def test_rays_per_sweep() -> None:
    lidar = "sensors:\n  - {kind: lidar, name: l, channels: 1024, upper_fov_deg: 10, lower_fov_deg: -10, columns: 8192, pose: {}}\n"
    p = problem(lidar)
    assert_names_limit(p, "sensors[0]", 3, "max_rays_per_sweep")
    assert "(8.39e+06)" in p.message or "(8388608)" in p.message
    with limits.override(max_rays_per_sweep=10_000_000):
        loads(lidar)


def test_objects_per_scene() -> None:
    box = "{name: b%d, class: t, kind: box, size: [1, 1, 1]}"
    many = "objects: [" + ", ".join(box % i for i in range(6)) + "]\n"
    with limits.override(max_objects=5):
        p = problem(many)
        assert_names_limit(p, "objects", 2, "max_objects")
    loads(many)
    # a scatter count is checked by its range, before any episode
    scatter = (
        "objects: [{name: floor, class: floor, kind: plane}]\n"
        "scatter:\n  - name: s\n    class: t\n    count: {randint: [1, 5000]}\n"
        "    objects: [{kind: sphere, radius: 0.1}]\n"
        "    region: {box: {center: [0, 0, 1], size: [10, 10, 1]}}\n"
    )
    p = problem(scatter)
    assert_names_limit(p, "scatter[0].count", 6, "max_objects")
    assert "(5001)" in p.message
    with limits.override(max_objects=6000):
        scene = parse_scene(HEAD + scatter, filename="s.yaml", base_dir=ROOT)
    with pytest.raises(SamplingError, match="max_objects=1000"):  # sampled under the default
        sample_episode(scene, 0, 0, num_episodes=1)


def test_episode_duration_and_steps() -> None:
    p = problem("simulation: {duration: 7200}\n")
    assert_names_limit(p, "simulation.duration", 2, "max_duration_s")
    p = problem("simulation: {duration: {uniform: [1, 5000]}}\n")
    assert_names_limit(p, "simulation.duration", 2, "max_duration_s")
    p = problem("simulation: {duration: 3000, timestep: 0.001}\n")
    assert_names_limit(p, "simulation.timestep", 2, "max_physics_steps")
    with limits.override(max_duration_s=1e4, max_physics_steps=2e6):
        loads("simulation: {duration: 7200}\n")


@pytest.mark.parametrize(
    ("obj", "field", "name"),
    [
        ("{name: b, class: t, kind: box, size: [1, 1, 20000]}", "size[2]", "max_extent_m"),
        ("{name: b, class: t, kind: sphere, radius: 1e-5}", "radius", "min_extent_m"),
        ("{name: b, class: t, kind: box, size: [1, 1, 1], mass: 1e-9}", "mass", "min_mass_kg"),
        (
            "{name: b, class: t, kind: box, size: [1, 1, 1], pose: {position: [1e6, 0, 0]}}",
            "pose.position[0]",
            "max_position_m",
        ),
        (
            "{name: b, class: t, kind: box, size: [1, 1, 1], velocity: {linear: [1e5, 0, 0]}}",
            "velocity.linear",
            "max_speed_m_s",
        ),
        (
            "{name: b, class: t, kind: urdf, asset: 'pybullet:cube.urdf', scale: 1e5}",
            "scale",
            "max_scale",
        ),
    ],
)
def test_physical_plausibility(obj: str, field: str, name: str) -> None:
    p = problem(f"objects: [{obj}]\n")
    assert_names_limit(p, f"objects[0].{field}", 2, name)


def test_exponent_notation_is_a_number() -> None:
    # PyYAML reads 1e5 and 1.0e5 as text (YAML 1.1); scene files read them as numbers
    p = problem("objects: [{name: b, class: t, kind: box, size: [1, 1, 1], mass: 1e12}]\n")
    assert p.field == "objects[0].mass" and "1e+12" in p.message
    p = problem("objects: [{name: b, class: t, kind: box, size: [1, 1, 1], mass: '1e3'}]\n")
    assert "'1e3' is not a number" in p.message  # quoted: a string


def test_numbers_beyond_max_abs_number_in_the_file() -> None:
    p = problem("seed: 1e30\n")
    assert p.field == "seed" and p.line == 2 and "max_abs_number" in p.message


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simgen.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def test_cli_limit_option_and_env(tmp_path: Path) -> None:
    scene = tmp_path / "s.yaml"
    scene.write_text(HEAD + f"sensors: [{CAM.format(w=640, h=480)}]\n")
    r = run_cli("--limit", "max_image_side=600", "validate", str(scene))
    text = r.stdout + r.stderr
    assert r.returncode == 2 and "Traceback" not in text, text
    assert f"{scene}:2:" in text and "max_image_side=600" in text, text
    r = run_cli("validate", str(scene), env={"SIMGEN_LIMITS": "max_image_pixels=1000"})
    assert r.returncode == 2 and "max_image_pixels=1000" in r.stdout + r.stderr
    r = run_cli(
        "--limit", "max_image_side=600", "--limit", "max_image_side=700", "validate", str(scene)
    )
    assert r.returncode == 0, r.stdout + r.stderr
    for bad in (["--limit", "bogus=1"], ["--limit", "max_objects=-3"]):
        r = run_cli(*bad, "validate", str(scene))
        text = r.stdout + r.stderr
        assert r.returncode == 2 and "--limit" in text and "Traceback" not in text, text
    r = run_cli("validate", str(scene), env={"SIMGEN_LIMITS": "max_objects=many"})
    assert r.returncode == 2 and "SIMGEN_LIMITS" in r.stdout + r.stderr


def test_every_limit_is_documented_with_its_default() -> None:
    import re
    from dataclasses import fields

    text = (ROOT / "docs" / "reliability.md").read_text()
    text = text.split("## Resource limits", 1)[1].split("\n## ", 1)[0]  # that section only
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^ |]+)", text, re.M))
    d = limits.Limits()
    assert list(rows) == [f.name for f in fields(d)]
    for name, default in rows.items():
        assert float(default) == getattr(d, name), name


def test_cli_resolution_override_is_checked_against_the_limits(tmp_path: Path) -> None:
    out = tmp_path / "o.h5"
    for res, name in (("9000x10", "max_image_side"), ("8000x8000", "max_image_pixels")):
        r = run_cli(
            "render", str(ROOT / "scenes/tabletop.yaml"), "-o", str(out), "--resolution", res
        )
        text = r.stdout + r.stderr
        assert r.returncode == 2 and f"--resolution {res!r}" in text and name in text, text
        assert "Traceback" not in text
    assert not out.exists()
