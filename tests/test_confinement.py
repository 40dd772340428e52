"""Scene files are data and stay confined: safe YAML only (no object-constructing tags, alias
bombs bounded), asset paths only inside the scene's folder, simgen's assets, pybullet_data and
folders allowed with --asset-root; '..' escapes and symlinks pointing outside are refused."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from simgen import limits
from simgen.errors import AssetError, SceneFileError
from simgen.scene.loader import load_scene, parse_scene
from simgen.sim.assets import AssetResolver, pybullet_data_dir
from tests.conftest import ROOT

TET = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"


def load_error(text: str) -> SceneFileError:
    with pytest.raises(SceneFileError) as info:
        parse_scene(text, filename="s.yaml", base_dir=ROOT)
    return info.value


@pytest.mark.parametrize(
    "value",
    [
        "!!python/object/apply:os.system ['echo hacked']",
        "!!python/object/new:os.system ['echo hacked']",
        "!!python/name:os.system",
        "!!python/module:os",
        "!!python/tuple [1, 2]",
        "!custom {a: 1}",
        "!!binary aGVsbG8=",
        "!!set {a, b}",
        "!!omap [{a: 1}]",
        "!!pairs [{a: 1}]",
    ],
)
def test_object_constructing_tags_are_refused(value: str, capfd) -> None:
    e = load_error(f"schema_version: 1\nname: {value}\n")
    (p,) = e.problems
    assert p.line == 2 and p.field == "name" and "not allowed" in p.message, p
    assert "hacked" not in capfd.readouterr().out  # nothing ran


def test_only_plain_values_are_built() -> None:
    from simgen.scene.yamlpos import load_yaml

    data, _ = load_yaml("a: 2001-12-14\nb: !!timestamp 2001-12-14\nc: [1, 2.5, true, ~, x]\n")
    assert data == {"a": "2001-12-14", "b": "2001-12-14", "c": [1, 2.5, True, None, "x"]}


def test_expressions_and_imports_are_plain_strings() -> None:
    # '${...}', '!!python' in a quoted string or 'os.system' are just (invalid) names
    e = load_error(
        "schema_version: 1\nobjects: [{name: '${HOME}', class: '!!python/name:os.system', "
        "kind: box, size: [1, 1, 1]}]\n"
    )
    assert {p.field for p in e.problems} == {"objects[0].name", "objects[0].class"}


def test_alias_bomb_stops_at_the_node_limit_quickly() -> None:
    lines = ["schema_version: 1", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):  # 10^12 values if expanded
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    t0 = time.perf_counter()
    e = load_error("\n".join(lines) + "\n")
    assert time.perf_counter() - t0 < 5.0
    (p,) = e.problems
    assert "more than 200000 values" in p.message and "max_yaml_nodes" in (p.allowed or "")
    with limits.override(max_yaml_nodes=50):
        (p,) = load_error(
            "schema_version: 1\na: &a [x, x, x, x, x, x, x, x]\nb: [*a, *a, *a, *a, *a, *a, *a]\n"
        ).problems
    assert "more than 50 values" in p.message


def test_huge_scene_file_is_refused_before_reading(tmp_path: Path) -> None:
    f = tmp_path / "big.yaml"
    f.write_text("schema_version: 1\n" + "# padding\n" * 1000)
    with limits.override(max_scene_bytes=1000), pytest.raises(SceneFileError) as info:
        load_scene(f)
    assert "max_scene_bytes=1000" in str(info.value) and "--limit" in str(info.value)


# -- asset paths ---------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tmp/scene (the scene folder), tmp/outside/secret.obj, tmp/extra/ok.obj, and symlinks in
    the scene folder: a file and a folder pointing outside, a file pointing inside."""
    scene, outside, extra = tmp_path / "scene", tmp_path / "outside", tmp_path / "extra"
    for d in (scene, outside, extra):
        d.mkdir()
    (outside / "secret.obj").write_text(TET)
    (extra / "ok.obj").write_text(TET)
    (scene / "mesh.obj").write_text(TET)
    (scene / "link.obj").symlink_to(outside / "secret.obj")
    (scene / "linkdir").symlink_to(outside)
    (scene / "inner.obj").symlink_to(scene / "mesh.obj")
    return tmp_path


@pytest.mark.parametrize(
    "name",
    [
        "../outside/secret.obj",
        "sub/../../outside/secret.obj",
        "link.obj",  # a symlink pointing outside
        "linkdir/secret.obj",  # through a symlinked folder
        "OUTSIDE_ABS",  # an absolute path outside every root
        "/etc/passwd",
        "pybullet:../../../../../../etc/passwd",
        "simgen:../pyproject.toml",
    ],
)
def test_escapes_are_refused(tree: Path, name: str) -> None:
    name = name.replace("OUTSIDE_ABS", str(tree / "outside" / "secret.obj"))
    assets = AssetResolver.for_scene(tree / "scene")
    with pytest.raises(AssetError, match="outside the allowed folders") as info:
        assets.resolve(name, "mesh of object 'thing'")
    msg = str(info.value)
    assert "'thing'" in msg and repr(name) in msg and "--asset-root" in msg


def test_paths_inside_the_roots_resolve(tree: Path) -> None:
    assets = AssetResolver.for_scene(tree / "scene")
    assert assets.resolve("mesh.obj") == tree / "scene" / "mesh.obj"
    assert assets.resolve("./sub/../mesh.obj") == tree / "scene" / "mesh.obj"
    assert assets.resolve("inner.obj") == tree / "scene" / "mesh.obj"  # symlink inside: fine
    assert assets.resolve("pybullet:cube.urdf") == pybullet_data_dir() / "cube.urdf"


def test_asset_root_allows_a_folder(tree: Path) -> None:
    allowed = AssetResolver.for_scene(tree / "scene", (tree / "outside",))
    assert allowed.resolve("link.obj") == tree / "outside" / "secret.obj"
    assert allowed.resolve(str(tree / "outside" / "secret.obj")).is_file()
    # ... and only that folder
    with pytest.raises(AssetError, match="outside the allowed folders"):
        allowed.resolve(str(tree / "extra" / "ok.obj"))


def test_files_folder_outside_is_refused(tree: Path) -> None:
    from simgen.random.files import list_files

    assets = AssetResolver.for_scene(tree / "scene")
    for folder in ("..", "../outside", "linkdir", str(tree / "outside")):
        with pytest.raises(AssetError, match="outside the allowed folders"):
            list_files(assets, folder, "*.obj")
    # symlinked files pointing outside are skipped in a listing of an allowed folder
    assert list_files(assets, ".", "*.obj") == ("inner.obj", "mesh.obj")


def test_build_refuses_an_escaping_mesh_naming_the_object(tree: Path) -> None:
    from simgen.run.prepare import prepare_episode
    from simgen.sim.visuals import MeshLibrary
    from simgen.sim.world import PhysicsWorld

    text = "schema_version: 1\nobjects: [{name: thing, class: t, kind: mesh, file: link.obj}]\n"
    scene = parse_scene(text, filename="s.yaml", base_dir=tree / "scene")
    params = prepare_episode(scene, 0, 0, num_episodes=1)
    for roots, ok in (((), False), ((tree / "outside",), True)):
        assets = AssetResolver.for_scene(tree / "scene", roots)
        if ok:
            with PhysicsWorld(params, assets=assets, meshes=MeshLibrary()) as world:
                assert len(world.bodies) == 1
        else:
            with (
                pytest.raises(AssetError, match=r"object 'thing'.*outside the allowed folders"),
                PhysicsWorld(params, assets=assets, meshes=MeshLibrary()),
            ):
                pass


def simgen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simgen.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_cli_validate_checks_asset_paths_and_asset_root(tree: Path) -> None:
    scene = tree / "scene" / "s.yaml"
    scene.write_text(
        "schema_version: 1\nobjects:\n"
        "  - {name: a, class: t, kind: mesh, file: link.obj}\n"
        "  - {name: b, class: t, kind: box, size: [1, 1, 1], material: {texture: nope.png}}\n"
    )
    r = simgen("validate", str(scene))
    text = r.stdout + r.stderr
    assert r.returncode == 2 and "Traceback" not in text, text
    assert "objects[0].file" in text and "outside the allowed folders" in text, text
    assert "objects[1].material.texture" in text and "no such file" in text, text
    scene.write_text(
        "schema_version: 1\nobjects: [{name: a, class: t, kind: mesh, file: link.obj}]\n"
    )
    r = simgen("validate", "--asset-root", str(tree / "outside"), str(scene))
    assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr


@pytest.mark.gl
def test_python_api_asset_roots(tree: Path) -> None:
    import simgen

    scene = parse_scene(
        "schema_version: 1\nsimulation: {duration: 0.05}\n"
        "objects: [{name: a, class: t, kind: mesh, file: link.obj, static: true}]\n"
        "sensors: [{kind: camera, name: c, resolution: [16, 12], rate_hz: 20, "
        "look_at: {eye: [3, 1, 1], target: [0, 0, 0]}}]\n",
        filename="s.yaml",
        base_dir=tree / "scene",
    )
    with pytest.raises(AssetError, match="outside the allowed folders"):
        list(simgen.frames(scene))
    frames = list(simgen.frames(scene, asset_roots=(tree / "outside",)))
    assert frames and (frames[0].instance == 1).any()  # the mesh is seen


def test_unresolvable_names_are_asset_errors(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    assets = AssetResolver.for_scene(tmp_path)
    for name, reason in (
        ("a", "cannot be resolved"),  # a symlink loop
        ("x" * 300, "File name too long"),
        ("", "empty or invalid file name"),
        ("a\x00b", "empty or invalid file name"),
    ):
        with pytest.raises(AssetError, match=reason):
            assets.resolve(name, "mesh")
        with pytest.raises(AssetError, match=reason):
            assets.resolve_dir(name, "folder")
