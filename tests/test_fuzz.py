"""Property-based fuzzing of scene files (bounded and derandomized, so CI is repeatable).

Mutants of every example scene (tests/fuzzing.py) either load or end in a SceneFileError naming
file:line, field and a message; valid-but-extreme mutants go through sampling, placement and
the physics engine (and a tiny render) with nothing but simgen's own errors. The regression
corpus tests/fuzz_corpus/ keeps the inputs that once failed. benchmarks/fuzz_campaign.py runs
the same mutants at scale (docs/reliability.md records its numbers).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests import fuzzing

CORPUS = sorted((Path(__file__).parent / "fuzz_corpus").glob("*.yaml"))
SCENE_IDS = [p.stem for p in fuzzing.SCENES]


def bounded(n: int) -> settings:
    """``n`` examples, derandomized (the same inputs every run), no example database."""
    return settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


@pytest.fixture(scope="module")
def meshes():
    from simgen.sim.visuals import MeshLibrary

    return MeshLibrary()


@pytest.mark.parametrize("scene", fuzzing.SCENES, ids=SCENE_IDS)
def test_mutants_load_or_fail_with_file_line_field(scene: Path) -> None:
    @bounded(100)
    @given(fuzzing.mutants([scene]))
    def run(m: tuple[str, list[str], str]) -> None:
        fuzzing.check_load(m[2])

    run()


@pytest.mark.parametrize("scene", fuzzing.SCENES, ids=SCENE_IDS)
def test_extreme_numbers_build_and_step_or_fail_cleanly(scene: Path, meshes) -> None:
    outcomes: list[tuple[str, str]] = []

    @bounded(25)
    @given(fuzzing.numeric_mutants([scene]))
    def run(m: tuple[str, list[str], str]) -> None:
        outcomes.append(fuzzing.run_stages(m[2], meshes=meshes, steps=12))

    run()
    assert outcomes


@pytest.mark.gl
def test_extreme_numbers_render_or_fail_cleanly(sim, meshes) -> None:
    @bounded(8)
    @given(fuzzing.numeric_mutants())
    def run(m: tuple[str, list[str], str]) -> None:
        fuzzing.run_stages(m[2], meshes=meshes, steps=4, sim=sim)

    run()


def test_the_oracle_rejects_what_it_should() -> None:
    """The oracle itself: a crash or an error without a location is a failure."""
    with pytest.raises(AssertionError, match="KeyError"):
        fuzzing.check_scene_error(KeyError("x"))
    from simgen.errors import Problem, SceneFileError

    with pytest.raises(AssertionError, match="no line"):
        fuzzing.check_scene_error(SceneFileError([Problem(("a",), "bad")], fuzzing.FUZZ_FILE))
    with pytest.raises(AssertionError, match="ValueError"):
        fuzzing.check_clean(ValueError("boom"))


@pytest.mark.parametrize("case", CORPUS, ids=[p.stem for p in CORPUS])
def test_regression_corpus(case: Path, meshes) -> None:
    """Inputs that once crashed or hid their location: each now ends in a clean error (the
    ``# expect:`` header line gives a regular expression its message matches) or builds."""
    text = case.read_text()
    expect = re.search(r"^# expect: (.*)$", text, re.M)
    assert expect, f"{case.name}: no '# expect:' line"
    from simgen.errors import SceneFileError

    messages: list[str] = []
    stage, outcome = fuzzing.run_stages(text, meshes=meshes, steps=12, messages=messages)
    message = "\n".join([f"{stage} {outcome}", *messages])
    if stage == "load":
        from simgen.scene.loader import parse_scene

        with pytest.raises(SceneFileError) as info:
            parse_scene(text, filename=fuzzing.FUZZ_FILE, base_dir=fuzzing.ROOT / "scenes")
        message = str(info.value)
    assert re.search(expect.group(1), message), f"{case.name}: {message}"
