"""What an episode produces: plain records of arrays, in time order."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simgen.sim.world import Contacts, ObjectStates


@dataclass(frozen=True)
class ObjectInfo:
    instance_id: int
    name: str
    class_id: int
    class_name: str
    kind: str
    keypoints: dict[str, tuple[float, ...]] = field(default_factory=dict)  # name -> object frame


@dataclass(frozen=True)
class StateRecord:
    """State of every object at one tick (a step at which at least one sensor captured)."""

    tick: int
    step: int
    time: float
    objects: ObjectStates
    contacts: Contacts


@dataclass(frozen=True)
class SensorFrame:
    """One capture of one sensor. ``arrays`` holds the sensor's outputs by name
    (camera: ``rgb``, ``depth_m``, ``instance``, ``semantic`` and the label arrays of
    docs/labels.md); ``pose_w`` is the sensor's world pose at capture (camera: the OpenCV
    optical frame, camera-to-world)."""

    sensor: str
    kind: str
    index: int  # frame number within this sensor
    tick: int
    step: int
    time: float
    pose_w: np.ndarray  # (4, 4)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    # constant per sensor (e.g. the camera matrix K); stored once
    static: dict[str, np.ndarray] = field(default_factory=dict)
    # ragged per-frame arrays (e.g. point lists), stored concatenated with offsets
    ragged: dict[str, np.ndarray] = field(default_factory=dict)

    def __getattr__(self, name: str) -> np.ndarray:
        arrays = self.__dict__.get("arrays", {})
        if name in arrays:
            return arrays[name]
        for group in ("ragged", "static"):
            values = self.__dict__.get(group, {})
            if name in values:
                return values[name]
        raise AttributeError(name)


@dataclass(frozen=True)
class EpisodeHeader:
    """Emitted first: what the episode contains."""

    objects: list[ObjectInfo]
    class_table: list[str]
    num_steps: int
    timestep: float
    ticks_steps: np.ndarray  # (T,) step index of each tick
    sensor_kinds: dict[str, str]
    gl_renderer: str | None = None


@dataclass(frozen=True)
class EpisodeEvents:
    """Emitted last: the events that fired (E), which ticks (T) each was active at, which
    scenarios happened, and the per-frame values drawn at each tick (P columns)."""

    name: list[str]
    scenario: list[str]
    action: list[str]
    source: list[str]  # "timeline", "trigger" or "python"
    start_step: np.ndarray  # (E,) int64
    end_step: np.ndarray  # (E,) int64, exclusive
    start_time: np.ndarray  # (E,) float64, s
    active: np.ndarray  # (T, E) bool
    scenario_names: list[str]
    scenario_selected: np.ndarray  # (S,) bool
    per_frame_names: list[str]
    per_frame_values: np.ndarray  # (T, P) float64

    @staticmethod
    def empty(n_ticks: int) -> EpisodeEvents:
        z = np.zeros(0, np.int64)
        return EpisodeEvents(
            [],
            [],
            [],
            [],
            z,
            z,
            np.zeros(0),
            np.zeros((n_ticks, 0), bool),
            [],
            np.zeros(0, bool),
            [],
            np.zeros((n_ticks, 0)),
        )


Record = EpisodeHeader | StateRecord | SensorFrame | EpisodeEvents
