"""Broken asset files give an AssetError naming the object and the file (exit code 2 in the CLI),
never a traceback, a pybullet crash or a silently blank object. Tiny files are written in
tmp_path."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from simgen.errors import AssetError, SimgenError
from tests.conftest import ROOT, scene_from

TET = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"
INERTIAL = (
    '<inertial><mass value="1"/><inertia ixx="0.1" ixy="0" ixz="0" iyy="0.1" iyz="0" izz="0.1"/>'
    "</inertial>"
)


def urdf(mesh: str) -> str:
    return (
        f'<?xml version="1.0"?>\n<robot name="r"><link name="base">{INERTIAL}\n'
        f'<visual><geometry><mesh filename="{mesh}"/></geometry></visual>\n'
        '<collision><geometry><box size="0.1 0.1 0.1"/></geometry></collision></link></robot>\n'
    )


def build(tmp_path: Path, obj: str) -> None:
    """Load a one-object scene in tmp_path, prepare episode 0 and build its physics world."""
    from simgen.run.prepare import prepare_episode
    from simgen.sim.assets import AssetResolver
    from simgen.sim.visuals import MeshLibrary
    from simgen.sim.world import PhysicsWorld

    scene = scene_from(f"schema_version: 1\nobjects: [{obj}]\n", tmp_path)
    meshes = MeshLibrary()
    params = prepare_episode(scene, 0, 0, num_episodes=1, meshes=meshes)
    with PhysicsWorld(params, assets=AssetResolver.for_scene(tmp_path), meshes=meshes):
        pass


def mesh_obj(file: str, extra: str = "") -> str:
    return f"{{name: thing, class: t, kind: mesh, file: {file}{extra}}}"


def expect(tmp_path: Path, obj: str, file: str, pattern: str) -> AssetError:
    with pytest.raises(AssetError) as info:
        build(tmp_path, obj)
    msg = str(info.value)
    assert "'thing'" in msg, msg  # the object
    assert str(tmp_path / file) in msg or file in msg, msg  # the file
    assert re.search(pattern, msg), msg
    return info.value


def test_a_good_mesh_builds(tmp_path: Path) -> None:
    (tmp_path / "tet.obj").write_text(TET)
    build(tmp_path, mesh_obj("tet.obj"))


def test_missing_mesh_file(tmp_path: Path) -> None:
    expect(tmp_path, mesh_obj("nope.obj"), "nope.obj", "no such file")


def test_empty_mesh_file(tmp_path: Path) -> None:
    (tmp_path / "empty.obj").write_text("")
    expect(tmp_path, mesh_obj("empty.obj"), "empty.obj", "the file is empty")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("junk.stl", b"solid x\n\x00\x01\x02garbage"),
        ("junk.obj", b"this is not a mesh\nat all\n"),
        ("junk.ply", b"ply\nformat binary_little_endian 1.0\nelement vertex 99\nend_header\n\x00"),
        ("junk.glb", b"glTF\x02\x00\x00\x00garbage"),
    ],
)
def test_corrupt_mesh_file(tmp_path: Path, name: str, data: bytes) -> None:
    (tmp_path / name).write_bytes(data)
    expect(tmp_path, mesh_obj(name), name, "cannot be read|no triangles")


def test_mesh_with_only_zero_area_faces(tmp_path: Path) -> None:
    # three collinear vertices and a triangle with a repeated vertex
    (tmp_path / "flat.obj").write_text("v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\nf 1 1 2\n")
    expect(tmp_path, mesh_obj("flat.obj"), "flat.obj", "2 triangles have zero area")


def test_mesh_with_nan_vertices(tmp_path: Path) -> None:
    (tmp_path / "nan.obj").write_text(TET.replace("v 0 0 1", "v 0 nan 1"))
    expect(tmp_path, mesh_obj("nan.obj"), "nan.obj", "NaN or infinite vertex")


def test_texture_that_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "tet.obj").write_text(TET)
    (tmp_path / "wood.png").write_text("hello, I am not a PNG")
    obj = mesh_obj("tet.obj", ", material: {texture: wood.png}")
    expect(tmp_path, obj, "wood.png", "texture of object 'thing'.*not an image")
    (tmp_path / "wood.png").write_bytes(b"")
    expect(tmp_path, obj, "wood.png", "empty, not an image")
    box = "{name: thing, class: t, kind: box, size: [1, 1, 1], material: {texture: wood.png}}"
    expect(tmp_path, box, "wood.png", "empty, not an image")


def test_texture_beyond_the_size_limit(tmp_path: Path) -> None:
    from PIL import Image

    from simgen import limits

    Image.new("RGB", (64, 32)).save(tmp_path / "big.png")
    (tmp_path / "tet.obj").write_text(TET)
    obj = mesh_obj("tet.obj", ", material: {texture: big.png}")
    build(tmp_path, obj)
    with limits.override(max_texture_pixels=1000):
        e = expect(tmp_path, obj, "big.png", r"texture pixels \(64 x 32\) \(2048\)")
    assert "max_texture_pixels=1000" in str(e) and "--limit max_texture_pixels=" in str(e)


def test_urdf_with_a_missing_mesh(tmp_path: Path) -> None:
    (tmp_path / "robot.urdf").write_text(urdf("meshes/gone.obj"))
    obj = "{name: thing, class: t, kind: urdf, asset: robot.urdf}"
    e = expect(tmp_path, obj, "robot.urdf", "its mesh 'meshes/gone.obj'.*no such file")
    assert "gone.obj" in str(e)
    # with the mesh present it loads, and its visual is the mesh
    (tmp_path / "meshes").mkdir()
    (tmp_path / "meshes" / "gone.obj").write_text(TET)
    build(tmp_path, obj)


def test_urdf_mesh_outside_the_allowed_folders(tmp_path: Path) -> None:
    inner = tmp_path / "scene"
    inner.mkdir()
    (tmp_path / "secret.obj").write_text(TET)
    (inner / "robot.urdf").write_text(urdf("../secret.obj"))
    with pytest.raises(AssetError, match="outside the allowed folders") as info:
        build(inner, "{name: thing, class: t, kind: urdf, asset: robot.urdf}")
    assert "'thing'" in str(info.value) and "robot.urdf" in str(info.value)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", "the file is empty"),
        ("<sdf/>", "no <robot> element: not a URDF file"),
        ("<robot><link name='a'>", "pybullet cannot load"),
        (
            '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "../../etc/passwd">]>'
            '<robot name="r"><link name="b"><visual><geometry><mesh filename="&a;"/></geometry>'
            "</visual></link></robot>",
            "its mesh '&a;'.*no such file",  # entities are not expanded
        ),
    ],
)
def test_broken_urdf(tmp_path: Path, text: str, pattern: str) -> None:
    (tmp_path / "robot.urdf").write_text(text)
    expect(
        tmp_path, "{name: thing, class: t, kind: urdf, asset: robot.urdf}", "robot.urdf", pattern
    )


def test_urdf_meshes_are_found_where_pybullet_finds_them(tmp_path: Path) -> None:
    """Relative to the URDF's folder or a folder above it, with or without package://;
    commented-out meshes are ignored."""
    (tmp_path / "meshes").mkdir()
    (tmp_path / "meshes" / "a.obj").write_text(TET)
    (tmp_path / "robots").mkdir()
    (tmp_path / "robots" / "r.urdf").write_text(
        '<?xml version="1.0"?>\n'
        + urdf("package://meshes/a.obj")
        .split("\n", 1)[1]
        .replace(
            "</link>",
            '<!-- <visual><geometry><mesh filename="gone.obj"/></geometry></visual> --></link>',
        )
    )
    build(tmp_path, "{name: thing, class: t, kind: urdf, asset: robots/r.urdf}")


def test_pybullet_data_urdfs_pass_the_check() -> None:
    """Every URDF shipped with pybullet_data but one (whose meshes are really missing)."""
    from simgen.sim.assetcheck import check_urdf
    from simgen.sim.assets import AssetResolver, pybullet_data_dir

    assets = AssetResolver.for_scene(ROOT / "scenes")
    failed = []
    for p in sorted(pybullet_data_dir().rglob("*.urdf")):
        try:
            check_urdf(p, assets, "URDF")
        except AssetError:
            failed.append(p.relative_to(pybullet_data_dir()).as_posix())
    assert failed == ["kuka_iiwa/model_for_sdf.urdf"]


def test_asset_file_beyond_the_size_limit(tmp_path: Path) -> None:
    from simgen import limits

    (tmp_path / "tet.obj").write_text(TET)
    with limits.override(max_asset_bytes=10), pytest.raises(AssetError) as info:
        build(tmp_path, mesh_obj("tet.obj"))
    assert "max_asset_bytes=10" in str(info.value) and "'thing'" in str(info.value)


def test_mesh_beyond_the_triangle_limit(tmp_path: Path) -> None:
    from simgen import limits

    (tmp_path / "tet.obj").write_text(TET)
    with limits.override(max_mesh_triangles=3), pytest.raises(AssetError) as info:
        build(tmp_path, mesh_obj("tet.obj"))
    assert "triangles (4)" in str(info.value) and "max_mesh_triangles=3" in str(info.value)


@pytest.mark.gl
def test_cli_broken_asset_exits_2_naming_object_and_file(tmp_path: Path) -> None:
    (tmp_path / "wood.png").write_text("not an image")
    scene = tmp_path / "s.yaml"
    scene.write_text(
        "schema_version: 1\nsimulation: {duration: 0.1}\nobjects:\n"
        "  - {name: crate, class: t, kind: box, size: [1, 1, 1], material: {texture: wood.png}}\n"
        "sensors: [{kind: camera, name: c, resolution: [16, 12], rate_hz: 10, "
        "look_at: {eye: [3, 0, 1], target: [0, 0, 0]}}]\n"
    )
    r = subprocess.run(
        [sys.executable, "-m", "simgen.cli", "render", str(scene), "-o", str(tmp_path / "o.h5")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    text = r.stdout + r.stderr
    assert r.returncode == 2, text
    assert "'crate'" in text and "wood.png" in text and "not an image" in text, text
    assert "Traceback" not in text
    assert not (tmp_path / "o.h5").exists()


def test_errors_are_simgen_errors() -> None:
    assert issubclass(AssetError, SimgenError)


def test_truncated_texture(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])  # a valid header, half the data
    box = "{name: thing, class: t, kind: box, size: [1, 1, 1], material: {texture: t.png}}"
    expect(tmp_path, box, "t.png", "corrupt or truncated")
