"""The error classes of simgen, in one place.

Hierarchy::

    SimgenError                  every error simgen raises on purpose; the CLI prints it and exits 2
    ├── SceneError               a scene file (or an in-Python scene) is invalid
    │   └── SceneFileError       ... with file, line, column and field path of each problem
    ├── AssetError               an asset (mesh, URDF, texture) is missing, unreadable or refused
    ├── SamplingError            a random value or a constraint could not be resolved
    ├── RenderBackendError       no usable OpenGL platform (names what to install)
    ├── SimulationError          the physics engine failed on a valid scene
    ├── DatasetError             a dataset file is missing, foreign, truncated or of a newer format
    ├── LabelCheckError          a frame's labels failed a self-check on write (nothing stored)
    └── OutputError              the output path cannot be written
        └── StorageError         ... at all: full disk, quota, read-only or unwritable folder

Errors that are not a ``SimgenError`` are bugs in simgen and keep their traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class SimgenError(Exception):
    """Base class of every error simgen raises on purpose (user-facing, exit code 2)."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a scene: where it is and what is wrong."""

    path: tuple[str | int, ...]
    message: str
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    allowed: str | None = None

    @property
    def field(self) -> str:
        return format_field_path(self.path)

    def render(self, filename: str | None) -> str:
        where = filename or "<scene>"
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        text = f"{where}: {self.field}: {self.message}"
        if self.allowed:
            text += f"\n    allowed: {self.allowed}"
        return text


def format_field_path(path: tuple[str | int, ...]) -> str:
    """``("objects", 2, "pose", "position")`` -> ``objects[2].pose.position``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(document)"


class FieldValueError(ValueError):
    """Raised inside scene validators to point at a sub-field (``path`` relative to the model)."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


class SceneError(SimgenError):
    """A scene description is invalid. ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem], filename: str | None = None) -> None:
        self.problems = problems
        self.filename = filename
        n = len(problems)
        head = f"{n} problem{'s' if n != 1 else ''} in scene {filename or '<scene>'}"
        body = "\n".join(p.render(filename) for p in problems)
        super().__init__(f"{head}\n{body}")


class SceneFileError(SceneError):
    """A scene file is invalid; every problem carries its file line and column."""


class AssetError(SimgenError):
    """An asset could not be found, read, or is outside the allowed roots."""


class SamplingError(SimgenError):
    """A random value or constraint could not be resolved."""


class RenderBackendError(SimgenError):
    """No OpenGL platform could be used for headless rendering."""


class SimulationError(SimgenError):
    """The physics engine failed on a scene that validated."""


class DatasetError(SimgenError):
    """A dataset is missing, foreign, truncated, or written by an incompatible version."""


class LabelCheckError(SimgenError):
    """A frame's labels contradict each other (simgen.io.selfcheck): the episode fails and
    nothing of it is stored. A bug in simgen or a plugin; the message names the check, the
    sensor, the frame and the offending value."""


class OutputError(SimgenError):
    """The output could not be written (unwritable path, full disk, existing file)."""


class StorageError(OutputError):
    """The output cannot be written at all (no space left, quota, read-only or unwritable
    folder): retrying the episode or going on to the next fails the same way, so a run stops
    (committed episodes are kept; ``--resume`` continues once the cause is fixed)."""
