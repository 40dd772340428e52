"""Read simgen datasets: random access by (episode, sensor, frame) without loading whole files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from simgen.errors import DatasetError
from simgen.io.damage import dataset_read_errors
from simgen.io.layout import FORMAT_NAME, FORMAT_VERSION, episode_group_name

#: What every stored episode holds; an episode without them is damaged (or not simgen's).
EPISODE_MEMBERS = ("objects/instance_id", "objects/class_id", "sensors", "state")


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
        self._unreadable: dict[int, str] | None = None
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
        """The run finished every requested episode, and every one of them can be read."""
        return bool(self.file.attrs.get("complete", False)) and not self.unreadable()

    @property
    def is_directory(self) -> bool:
        return _attr(self.file.attrs.get("dataset_layout", "")) == "index"

    @property
    def episode_indices(self) -> list[int]:
        """The committed episodes that can be read (see :meth:`unreadable` for the others)."""
        if self.is_directory:  # an index links committed episodes only
            bad = self.unreadable()
            return sorted(int(n) for n in self.file["episodes"] if int(n) not in bad)
        out = []
        for name, g in self.file["episodes"].items():
            if g.attrs.get("complete", False):
                out.append(int(name))
        return sorted(out)

    def __len__(self) -> int:
        return len(self.episode_indices)

    # -- what is missing ------------------------------------------------------------------------

    def unreadable(self) -> dict[int, str]:
        """Committed episodes of a dataset directory whose file is missing or damaged, with
        why (each file is opened once). Empty for a single file."""
        if self._unreadable is None:
            self._unreadable = _unreadable_links(self.file) if self.is_directory else {}
        return self._unreadable

    def _manifest(self) -> tuple[dict[str, Any] | None, str]:
        """(the directory's manifest, or None and why it cannot be read)."""
        from simgen.io.store import MANIFEST

        m = Path(self.file.filename).parent / MANIFEST
        if not m.is_file():
            return None, f"{MANIFEST} is missing"
        try:
            d = json.loads(m.read_text())
            if not isinstance(d, dict) or not isinstance(d.get("failed", {}), dict):
                raise ValueError("not a simgen manifest")
        except (OSError, ValueError) as e:
            return None, f"{MANIFEST} cannot be read ({e})"
        return d, ""

    def failures(self) -> list[dict[str, Any]]:
        """Episodes the run recorded as failed (index, seed, error, attempts). A single file
        holds none (a file is written only when every episode succeeded); a directory's come
        from its manifest ([] when it cannot be read: :meth:`problems` says so)."""
        if not self.is_directory:
            return []
        d, _ = self._manifest()
        if d is None:
            return []
        return [dict(v) for _, v in sorted(d.get("failed", {}).items())]

    def problems(self) -> list[str]:
        """What is missing or unknown, one line each: unreadable episodes, an unreadable
        manifest, requested episodes neither committed nor failed (a run that stopped early).
        Failed episodes are listed by :meth:`failures`."""
        out = [f"episode {i}: {why}" for i, why in sorted(self.unreadable().items())]
        if not self.is_directory:
            return out
        d, why = self._manifest()
        if d is None:
            return [*out, f"{why}: the failed episodes of the run are unknown"]
        requested = {i for a, b in d.get("requested", []) for i in range(int(a), int(b))}
        known = {int(n) for n in self.file["episodes"]} | {int(k) for k in d.get("failed", {})}
        left = sorted(requested - known)
        if left:
            out.append(
                f"{len(left)} requested episodes were not rendered ({_ranges(left)}): the run "
                "stopped early; 'simgen render ... --resume' continues it"
            )
        return out

    def incomplete_reason(self) -> str:
        """Why :attr:`complete` is False, in one line ("" when complete)."""
        if self.complete:
            return ""
        why = [*self.problems(), *(f"episode {f['index']} failed" for f in self.failures())]
        return "; ".join(why[:5]) + (f"; ... ({len(why)} problems)" if len(why) > 5 else "") or (
            "an unfinished run"
        )

    def __iter__(self) -> Iterator[Episode]:
        for i in self.episode_indices:
            yield self.episode(i)

    def episode(self, index: int) -> Episode:
        name = episode_group_name(index)
        if name not in self.file["episodes"]:
            raise DatasetError(
                f"{self.path}: no episode {index}; episodes are {self.episode_indices}"
            )
        if index in self.unreadable():
            raise DatasetError(f"{self.path}: episode {index}: {self.unreadable()[index]}")
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
        lacking = [m for m in EPISODE_MEMBERS if m not in g]
        if lacking or "episode_index" not in g.attrs or "episode_seed" not in g.attrs:
            what = ", ".join(lacking) or "its index and seed attributes"
            raise DatasetError(
                f"{self.path}: episode {index} is damaged or from an incompatible simgen: it "
                f"lacks {what}"
            )
        return Episode(g, self.classes, self.path)


class Episode:
    """One episode of a dataset."""

    def __init__(self, group: h5py.Group, classes: list[str], path: Path | None = None) -> None:
        self.g = group
        self.classes = classes
        self.path = path or Path(group.file.filename)
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
        with dataset_read_errors(self.path, f"episode {self.index}, {sensor} frame {k}"):
            return self._frame(sensor, k, fields)

    def _frame(self, sensor: str, k: int, fields: list[str] | None) -> dict[str, np.ndarray]:
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
        with dataset_read_errors(self.path, f"episode {self.index}, {sensor}"):
            return self._frame_block(sensor, start, stop, fields)

    def _frame_block(
        self, sensor: str, start: int, stop: int, fields: list[str]
    ) -> dict[str, np.ndarray]:
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


def _unreadable_links(f: h5py.File) -> dict[int, str]:
    """Episodes of an index whose linked file is missing, unreadable or lacks them."""
    base = Path(f.filename).parent
    by_file: dict[str, list[int]] = {}
    eps = f["episodes"]
    for name in eps:
        link = eps.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            by_file.setdefault(link.filename, []).append(int(name))
    out: dict[int, str] = {}
    for rel, indices in by_file.items():
        target = base / rel
        if not target.is_file():
            out.update((i, f"its file {rel} is missing") for i in indices)
            continue
        try:
            with h5py.File(target, "r") as h:
                for i in indices:
                    g = h.get(f"episodes/{episode_group_name(i)}")
                    if g is None or not g.attrs.get("complete", False):
                        out[i] = f"its file {rel} does not hold it"
        except OSError as e:
            out.update((i, f"its file {rel} cannot be read ({e})") for i in indices)
    return out


def _ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'."""
    parts: list[list[int]] = []
    for i in indices:
        if parts and parts[-1][1] == i - 1:
            parts[-1][1] = i
        else:
            parts.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in parts)


def open_dataset(path: str | Path) -> Dataset:
    return Dataset(path)
