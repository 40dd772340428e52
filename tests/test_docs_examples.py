"""The complete examples in docs/randomization.md and docs/scenarios.md run as written."""

from __future__ import annotations

import re

import pytest

from simgen.scene.loader import parse_scene
from tests.conftest import ROOT


def blocks(doc: str, lang: str) -> list[str]:
    text = (ROOT / "docs" / doc).read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


@pytest.mark.parametrize("doc", ["randomization.md", "scenarios.md"])
def test_the_complete_example_scene_loads_prepares_and_runs(doc: str) -> None:
    from simgen.run.prepare import prepare_episode

    scene = parse_scene(blocks(doc, "yaml")[0], filename=doc, base_dir=ROOT)
    params = prepare_episode(scene, 7, 3, num_episodes=10)
    assert params.sampled


def test_the_python_example_of_randomization_runs(tmp_path, monkeypatch) -> None:
    code = next(b for b in blocks("randomization.md", "python") if "Registry" in b)
    monkeypatch.chdir(tmp_path)
    exec(
        compile(
            code.replace("for frame in sim.run(params): ...", "list(sim.run(params))"),
            "doc",
            "exec",
        ),
        {},
    )
    assert (tmp_path / "out" / "d.h5").is_file()


@pytest.mark.gl
def test_the_scenario_example_renders(sim, tmp_path) -> None:
    from simgen.run.batch import render_dataset
    from simgen.sensors.camera import scene_with_resolution

    scene = parse_scene(blocks("scenarios.md", "yaml")[0], filename="s.yaml", base_dir=ROOT)
    scene = scene_with_resolution(scene, 32, 18)
    out = tmp_path / "d.h5"
    render_dataset(scene, out, episodes=range(5), seed=1, simulator=sim)
    import simgen

    with simgen.open_dataset(out) as ds:
        assert sum(ep.scenarios()["pedestrian"] for ep in ds) == 1  # quota 0.2 of 5
