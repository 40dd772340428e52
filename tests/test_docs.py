"""The documentation's examples run: the annotated scene, the README's Python example."""

from __future__ import annotations

import re

import numpy as np
import pytest

from simgen.scene.loader import parse_scene
from tests.conftest import ROOT


def _yaml_blocks(path):
    return re.findall(r"```yaml\n(.*?)```", path.read_text(), re.S)


def test_annotated_scene_example_validates() -> None:
    blocks = _yaml_blocks(ROOT / "docs" / "scene-format.md")
    assert blocks
    scene = parse_scene(blocks[0], filename="docs/scene-format.md", base_dir=ROOT / "docs")
    assert [o.kind for o in scene.objects] == ["plane", "urdf", "box", "urdf", "sphere", "mesh"]
    assert scene.class_table() == ["background", "floor", "table", "box", "duck"]


@pytest.mark.gl
def test_annotated_scene_example_renders(sim) -> None:
    from simgen.sensors.camera import scene_with_resolution
    from tests.conftest import run_frames

    scene = parse_scene(_yaml_blocks(ROOT / "docs" / "scene-format.md")[0], base_dir=ROOT / "docs")
    scene = scene_with_resolution(scene, 64, 48)
    scene = scene.model_copy(
        update={"simulation": scene.simulation.model_copy(update={"duration": 0.2})}
    )
    _, _, frames = run_frames(sim, scene)
    assert {f.sensor for f in frames} == {"front", "onboard"}
    assert all(np.any(f.instance > 0) for f in frames)


@pytest.mark.gl
def test_readme_python_example_runs(sim, tmp_path, monkeypatch) -> None:
    from simgen.run.batch import render_dataset
    from simgen.scene.loader import load_scene
    from simgen.sensors.camera import scene_with_resolution

    text = (ROOT / "README.md").read_text()
    code = re.findall(r"```python\n(.*?)```", text, re.S)
    assert code, "README has a Python example"
    # the example reads scenes/tabletop.yaml and a dataset written by `simgen render`
    (tmp_path / "scenes").symlink_to(ROOT / "scenes")
    scene = scene_with_resolution(load_scene(ROOT / "scenes" / "tabletop.yaml"), 32, 24)
    render_dataset(scene, tmp_path / "out" / "tabletop.h5", episodes=[0], seed=0, simulator=sim)
    monkeypatch.chdir(tmp_path)
    exec(compile(code[0], "README.md", "exec"), {"__name__": "readme"})


@pytest.mark.gl
def test_weather_doc_example_validates_and_renders(sim) -> None:
    from simgen.sensors.camera import scene_with_resolution
    from tests.conftest import run_frames

    blocks = _yaml_blocks(ROOT / "docs" / "weather.md")
    scene = parse_scene(blocks[0], filename="docs/weather.md", base_dir=ROOT / "docs")
    assert scene.weather is not None and scene.lighting is not None
    assert scene.class_table()[-1] == "weather"
    scene = scene_with_resolution(scene, 64, 48)
    scene = scene.model_copy(
        update={"simulation": scene.simulation.model_copy(update={"duration": 0.15})}
    )
    _, _, frames = run_frames(sim, scene)
    cams = [f for f in frames if f.sensor == "front"]
    assert cams and all("rgb_clean" in f.arrays and "dist_coeffs" in f.static for f in cams)
    assert any(f.sensor == "roof" for f in frames)
