"""HDF5 dataset writer: streams episodes to a temporary file, renamed only when complete.

A killed run leaves ``<name>.partial`` next to the target, never a file at the target path.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from simgen import __version__
from simgen.errors import OutputError
from simgen.io.digest import array_hasher, frame_digest, update_rows
from simgen.io.layout import FORMAT_NAME, FORMAT_VERSION, conventions_json, episode_group_name
from simgen.io.selfcheck import LabelChecker
from simgen.io.space import check_free_space, output_errno, output_error, output_errors
from simgen.random.sample import EpisodeParams
from simgen.run.records import EpisodeEvents, EpisodeHeader, Record, SensorFrame, StateRecord
from simgen.scene.schema import SCHEMA_VERSION, Scene

#: Chosen by measurement on rendered frames (docs/dataset-format.md, "Compression"):
#: gzip (deflate) level 1 after HDF5's byte shuffle. Standard filters, so any HDF5 reader
#: decodes them (lzf is faster but h5py-only). Frame chunks are compressed by simgen in a
#: thread pool (ISA-L's deflate, :func:`_pick_deflate`; it releases the GIL) and stored with
#: ``write_direct_chunk``, so compression overlaps rendering; HDF5's deflate filter decodes them
#: (other arrays, e.g. ragged point lists, go through HDF5's own filters).
DEFAULT_COMPRESSION: dict[str, Any] = {
    "compression": "gzip",
    "compression_opts": 1,
    "shuffle": True,
}
COMPRESS_THREADS = 2
MAX_PENDING_CHUNKS = 16

STR = h5py.string_dtype("utf-8")


@dataclass
class EpisodeSummary:
    index: int
    frames: int
    seconds: float
    bytes_raw: int
    sensor_frames: dict[str, int] = field(default_factory=dict)


def _partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


class DatasetWriter:
    """Writes episodes into one HDF5 file. Use as a context manager.

    On normal exit the file is completed and renamed to ``path``; on an exception the partial
    file is removed and nothing appears at ``path``.
    """

    def __init__(
        self,
        path: str | Path,
        scene: Scene,
        base_seed: int,
        *,
        overwrite: bool = False,
        compression: dict[str, Any] | None = None,
        extra_attrs: dict[str, Any] | None = None,
        durable: bool = False,
    ) -> None:
        self.path = Path(path)
        self.durable = durable  # fsync the file (and its folder) before and after the rename
        self.tmp = _partial_path(self.path)
        self.compression = DEFAULT_COMPRESSION if compression is None else compression
        if self.path.exists() and not overwrite:
            raise OutputError(f"{self.path} exists; pass --overwrite to replace it")
        if self.path.is_dir():
            raise OutputError(f"{self.path} is a directory")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = h5py.File(self.tmp, "w", libver=("v110", "latest"))
        except OSError as e:
            if output_errno(e) is not None:
                raise output_error(e, self.path) from None
            raise OutputError(f"cannot write {self.path}: {e}") from None
        self.scene = scene
        self.base_seed = base_seed
        self.episodes: list[int] = []
        # hashes of the last episode's streamed arrays (simgen.io.digest.dataset_hash), by name
        self.array_hashes: dict[str, str] = {}
        self.complete = True  # the root attribute ``complete`` written on a normal close
        # free space wanted before an episode (beyond simgen.io.space.MIN_FREE_BYTES): twice the
        # largest episode so far; callers writing one episode per file set it from earlier files
        self.reserve_bytes = 0
        try:
            with output_errors(self.path):
                self._write_root(extra_attrs or {})
        except BaseException:
            self.close(ok=False)
            raise

    def _write_root(self, extra: dict[str, Any]) -> None:
        f = self.file
        a = f.attrs
        a["format"] = FORMAT_NAME
        a["format_version"] = FORMAT_VERSION
        a["simgen_version"] = __version__
        a["scene_schema_version"] = SCHEMA_VERSION
        a["created_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        a["base_seed"] = np.int64(self.base_seed)
        a["scene_text"] = self.scene.source_text or ""
        a["scene_path"] = self.scene.source_path or ""
        a["scene_json"] = self.scene.model_dump_json(by_alias=True)
        a["conventions"] = conventions_json()
        a["complete"] = False
        for k, v in extra.items():
            a[k] = v
        classes = self.scene.class_table()
        f.create_dataset("classes", data=np.array(classes, dtype=object), dtype=STR)
        f.create_dataset("class_is_stuff", data=np.array(self.scene.class_is_stuff(), bool))
        f.create_group("episodes")

    # -- episodes -------------------------------------------------------------------------------

    def write_episode(self, params: EpisodeParams, records: Iterable[Record]) -> EpisodeSummary:
        """Consume one episode's records and store them under ``/episodes/<index>``."""
        name = episode_group_name(params.episode_index)
        if name in self.file["episodes"]:
            raise OutputError(f"episode {params.episode_index} was already written")
        check_free_space(self.path.parent, self.reserve_bytes)
        t0 = time.perf_counter()
        size0 = _size(self.tmp)
        with output_errors(self.path):
            g = self.file["episodes"].create_group(name)
            g.attrs["episode_index"] = params.episode_index
            g.attrs["episode_seed"] = np.int64(params.episode_seed)
            g.attrs["params_json"] = params.to_json()
            g.attrs["complete"] = False
            writer = _EpisodeWriter(g, self.compression)
            try:
                for rec in records:
                    writer.add(rec)
                n_frames, raw = writer.finish()
            except BaseException:
                writer.abort()
                raise
            g.attrs["complete"] = True
        self.reserve_bytes = max(self.reserve_bytes, 2 * (_size(self.tmp) - size0))
        self.array_hashes = writer.array_hashes()
        self.episodes.append(params.episode_index)
        return EpisodeSummary(
            params.episode_index, n_frames, time.perf_counter() - t0, raw, writer.frame_counts
        )

    def copy_episode(self, group: h5py.Group) -> None:
        """Copy a complete episode group from another simgen file. HDF5 copies the stored
        (compressed) chunks as they are, so this costs I/O only."""
        index = int(group.attrs["episode_index"])
        name = episode_group_name(index)
        if not group.attrs.get("complete", False):
            raise OutputError(f"episode {index} in {group.file.filename} is incomplete")
        if name in self.file["episodes"]:
            raise OutputError(f"episode {index} was already written")
        with output_errors(self.path):
            group.file.copy(group, self.file["episodes"], name=name)
        self.episodes.append(index)

    def link_episode(self, index: int, file: str) -> None:
        """Present episode ``index`` of ``file`` (a path relative to this file's folder) here
        through an HDF5 external link, so this file reads as if it held the episode."""
        name = episode_group_name(index)
        self.file["episodes"][name] = h5py.ExternalLink(file, f"/episodes/{name}")
        self.episodes.append(index)

    def set_attr(self, key: str, value: Any) -> None:
        """Set a root attribute (provenance known only after rendering, e.g. the GL renderer)."""
        self.file.attrs[key] = value

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self, ok: bool = True) -> None:
        if self.file is None:
            return
        try:
            if ok:
                with output_errors(self.path):
                    self.file.attrs["num_episodes"] = len(self.episodes)
                    self.file.attrs["complete"] = self.complete
                    self.file.flush()
                    self.file.close()
            else:  # after a failed write HDF5 may fail to flush its metadata: the file goes
                try:
                    self.file.close()
                except (OSError, RuntimeError):
                    pass
        except BaseException:
            self.close_failed()
            raise
        finally:
            self.file = None  # type: ignore[assignment]
        if ok:
            try:
                if self.durable:
                    _fsync(self.tmp)
                os.replace(self.tmp, self.path)
                if self.durable:
                    _fsync(self.path.parent)
            except OSError as e:
                self.tmp.unlink(missing_ok=True)
                if output_errno(e) is not None:
                    raise output_error(e, self.path) from None
                raise OutputError(f"cannot move {self.tmp} to {self.path}: {e}") from None
        else:
            self.tmp.unlink(missing_ok=True)

    def close_failed(self) -> None:
        """Drop the file after a failed close (its temporary file is removed)."""
        if self.file is not None:
            try:
                self.file.close()
            except (OSError, RuntimeError):
                pass
            self.file = None  # type: ignore[assignment]
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: Any, *rest: object) -> None:
        self.close(ok=exc_type is None)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's) data to the storage device."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _encode_frame(
    arr: np.ndarray, level: int, shuffle: bool, dtype: np.dtype
) -> tuple[bytes, bytes]:
    """(compressed chunk, frame digest) of one frame: both in a compression thread."""
    return _shuffle_deflate(arr, level, shuffle), frame_digest(arr, dtype)


def _shuffle_deflate(arr: np.ndarray, level: int, shuffle: bool) -> bytes:
    """Encode one chunk exactly as HDF5's shuffle + deflate filters would."""
    a = np.ascontiguousarray(arr)
    raw = (
        a.view(np.uint8).reshape(-1, a.dtype.itemsize).T.tobytes()
        if shuffle and a.dtype.itemsize > 1
        else a.tobytes()
    )
    return _deflate(raw, level)


def _pick_deflate() -> Any:
    """Intel ISA-L's deflate (python-isal) where installed, else zlib: both write the zlib
    stream HDF5's deflate filter reads. ISA-L at level 1 is about 9x faster than zlib at level 1
    on rendered frames (flow fields, depth) for files ~5% larger (docs/dataset-format.md,
    "Compression"); its levels are 0-3, zlib's 1-9 map to ISA-L's 1 (1-3) or 2 (4-9)."""
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - platforms without an isal wheel
        return zlib.compress

    def deflate(raw: bytes, level: int) -> bytes:
        return isal_zlib.compress(raw, 1 if level <= 3 else 2)  # type: ignore[no-any-return]

    return deflate


_deflate = _pick_deflate()


def _encode_rows(rows: np.ndarray, level: int, shuffle: bool) -> tuple[bytes, bytes]:
    """(compressed chunk, b""): a chunk of a ragged dataset (hashed as its rows came)."""
    return _shuffle_deflate(rows, level, shuffle), b""


class _Column:
    """What the writer keeps of a per-frame dataset between frames (not the h5py object)."""

    def __init__(self, ds: h5py.Dataset, direct: bool, hasher: Any) -> None:
        self.direct = direct  # frames compressed by simgen, stored with write_direct_chunk
        self.level = int(ds.compression_opts or 0)
        self.shuffle = bool(ds.shuffle)
        self.dtype = ds.dtype
        self.shape = ds.shape[1:]  # of one frame
        self.rows = ds.shape[0]
        self.hasher = hasher


class _RowBuffer:
    """Rows of a ragged dataset appended but not yet written: written a whole chunk at a time."""

    def __init__(self, ds: h5py.Dataset) -> None:
        self.ds = ds
        self.chunk_rows = int(ds.chunks[0])
        self.parts: list[np.ndarray] = []
        self.rows = 0  # rows buffered
        self.written = 0  # rows of the dataset before the buffered ones

    def add(self, arr: np.ndarray) -> None:
        if arr.shape[0]:
            self.parts.append(np.array(arr, self.ds.dtype, copy=True, order="C"))
            self.rows += arr.shape[0]

    def take(self, n: int) -> np.ndarray:
        """The first ``n`` buffered rows (one array), removed from the buffer."""
        whole = self.parts[0] if len(self.parts) == 1 else np.concatenate(self.parts)
        out, rest = whole[:n], whole[n:]
        self.parts = [rest] if rest.shape[0] else []
        self.rows -= n
        return np.ascontiguousarray(out)


class _EpisodeWriter:
    """Accumulates states in memory (small) and streams sensor frames to resizable datasets."""

    def __init__(self, group: h5py.Group, compression: dict[str, Any]) -> None:
        self.g = group
        self.compression = compression
        self._direct = compression.get("compression") == "gzip"
        self._pool = ThreadPoolExecutor(COMPRESS_THREADS) if self._direct else None
        # chunks being compressed, in order: (dataset, chunk offset, future (chunk, frame
        # digest), the dataset's hasher or None when the rows were hashed as they came)
        self._pending: deque[
            tuple[h5py.Dataset, tuple[int, ...], Future[tuple[bytes, bytes]], Any]
        ] = deque()
        self._columns: dict[tuple[str, str], _Column] = {}  # per-frame datasets (see _append)
        self._rows: dict[str, _RowBuffer] = {}  # ragged datasets: rows not yet in a full chunk
        self.states: list[StateRecord] = []
        self.events: EpisodeEvents | None = None
        self.frame_counts: dict[str, int] = {}
        self.raw_bytes = 0
        self._ragged_len: dict[tuple[str, str], int] = {}
        self._hashes: dict[str, Any] = {}  # dataset name -> hasher of the rows appended so far
        self.checker: LabelChecker | None = None  # label self-checks (simgen.io.selfcheck)

    def add(self, rec: Record) -> None:
        if isinstance(rec, EpisodeHeader):
            self._header(rec)
        elif isinstance(rec, StateRecord):
            self.states.append(rec)
        elif isinstance(rec, SensorFrame):
            self._frame(rec)
        elif isinstance(rec, EpisodeEvents):
            self.events = rec

    def _header(self, h: EpisodeHeader) -> None:
        o = self.g.create_group("objects")
        o.create_dataset("instance_id", data=np.array([x.instance_id for x in h.objects], np.int32))
        o.create_dataset(
            "name", data=np.array([x.name for x in h.objects], dtype=object), dtype=STR
        )
        o.create_dataset("class_id", data=np.array([x.class_id for x in h.objects], np.int32))
        o.create_dataset(
            "kind", data=np.array([x.kind for x in h.objects], dtype=object), dtype=STR
        )
        kp = [(x.instance_id, name, p) for x in h.objects for name, p in x.keypoints.items()]
        if kp:
            g = self.g.create_group("keypoints")
            g.create_dataset("instance_id", data=np.array([i for i, _, _ in kp], np.int32))
            g.create_dataset("name", data=np.array([n for _, n, _ in kp], dtype=object), dtype=STR)
            g.create_dataset("position_o", data=np.array([p for _, _, p in kp], np.float64))
        self.checker = LabelChecker(x.instance_id for x in h.objects)
        self.g.attrs["timestep"] = h.timestep
        self.g.attrs["num_steps"] = h.num_steps
        self.g.attrs["sensors_json"] = json.dumps(h.sensor_kinds)
        s = self.g.create_group("sensors")
        for name, kind in h.sensor_kinds.items():
            s.create_group(name).attrs["kind"] = kind
            self.frame_counts[name] = 0

    def _dataset(self, parent: h5py.Group, key: str, sample: np.ndarray) -> h5py.Dataset:
        if key in parent:
            return parent[key]
        opts = self.compression if sample.size >= 64 else {}
        ds = parent.create_dataset(
            key,
            shape=(0, *sample.shape),
            maxshape=(None, *sample.shape),
            dtype=sample.dtype,
            chunks=(1, *sample.shape) if sample.size >= 64 else True,
            **opts,
        )
        ds.attrs["layout"] = "per_frame"
        return ds

    def _hasher(self, ds: h5py.Dataset) -> Any:
        h = self._hashes.get(ds.name)
        if h is None:
            h = self._hashes[ds.name] = array_hasher()
        return h

    def array_hashes(self) -> dict[str, str]:
        """Hashes of the arrays written by appending rows (frames, ragged points), by name:
        a checksum of the episode need not read them back."""
        return {name: h.hexdigest() for name, h in self._hashes.items()}

    def _append(self, parent: h5py.Group, sensor: str, key: str, value: np.ndarray) -> None:
        """Append one frame to the per-frame dataset ``key`` of ``parent`` (the sensor's
        group). What is known of the dataset is kept by (sensor, key), since every h5py property
        read is a call into HDF5; the dataset objects themselves are not kept."""
        col = self._columns.get((sensor, key))
        if col is None:
            ds = self._dataset(parent, key, value)
            direct = (
                self._pool is not None
                and ds.compression == "gzip"
                and ds.chunks == (1, *value.shape)
            )
            col = self._columns[(sensor, key)] = _Column(ds, direct, self._hasher(ds))
        else:
            ds = parent[key]
        n = col.rows
        ds.resize(n + 1, axis=0)
        col.rows += 1
        self.raw_bytes += value.nbytes
        if col.direct and value.shape == col.shape:
            fut = self._pool.submit(  # type: ignore[union-attr]
                _encode_frame, value.copy(), col.level, col.shuffle, col.dtype
            )
            self._submit(ds, (n,) + (0,) * len(col.shape), fut, col.hasher)
        else:
            ds[n] = value
            col.hasher.update(frame_digest(value, col.dtype))

    def _submit(
        self,
        ds: h5py.Dataset,
        offset: tuple[int, ...],
        fut: Future[tuple[bytes, bytes]],
        hasher: Any = None,
    ) -> None:
        """Queue a chunk being compressed; ``hasher``: the dataset's, fed the frame digest the
        future returns (None: the rows were hashed as they came)."""
        self._pending.append((ds, offset, fut, hasher))
        while len(self._pending) > MAX_PENDING_CHUNKS:
            self._drain_one()

    def _drain_one(self) -> None:
        ds, offset, fut, hasher = self._pending.popleft()  # in order: digests are chained
        chunk, digest = fut.result()
        ds.id.write_direct_chunk(offset, chunk)
        if hasher is not None:
            hasher.update(digest)

    def _drain(self) -> None:
        while self._pending:
            self._drain_one()

    def abort(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._pending.clear()
        self._rows.clear()

    def _frame(self, f: SensorFrame) -> None:
        if self.checker is not None:  # before anything of the frame is written
            self.checker.check(f)
        sg = self.g["sensors"][f.sensor]
        for key, value in (
            ("time", np.float64(f.time)),
            ("tick", np.int64(f.tick)),
            ("step", np.int64(f.step)),
            ("pose_w", np.asarray(f.pose_w, np.float64)),
        ):
            self._append(sg, f.sensor, key, np.asarray(value))
        for key, arr in f.arrays.items():
            self._append(sg, f.sensor, key, np.asarray(arr))
        for key, arr in f.static.items():
            if key not in sg:
                sg.create_dataset(key, data=arr).attrs["layout"] = "constant"
        for key, arr in f.ragged.items():
            self._ragged(sg, key, np.asarray(arr))
        self.frame_counts[f.sensor] += 1

    def _ragged(self, sg: h5py.Group, key: str, arr: np.ndarray) -> None:
        if key not in sg:
            sg.create_dataset(
                key,
                shape=(0, *arr.shape[1:]),
                maxshape=(None, *arr.shape[1:]),
                dtype=arr.dtype,
                chunks=(16384, *arr.shape[1:]),
                **self.compression,
            )
            sg[key].attrs["layout"] = "ragged"
            sg.create_dataset(
                f"{key}_offsets", data=np.zeros(1, np.int64), maxshape=(None,), chunks=(1024,)
            )
        ds, off = sg[key], sg[f"{key}_offsets"]
        n = ds.shape[0]
        update_rows(self._hasher(ds), arr, ds.dtype)
        ds.resize(n + arr.shape[0], axis=0)
        if self._pool is not None and ds.compression == "gzip":
            # whole chunks, compressed in the pool (a partly filled chunk written through
            # HDF5's filters is decompressed and compressed again at every append)
            buf = self._rows.get(ds.name)
            if buf is None:
                buf = self._rows[ds.name] = _RowBuffer(ds)
            buf.add(arr)
            while buf.rows >= buf.chunk_rows:
                self._write_rows(buf, buf.take(buf.chunk_rows))
        else:
            ds[n:] = arr
        k = off.shape[0]
        off.resize(k + 1, axis=0)
        off[k] = n + arr.shape[0]
        self.raw_bytes += arr.nbytes

    def _flush(self) -> None:
        """Write every pending chunk: the last, partly filled chunk of each ragged dataset
        and the chunks still being compressed."""
        for buf in self._rows.values():
            if buf.rows:
                self._write_rows(buf, buf.take(buf.rows))
        self._drain()

    def _write_rows(self, buf: _RowBuffer, rows: np.ndarray) -> None:
        """Compress one chunk of a ragged dataset (padded with zeros to the chunk's size: HDF5
        stores edge chunks whole and reads only the rows inside the dataset)."""
        ds = buf.ds
        if rows.shape[0] < buf.chunk_rows:
            full = np.zeros((buf.chunk_rows, *rows.shape[1:]), rows.dtype)
            full[: rows.shape[0]] = rows
            rows = full
        assert self._pool is not None
        fut = self._pool.submit(_encode_rows, rows, int(ds.compression_opts), bool(ds.shuffle))
        self._submit(ds, (buf.written,) + (0,) * (ds.ndim - 1), fut)
        buf.written += buf.chunk_rows

    def finish(self) -> tuple[int, int]:
        self._flush()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._rows.clear()
        st = self.g.create_group("state")
        s = self.states
        st.create_dataset("time", data=np.array([r.time for r in s], np.float64))
        st.create_dataset("step", data=np.array([r.step for r in s], np.int64))
        n_obj = len(self.g["objects/instance_id"])
        for key in ("position_w", "quat_wxyz_w", "linear_velocity_w", "angular_velocity_w"):
            width = 4 if key == "quat_wxyz_w" else 3
            data = (
                np.stack([getattr(r.objects, key) for r in s]) if s else np.zeros((0, n_obj, width))
            )
            st.create_dataset(key, data=data.astype(np.float64))
        c = self.g.create_group("contacts")
        ticks = (
            np.concatenate([np.full(len(r.contacts.instance_a), r.tick, np.int64) for r in s])
            if s
            else np.zeros(0, np.int64)
        )
        c.create_dataset("tick", data=ticks)
        for key in (
            "instance_a",
            "instance_b",
            "link_a",
            "link_b",
            "position_w",
            "normal_w",
            "normal_force",
        ):
            parts = [getattr(r.contacts, key) for r in s]
            if parts:
                c.create_dataset(key, data=np.concatenate(parts))
        self._events(self.events or EpisodeEvents.empty(len(s)))
        return sum(self.frame_counts.values()), self.raw_bytes

    def _events(self, e: EpisodeEvents) -> None:
        """Event labels, scenarios and per-frame values (written even when empty)."""

        def strings(values: list[str]) -> np.ndarray:
            return np.array(values, dtype=object).reshape(len(values))

        g = self.g.create_group("events")
        for key in ("name", "scenario", "action", "source"):
            g.create_dataset(key, data=strings(getattr(e, key)), dtype=STR)
        g.create_dataset("start_step", data=np.asarray(e.start_step, np.int64))
        g.create_dataset("end_step", data=np.asarray(e.end_step, np.int64))
        g.create_dataset("start_time", data=np.asarray(e.start_time, np.float64))
        g.create_dataset("active", data=np.asarray(e.active, bool))
        sc = self.g.create_group("scenarios")
        sc.create_dataset("name", data=strings(e.scenario_names), dtype=STR)
        sc.create_dataset("selected", data=np.asarray(e.scenario_selected, bool))
        pf = self.g.create_group("per_frame")
        pf.create_dataset("name", data=strings(e.per_frame_names), dtype=STR)
        pf.create_dataset("value", data=np.asarray(e.per_frame_values, np.float64))
