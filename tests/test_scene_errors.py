"""Scene-file errors name file:line:column, the field path, what was wrong and what is allowed."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from simgen.errors import SceneFileError
from simgen.scene.loader import load_scene


def problems(tmp_path: Path, text: str) -> list:
    f = tmp_path / "bad.yaml"
    f.write_text(textwrap.dedent(text).lstrip())
    with pytest.raises(SceneFileError) as info:
        load_scene(f)
    assert str(f) in str(info.value)
    return info.value.problems


def one(tmp_path: Path, text: str):
    ps = problems(tmp_path, text)
    assert len(ps) == 1, [p.render(None) for p in ps]
    return ps[0]


def test_unknown_key_points_at_the_key_and_suggests(tmp_path: Path) -> None:
    p = one(
        tmp_path,
        """
        schema_version: 1
        simulation:
          timestep: 0.01
          durration: 2
        """,
    )
    assert (p.line, p.column) == (4, 3)
    assert p.field == "simulation.durration"
    assert "did you mean 'duration'" in p.message
    assert "duration" in p.allowed and "timestep" in p.allowed


def test_several_problems_each_with_its_line(tmp_path: Path) -> None:
    ps = problems(
        tmp_path,
        """
        schema_version: 1
        objects:
          - name: cube
            class: box
            kind: box
            size: [1, 2]
            mass: -1
          - name: other
            class: box
            kind: boxx
          - name: ball
            class: ball
            kind: sphere
            radius: "big"
        """,
    )
    got = {(p.line, p.field) for p in ps}
    assert (6, "objects[0].size") in got
    assert (7, "objects[0].mass") in got
    assert (10, "objects[1].kind") in got
    assert (14, "objects[2].radius") in got
    kind = next(p for p in ps if p.field == "objects[1].kind")
    assert "'boxx'" in kind.message and "'sphere'" in kind.allowed
    mass = next(p for p in ps if p.field == "objects[0].mass")
    assert "greater than 0" in mass.allowed


def test_nan_and_bad_orientation(tmp_path: Path) -> None:
    ps = problems(
        tmp_path,
        """
        schema_version: 1
        objects:
          - {name: a, class: c, kind: sphere, radius: 1, pose: {position: [0, 0, .nan], orientation: {euler: [0, 0, 0]}}}
        """,
    )
    by_field = {p.field: p for p in ps}
    assert by_field["objects[0].pose.position[2]"].line == 3
    assert "finite" in by_field["objects[0].pose.position[2]"].allowed
    assert "euler_deg" in by_field["objects[0].pose.orientation"].allowed


def test_duplicate_names_and_dangling_references(tmp_path: Path) -> None:
    p = one(
        tmp_path,
        """
        schema_version: 1
        objects:
          - {name: cube, class: box, kind: box, size: [1, 1, 1]}
          - {name: cube, class: box, kind: box, size: [1, 1, 1]}
        """,
    )
    assert p.field == "objects[1].name" and p.line == 4 and "duplicate" in p.message
    p = one(
        tmp_path,
        """
        schema_version: 1
        objects:
          - {name: cube, class: box, kind: box, size: [1, 1, 1]}
        sensors:
          - kind: camera
            name: cam
            resolution: [64, 48]
            look_at: {eye: [1, 0, 0], target: [0, 0, 0]}
            attach_to: {object: truck}
        """,
    )
    assert p.field == "sensors[0].attach_to.object" and p.line == 9
    assert "no object named 'truck'" in p.message and "cube" in p.message


def test_yaml_problems(tmp_path: Path) -> None:
    p = one(tmp_path, "schema_version: 1\nobjects: [\n")
    assert p.line is not None and "invalid YAML" in p.message
    p = one(tmp_path, "schema_version: 1\nname: a\nname: b\n")
    assert p.line == 3 and "duplicate key 'name'" in p.message
    p = one(tmp_path, "schema_version: 1\nname: !!python/object/apply:os.system [ls]\n")
    assert p.line == 2 and "not allowed" in p.message


def test_version_and_shape(tmp_path: Path) -> None:
    p = one(tmp_path, "schema_version: 7\n")
    assert p.field == "schema_version" and "unsupported" in p.message and "1" in p.allowed
    p = one(tmp_path, "- a\n- b\n")
    assert "mapping" in p.message
    p = one(tmp_path, "name: x\n")
    assert p.field == "schema_version"


def test_camera_errors(tmp_path: Path) -> None:
    ps = problems(
        tmp_path,
        """
        schema_version: 1
        sensors:
          - kind: camera
            name: cam
            resolution: [0, 48]
            near: 2
            far: 1
            look_at: {eye: [1, 0, 0], target: [0, 0, 0]}
          - kind: kamera
            name: cam2
        """,
    )
    fields = {p.field: p for p in ps}
    assert fields["sensors[0].resolution[0]"].line == 5
    assert "sensors[1].kind" in fields or "sensors[1]" in fields


def test_sensor_clip_planes(tmp_path: Path) -> None:
    p = one(
        tmp_path,
        """
        schema_version: 1
        sensors:
          - kind: camera
            name: cam
            resolution: [64, 48]
            near: 2
            far: 1
            look_at: {eye: [1, 0, 0], target: [0, 0, 0]}
        """,
    )
    assert p.field == "sensors[0]" and p.line == 3 and "near" in p.message


def test_missing_file_and_not_text(tmp_path: Path) -> None:
    with pytest.raises(SceneFileError, match="no such file"):
        load_scene(tmp_path / "nope.yaml")
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SceneFileError, match="UTF-8"):
        load_scene(bad)


def test_alias_bomb_is_bounded(tmp_path: Path) -> None:
    lines = ["schema_version: 1", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    p = one(tmp_path, "\n".join(lines) + "\n")
    assert "more than" in p.message
