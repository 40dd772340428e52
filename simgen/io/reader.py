"""Read simgen datasets: random access by (episode, sensor, frame) without loading whole files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from simgen.errors import DatasetError
from simgen.io.layout import FORMAT_NAME, FORMAT_VERSION, episode_group_name


def _open_h5(path: Path) -> h5py.File:
    if path.is_dir():  # a dataset directory (simgen.io.store): read it through its index
        from simgen.io.store import INDEX, MANIFEST

        if not (path / INDEX).exists():
            why = (
                "its run has not committed an episode yet; run it again with --resume"
                if (path / MANIFEST).exists()
                else "not a simgen dataset directory"
            )
            raise DatasetError(f"{path}: no {INDEX} ({why})")
        path = path / INDEX
    if not path.exists():
        partial = path.with_name(path.name + ".partial")
        extra = f" (an unfinished run left {partial})" if partial.exists() else ""
        raise DatasetError(f"{path}: no such dataset{extra}")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(f"{path}: not a readable HDF5 file ({e})") from None


class Dataset:
    """A simgen dataset: a file, or a dataset directory written by parallel workers (read
    through its ``index.h5``, whose episodes are links into the shards). Use as a context
    manager or call :meth:`close`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.file = _open_h5(self.path)
        try:
            self._check()
        except BaseException:
            self.file.close()
            raise

    def _check(self) -> None:
        a = self.file.attrs
        if a.get("format") != FORMAT_NAME:
            raise DatasetError(f"{self.path}: not a simgen dataset (no 'format={FORMAT_NAME}')")
        version = int(a.get("format_version", -1))
        if version > FORMAT_VERSION:
            raise DatasetError(
                f"{self.path}: dataset format {version} is newer than this simgen reads "
                f"({FORMAT_VERSION}); upgrade simgen"
            )
        if version < 1:
            raise DatasetError(f"{self.path}: unknown dataset format version {version}")
        if "episodes" not in self.file or "classes" not in self.file:
            raise DatasetError(f"{self.path}: truncated dataset (missing /episodes or /classes)")

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata -------------------------------------------------------------------------------

    @property
    def attrs(self) -> dict[str, Any]:
        return {k: _attr(v) for k, v in self.file.attrs.items()}

    @property
    def classes(self) -> list[str]:
        return [c.decode() if isinstance(c, bytes) else str(c) for c in self.file["classes"][()]]

    @property
    def base_seed(self) -> int:
        return int(self.file.attrs["base_seed"])

    @property
    def complete(self) -> bool:
        return bool(self.file.attrs.get("complete", False))

    @property
    def is_directory(self) -> bool:
        return _attr(self.file.attrs.get("dataset_layout", "")) == "index"

    @property
    def episode_indices(self) -> list[int]:
        if self.is_directory:  # an index links committed episodes only
            return sorted(int(name) for name in self.file["episodes"])
        out = []
        for name, g in self.file["episodes"].items():
            if g.attrs.get("complete", False):
                out.append(int(name))
        return sorted(out)

    def __len__(self) -> int:
        return len(self.episode_indices)

    def __iter__(self) -> Iterator[Episode]:
        for i in self.episode_indices:
            yield self.episode(i)

    def episode(self, index: int) -> Episode:
        name = episode_group_name(index)
        if name not in self.file["episodes"]:
            raise DatasetError(
                f"{self.path}: no episode {index}; episodes are {self.episode_indices}"
            )
        try:
            g = self.file["episodes"][name]
        except KeyError:  # an index whose linked file is gone
            target = self.file["episodes"].get(name, getlink=True)
            raise DatasetError(
                f"{self.path}: episode {index} is stored in {getattr(target, 'filename', '?')}, "
                "which cannot be read"
            ) from None
        if not g.attrs.get("complete", False):
            raise DatasetError(f"{self.path}: episode {index} is incomplete")
        return Episode(g, self.classes)


class Episode:
    """One episode of a dataset."""

    def __init__(self, group: h5py.Group, classes: list[str]) -> None:
        self.g = group
        self.classes = classes
        self.index = int(group.attrs["episode_index"])
        self.seed = int(group.attrs["episode_seed"])

    @property
    def params(self) -> dict[str, Any]:
        return dict(json.loads(_attr(self.g.attrs["params_json"])))

    @property
    def sensors(self) -> dict[str, str]:
        return {name: _attr(g.attrs["kind"]) for name, g in self.g["sensors"].items()}

    @property
    def objects(self) -> list[dict[str, Any]]:
        o = self.g["objects"]
        names = [_attr(x) for x in o["name"][()]]
        kinds = [_attr(x) for x in o["kind"][()]]
        return [
            {
                "instance_id": int(i),
                "name": n,
                "class_id": int(c),
                "class_name": self.classes[int(c)],
                "kind": k,
            }
            for i, n, c, k in zip(
                o["instance_id"][()], names, o["class_id"][()], kinds, strict=True
            )
        ]

    def num_frames(self, sensor: str) -> int:
        return int(self._sensor(sensor)["time"].shape[0])

    def fields(self, sensor: str) -> list[str]:
        return sorted(k for k in self._sensor(sensor) if not k.endswith("_offsets"))

    def _sensor(self, sensor: str) -> h5py.Group:
        if sensor not in self.g["sensors"]:
            raise DatasetError(
                f"episode {self.index} has no sensor {sensor!r}; sensors: {list(self.sensors)}"
            )
        return self.g["sensors"][sensor]

    def frame(self, sensor: str, k: int, fields: list[str] | None = None) -> dict[str, np.ndarray]:
        """Arrays of frame ``k`` of ``sensor`` (per-frame, constant and ragged fields)."""
        sg = self._sensor(sensor)
        n = self.num_frames(sensor)
        if not 0 <= k < n:
            raise DatasetError(f"sensor {sensor!r} has frames [0, {n}); asked for {k}")
        out: dict[str, np.ndarray] = {}
        for key in fields or self.fields(sensor):
            if key not in sg:
                raise DatasetError(
                    f"sensor {sensor!r} has no field {key!r}; fields: {self.fields(sensor)}"
                )
            ds = sg[key]
            layout = _attr(ds.attrs.get("layout", "per_frame"))
            if layout == "ragged":
                off = sg[f"{key}_offsets"]
                out[key] = ds[int(off[k]) : int(off[k + 1])]
            elif layout == "per_frame":
                out[key] = ds[k]
            else:
                out[key] = ds[()]
        return out

    def frame_block(
        self, sensor: str, start: int, stop: int, fields: list[str]
    ) -> dict[str, np.ndarray]:
        """Frames ``[start, stop)`` of ``sensor`` in one read per field: per-frame fields with a
        leading frame axis, constant fields as stored, ragged fields as their rows of those
        frames concatenated plus ``<name>_offsets`` (stop - start + 1, starting at 0). Fields the
        sensor lacks are left out. For streaming whole datasets (``simgen stats``)."""
        sg = self._sensor(sensor)
        n = self.num_frames(sensor)
        if not 0 <= start <= stop <= n:
            raise DatasetError(
                f"sensor {sensor!r} has frames [0, {n}); asked for [{start}, {stop})"
            )
        out: dict[str, np.ndarray] = {}
        for key in fields:
            if key not in sg:
                continue
            ds = sg[key]
            layout = _attr(ds.attrs.get("layout", "per_frame"))
            if layout == "ragged":
                off = sg[f"{key}_offsets"][start : stop + 1].astype(np.int64)
                out[key] = ds[int(off[0]) : int(off[-1])]
                out[f"{key}_offsets"] = off - off[0]
            elif layout == "per_frame":
                out[key] = ds[start:stop]
            else:
                out[key] = ds[()]
        return out

    def state(self) -> dict[str, np.ndarray]:
        return {k: v[()] for k, v in self.g["state"].items()}

    def contacts(self) -> dict[str, np.ndarray]:
        return {k: v[()] for k, v in self.g["contacts"].items()}

    def events(self) -> list[dict[str, Any]]:
        """The events that fired, in firing order: name, scenario, action, source, start_step,
        end_step (exclusive), start_time (empty for files without event labels)."""
        if "events" not in self.g:
            return []
        e = self.g["events"]
        cols = {k: e[k][()] for k in e if k != "active"}
        n = len(cols.get("name", []))
        return [{k: _attr(v[i]) for k, v in cols.items()} for i in range(n)]

    def active_events(self) -> np.ndarray:
        """(T, E) bool: which events are active at each tick (row t <-> ``state()['step'][t]``)."""
        if "events" not in self.g:
            return np.zeros((len(self.g["state/step"]), 0), bool)
        return np.asarray(self.g["events/active"][()])

    def scenarios(self) -> dict[str, bool]:
        """Which of the scene's scenarios happened in this episode."""
        if "scenarios" not in self.g:
            return {}
        s = self.g["scenarios"]
        return {_attr(n): bool(v) for n, v in zip(s["name"][()], s["selected"][()], strict=True)}

    def per_frame(self) -> dict[str, np.ndarray]:
        """Per-frame values by column name, each (T,) over the ticks."""
        if "per_frame" not in self.g:
            return {}
        p = self.g["per_frame"]
        values = p["value"][()]
        return {_attr(n): values[:, i] for i, n in enumerate(p["name"][()])}


def _attr(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


def open_dataset(path: str | Path) -> Dataset:
    return Dataset(path)
