"""Training-time access to a dataset: frames of one sensor by index, fast and worker-safe.

    from simgen.data import Dataset
    frames = Dataset("out/tabletop.h5", sensor="front", fields=["rgb", "instance", "box2d_tight"])
    sample = frames[7]                  # dict of numpy arrays + "episode" and "frame"
    sample = frames.get(episode=2, frame=3)

:class:`Dataset` reads only the requested fields of the requested frame (one HDF5 chunk per
array). The file is opened lazily, once per process, so the object can be handed to several
``torch.utils.data.DataLoader`` workers. :class:`TorchDataset` (available when PyTorch is
installed) returns tensors instead of arrays.

Blending real and synthetic data (docs/quality.md)::

    from simgen.data import CocoFrames, MixedDataset, MixedSampler
    real, synth = CocoFrames("real_coco/"), Dataset("out/street.h5", fields=["rgb", "box2d_tight"])
    mixed = MixedDataset(real, synth)                 # indices: real first, then synthetic
    sampler = MixedSampler(len(real), len(synth), synthetic_fraction=[(0, 0.0), (1, 0.8)],
                           num_samples=10_000, epochs=20, seed=0)   # curriculum: more synthetic
    for epoch in range(20):
        sampler.set_epoch(epoch)
        for i in sampler: sample = mixed[i]           # or DataLoader(mixed, sampler=sampler)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from simgen.errors import DatasetError
from simgen.io.damage import dataset_read_errors
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
                raise DatasetError(
                    f"{self.path}: the dataset is incomplete: {f.incomplete_reason()}"
                )
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
            self._h5path = Path(f.file.filename)  # a directory is read through its index
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
        with dataset_read_errors(self.path, f"episode {episode}, frame {frame}"):
            return self._get(episode, frame)

    def _get(self, episode: int, frame: int) -> dict[str, Any]:
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
            try:
                self._h5 = h5py.File(self._h5path, "r")
            except OSError as e:
                raise DatasetError(f"{self.path}: cannot be read ({e})") from None
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


# -- real data and mixing ------------------------------------------------------------------------


class CocoFrames:
    """Map-style dataset over a COCO instances dataset (a folder with ``annotations/*.json``
    and ``images/``, or the JSON itself): ``{"rgb", "boxes_xyxy", "category_id", "category",
    "image_id", "file_name"}`` per image; boxes as float32 ``[x0, y0, x1, y1)`` in pixels,
    crowd annotations left out. The annotations are read once; images on access."""

    def __init__(self, path: str | Path) -> None:
        from simgen.quality.coco import load_annotations, locate

        ann, self.images_dir = locate(path)
        d = load_annotations(ann)
        self.categories = {c["id"]: str(c["name"]) for c in d.get("categories", [])}
        self.images = list(d["images"])
        self._anns: dict[Any, list[dict[str, Any]]] = {}
        for a in d["annotations"]:
            if not a.get("iscrowd", 0):
                self._anns.setdefault(a["image_id"], []).append(a)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        import cv2

        n = len(self.images)
        if not -n <= i < n:
            raise IndexError(f"image index {i} out of range [0, {n})")
        img = self.images[i]
        bgr = cv2.imread(str(self.images_dir / str(img["file_name"])), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DatasetError(f"cannot read image {self.images_dir / str(img['file_name'])}")
        anns = self._anns.get(img["id"], [])
        xywh = np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
        return {
            "rgb": np.ascontiguousarray(bgr[..., ::-1]),
            "boxes_xyxy": np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1),
            "category_id": np.array([a["category_id"] for a in anns], np.int64),
            "category": [self.categories.get(a["category_id"], "?") for a in anns],
            "image_id": img["id"],
            "file_name": str(img["file_name"]),
        }


class MixedDataset:
    """Two map-style datasets as one: indices ``[0, len(real))`` are ``real``, the next
    ``len(synthetic)`` are ``synthetic`` (like ``torch.utils.data.ConcatDataset([real,
    synthetic])``); dict samples get ``"source": "real" | "synthetic"``."""

    def __init__(self, real: Any, synthetic: Any) -> None:
        self.real, self.synthetic = real, synthetic

    def __len__(self) -> int:
        return len(self.real) + len(self.synthetic)

    def __getitem__(self, i: int) -> Any:
        n_real = len(self.real)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range [0, {len(self)})")
        sample = self.real[i] if i < n_real else self.synthetic[i - n_real]
        if isinstance(sample, dict):
            sample = {**sample, "source": "real" if i < n_real else "synthetic"}
        return sample


Schedule = float | list[tuple[float, float]] | Callable[[float], float]


class MixedSampler:
    """Indices into ``MixedDataset(real, synthetic)`` (real first) that blend the two sources
    at a synthetic share that is fixed or follows a schedule over training.

    ``synthetic_fraction``: a share in [0, 1]; or knots ``[(progress, share), ...]``
    interpolated linearly over training progress 0..1 (a curriculum: ``[(0, 0.0), (1, 0.8)]``
    moves from real to mostly synthetic, ``[(0, 1.0), (0.5, 0.2)]`` back); or a function of
    progress. Progress of sample i of epoch e is ``(e * num_samples + i) / (epochs *
    num_samples)``. The source of each position is allotted by error diffusion, so after any
    number of samples the synthetic count is within 0.5 of the scheduled total (every batch
    holds the ratio, not only on average); within a source, items come from a fresh random
    permutation per pass (every item once before any repeats). Deterministic: the indices
    depend only on (seed, epoch), so a resumed run sees the same order. Usable as a PyTorch
    ``DataLoader(sampler=...)`` (an iterable of indices with a length).
    """

    def __init__(
        self,
        real: int | Any,
        synthetic: int | Any,
        *,
        synthetic_fraction: Schedule = 0.5,
        num_samples: int | None = None,
        epochs: int = 1,
        seed: int = 0,
    ) -> None:
        self.n_real = real if isinstance(real, int) else len(real)
        self.n_synthetic = synthetic if isinstance(synthetic, int) else len(synthetic)
        self.num_samples = (
            self.n_real + self.n_synthetic if num_samples is None else int(num_samples)
        )
        if self.num_samples < 0 or epochs < 1:
            raise ValueError("num_samples must be >= 0 and epochs >= 1")
        self.epochs, self.seed, self.epoch = int(epochs), int(seed), 0
        self.schedule = synthetic_fraction
        shares = self._shares(np.linspace(0, 1, 101))
        if (shares > 0).any() and self.n_synthetic == 0:
            raise DatasetError("MixedSampler: the synthetic dataset is empty")
        if (shares < 1).any() and self.n_real == 0:
            raise DatasetError("MixedSampler: the real dataset is empty")

    def share(self, progress: float) -> float:
        """The scheduled synthetic share at training progress ``progress`` (0..1)."""
        return float(self._shares(np.array([progress], np.float64))[0])

    def _shares(self, progress: np.ndarray) -> np.ndarray:
        s = self.schedule
        if callable(s):
            v = np.array([float(s(float(p))) for p in progress], np.float64)
        elif isinstance(s, (int, float)):
            v = np.full(len(progress), float(s))
        else:
            knots = sorted((float(p), float(f)) for p, f in s)
            v = np.interp(progress, [p for p, _ in knots], [f for _, f in knots])
        bad = (v < 0) | (v > 1) | ~np.isfinite(v)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"synthetic_fraction must be in [0, 1]; got {v[i]} at progress {progress[i]:.3g}"
            )
        return v

    def _progress(self, start: int, stop: int) -> np.ndarray:
        total = self.epochs * max(self.num_samples, 1)
        return np.minimum(np.arange(start, stop, dtype=np.float64) / total, 1.0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def sources(self, epoch: int | None = None) -> np.ndarray:
        """(num_samples,) bool: True where the position draws from the synthetic dataset.

        After m samples of training the synthetic count is ``floor(S_m + 0.5)``, S_m the sum
        of the scheduled shares so far (error diffusion)."""
        e = self.epoch if epoch is None else int(epoch)
        n = self.num_samples
        before = 0.0
        for a in range(0, e * n, 1 << 20):  # the earlier epochs' scheduled total, in chunks
            before += float(self._shares(self._progress(a, min(e * n, a + (1 << 20)))).sum())
        s = before + np.cumsum(self._shares(self._progress(e * n, (e + 1) * n)))
        allotted = np.floor(s + 0.5)
        prev = np.concatenate([[np.floor(before + 0.5)], allotted[:-1]])
        return np.asarray(allotted > prev)

    def __iter__(self) -> Iterator[int]:
        from simgen.random.seeding import dataset_rng

        synth = self.sources()
        picks = np.empty(self.num_samples, np.int64)
        for flag, size, base in ((False, self.n_real, 0), (True, self.n_synthetic, self.n_real)):
            where = np.nonzero(synth == flag)[0]
            if len(where) == 0:
                continue
            passes = -(-len(where) // size)
            order = np.concatenate(
                [
                    dataset_rng(self.seed, "mixed_sampler", int(flag), self.epoch, k).permutation(
                        size
                    )
                    for k in range(passes)
                ]
            )
            picks[where] = base + order[: len(where)]
        return iter(picks.tolist())


def __getattr__(name: str) -> Any:
    if name == "TorchDataset":
        cls = _make_torch_dataset()
        globals()["TorchDataset"] = cls
        return cls
    raise AttributeError(f"module 'simgen.data' has no attribute {name!r}")
