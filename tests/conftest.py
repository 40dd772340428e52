"""Shared fixtures. Tests that need OpenGL skip only where no GL platform loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from simgen.render.platform import gl_available

ROOT = Path(__file__).resolve().parents[1]
SCENES = sorted((ROOT / "scenes").glob("*.yaml"))

_GL_REASON = gl_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _GL_REASON is None:
        return
    skip = pytest.mark.skip(reason=f"no OpenGL: {_GL_REASON}")
    for item in items:
        if "gl" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sim():
    """One simulator (GL context + mesh cache) shared by the whole session."""
    if _GL_REASON is not None:
        pytest.skip(f"no OpenGL: {_GL_REASON}")
    from simgen.run.episode import Simulator

    with Simulator() as s:
        yield s


def scene_from(text: str, tmp_path: Path | None = None):
    from simgen.scene.loader import parse_scene

    return parse_scene(text, filename="inline.yaml", base_dir=tmp_path or ROOT)


def run_frames(sim, scene, seed: int = 0, index: int = 0):
    """(header, states, frames) of one episode."""
    from simgen.run.records import EpisodeHeader, SensorFrame, StateRecord

    header, states, frames = None, [], []
    for rec in sim.episode(scene, seed, index):
        if isinstance(rec, EpisodeHeader):
            header = rec
        elif isinstance(rec, StateRecord):
            states.append(rec)
        elif isinstance(rec, SensorFrame):
            frames.append(rec)
    return header, states, frames
