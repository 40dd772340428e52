"""Training-time access to a dataset: frames of one sensor by index, fast and worker-safe.

    from simgen.data import Dataset
    frames = Dataset("out/tabletop.h5", sensor="front", fields=["rgb", "instance", "box2d_tight"])
    sample = frames[7]                  # dict of numpy arrays + "episode" and "frame"
    sample = frames.get(episode=2, frame=3)

:class:`Dataset` reads only the requested fields of the requested frame (one HDF5 chunk per
array). The file is opened lazily, once per process, so the object can be handed to several
``torch.utils.data.DataLoader`` workers. :class:`TorchDataset` (available when PyTorch is
installed) returns tensors instead of arrays.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from simgen.errors import DatasetError
from simgen.io.layout import episode_group_name
from simgen.io.reader import Dataset as _File


class Dataset:
    """Map-style dataset over the frames of one sensor, in (episode, frame) order."""

    def __init__(
        self,
        path: str | Path,
        sensor: str | None = None,
        fields: list[str] | None = None,
        episodes: list[int] | None = None,
    ) -> None:
        self.path = Path(path)
        with _File(self.path) as f:
            if not f.complete:
                raise DatasetError(f"{self.path}: the dataset is incomplete (an unfinished run)")
            chosen = f.episode_indices if episodes is None else list(episodes)
            if not chosen:
                raise DatasetError(f"{self.path}: no episodes to read")
            first = f.episode(chosen[0])
            if sensor is None:
                cams = [n for n, k in first.sensors.items() if k == "camera"]
                if not cams:
                    raise DatasetError(f"{self.path}: no camera; name a sensor")
                sensor = cams[0]
            self.sensor = sensor
            available = first.fields(sensor)
            self.fields = list(available if fields is None else fields)
            unknown = [x for x in self.fields if x not in available]
            if unknown:
                raise DatasetError(
                    f"sensor {sensor!r} has no field {unknown[0]!r}; fields: {', '.join(available)}"
                )
            g = first.g["sensors"][sensor]
            self._layout = {x: _layout(g[x]) for x in self.fields}
            self.classes = f.classes
            self.index: list[tuple[int, int]] = []
            for e in chosen:
                n = f.episode(e).num_frames(sensor)
                self.index.extend((e, k) for k in range(n))
        self._h5: h5py.File | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        n = len(self.index)
        if not -n <= i < n:
            raise IndexError(f"frame index {i} out of range [0, {n})")
        episode, frame = self.index[i]
        return self.get(episode, frame)

    def get(self, episode: int, frame: int) -> dict[str, Any]:
        """The chosen fields of ``frame`` of episode ``episode``."""
        f = self._file()
        path = f"episodes/{episode_group_name(episode)}/sensors/{self.sensor}"
        if path not in f:
            raise DatasetError(f"{self.path}: no sensor {self.sensor!r} in episode {episode}")
        g = f[path]
        out: dict[str, Any] = {"episode": episode, "frame": frame}
        for key in self.fields:
            ds = g[key]
            layout = self._layout[key]
            if layout == "ragged":
                off = g[f"{key}_offsets"]
                a, b = off[frame : frame + 2]
                out[key] = ds[int(a) : int(b)]
            elif layout == "per_frame":
                if not 0 <= frame < ds.shape[0]:
                    raise DatasetError(f"episode {episode} has frames [0, {ds.shape[0]})")
                out[key] = ds[frame]
            else:
                out[key] = ds[()]
        return out

    def _file(self) -> h5py.File:
        if self._h5 is None or self._pid != os.getpid():
            # a new process (DataLoader worker): never reuse a handle opened by the parent
            self._h5 = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._h5

    def close(self) -> None:
        if self._h5 is not None and self._pid == os.getpid():
            self._h5.close()
        self._h5 = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_h5"], state["_pid"] = None, -1
        return state

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _layout(ds: h5py.Dataset) -> str:
    v = ds.attrs.get("layout", "per_frame")
    return v.decode() if isinstance(v, bytes) else str(v)


def _to_tensor(x: Any) -> Any:
    import torch

    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, np.generic):
        return torch.as_tensor(x.item())
    return x


def _make_torch_dataset() -> type:
    try:
        import torch.utils.data
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "simgen.data.TorchDataset needs PyTorch: pip install torch "
            "(simgen.data.Dataset works without it)"
        ) from None

    class TorchDataset(Dataset, torch.utils.data.Dataset):  # type: ignore[misc]
        """:class:`Dataset` returning tensors (``torch.from_numpy``), optionally transformed."""

        def __init__(
            self,
            path: str | Path,
            sensor: str | None = None,
            fields: list[str] | None = None,
            episodes: list[int] | None = None,
            transform: Callable[[dict[str, Any]], Any] | None = None,
        ) -> None:
            Dataset.__init__(self, path, sensor, fields, episodes)
            self.transform = transform

        def __getitem__(self, i: int) -> Any:
            sample = {k: _to_tensor(v) for k, v in Dataset.__getitem__(self, i).items()}
            return self.transform(sample) if self.transform is not None else sample

    TorchDataset.__qualname__ = "TorchDataset"  # picklable as simgen.data.TorchDataset
    TorchDataset.__module__ = __name__
    return TorchDataset


def __getattr__(name: str) -> Any:
    if name == "TorchDataset":
        cls = _make_torch_dataset()
        globals()["TorchDataset"] = cls
        return cls
    raise AttributeError(f"module 'simgen.data' has no attribute {name!r}")
