"""simgen: scene files -> physics -> labeled synthetic sensor datasets.

The core (scene models, sampling) imports with numpy, pydantic and PyYAML only; the engines
(pybullet, pyrender, h5py) load on first use::

    import simgen

    scene = simgen.load_scene("scenes/tabletop.yaml")
    for frame in simgen.frames(scene, seed=0, episode=0):
        print(frame.sensor, frame.time, frame.rgb.shape, frame.depth_m.max())
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from simgen.errors import SimgenError
from simgen.random import make as dist
from simgen.random.sample import EpisodeParams, sample_episode
from simgen.registry import Registry
from simgen.scenario.spec import Event, Scenario, Trigger
from simgen.scene.lights import AmbientLight, DirectionalLight, PointLight, SpotLight
from simgen.scene.loader import load_scene, parse_scene
from simgen.scene.objects import (
    BoxObject as Box,
)
from simgen.scene.objects import (
    CapsuleObject as Capsule,
)
from simgen.scene.objects import (
    CylinderObject as Cylinder,
)
from simgen.scene.objects import (
    Material,
    Velocity,
)
from simgen.scene.objects import (
    MeshObject as Mesh,
)
from simgen.scene.objects import (
    PlaneObject as Plane,
)
from simgen.scene.objects import (
    SphereObject as Sphere,
)
from simgen.scene.objects import (
    UrdfObject as Urdf,
)
from simgen.scene.placement import Scatter
from simgen.scene.schema import Scene, Simulation
from simgen.scene.sensors import CameraSensor as Camera
from simgen.scene.sensors import LidarNoise
from simgen.scene.sensors import LidarSensor as Lidar
from simgen.scene.types import Attachment, EulerOrientation, LookAt, Pose, QuatOrientation

if TYPE_CHECKING:
    from simgen.io.reader import Dataset
    from simgen.run.episode import Callbacks, Simulator
    from simgen.run.records import Record, SensorFrame
    from simgen.run.stream import EpisodeStream


def episode(
    scene: Scene,
    seed: int = 0,
    index: int = 0,
    *,
    gl: str | None = None,
    num_episodes: int | None = None,
    registry: Registry | None = None,
    callbacks: Callbacks | None = None,
    asset_roots: tuple[str | Path, ...] = (),
) -> Iterator[Record]:
    """Run episode ``index`` of ``scene`` in memory: header, states, sensor frames, events.

    ``num_episodes`` is the dataset size the episode belongs to (needed by schedules ``by:
    progress`` and scenario quotas); the records equal those of episode ``index`` in a
    rendered dataset of that size and seed. ``asset_roots``: folders assets may be read from
    besides the scene's folder, simgen's assets and pybullet_data (``--asset-root``)."""
    from simgen.run.episode import Simulator

    with Simulator(gl=gl, registry=registry, asset_roots=asset_roots) as sim:
        yield from sim.episode(scene, seed, index, num_episodes=num_episodes, callbacks=callbacks)


def frames(
    scene: Scene,
    seed: int = 0,
    episode: int = 0,
    *,
    gl: str | None = None,
    num_episodes: int | None = None,
    registry: Registry | None = None,
    callbacks: Callbacks | None = None,
    asset_roots: tuple[str | Path, ...] = (),
) -> Iterator[SensorFrame]:
    """The sensor frames of one episode, in time order, without writing a file."""
    from simgen.run.records import SensorFrame

    for rec in globals()["episode"](
        scene,
        seed,
        episode,
        gl=gl,
        num_episodes=num_episodes,
        registry=registry,
        callbacks=callbacks,
        asset_roots=asset_roots,
    ):
        if isinstance(rec, SensorFrame):
            yield rec


def stream(scene: Scene, seed: int = 0, **options: Any) -> EpisodeStream:
    """Frames rendered on the fly in worker processes, for training without files: an iterable
    of dicts (arrays plus episode index, episode seed, base seed), in episode order; a PyTorch
    ``IterableDataset`` when torch is installed. See :func:`simgen.run.stream.stream`."""
    from simgen.run.stream import stream as _stream

    return _stream(scene, seed=seed, **options)


def open_dataset(path: Any) -> Dataset:
    """Open a dataset written by ``simgen render`` (a file or a dataset directory)."""
    from simgen.io.reader import Dataset

    return Dataset(path)


def __getattr__(name: str) -> Any:
    if name == "Simulator":
        from simgen.run.episode import Simulator

        return Simulator
    if name == "Callbacks":
        from simgen.run.episode import Callbacks

        return Callbacks
    if name == "render_dataset":
        from simgen.run.batch import render_dataset

        return render_dataset
    if name == "prepare_episode":
        from simgen.run.prepare import prepare_episode

        return prepare_episode
    if name == "render_directory":
        from simgen.run.scale import render_directory

        return render_directory
    raise AttributeError(f"module 'simgen' has no attribute {name!r}")


__all__ = [
    "AmbientLight",
    "Attachment",
    "Box",
    "Callbacks",
    "Camera",
    "Capsule",
    "Cylinder",
    "DirectionalLight",
    "EpisodeParams",
    "EulerOrientation",
    "Event",
    "Lidar",
    "LidarNoise",
    "LookAt",
    "Material",
    "Mesh",
    "Plane",
    "PointLight",
    "Pose",
    "QuatOrientation",
    "Registry",
    "Scatter",
    "Scenario",
    "Scene",
    "SimgenError",
    "Simulation",
    "Simulator",
    "Sphere",
    "SpotLight",
    "Trigger",
    "Urdf",
    "Velocity",
    "dist",
    "episode",
    "frames",
    "load_scene",
    "open_dataset",
    "parse_scene",
    "prepare_episode",
    "render_dataset",
    "render_directory",
    "sample_episode",
    "stream",
]
