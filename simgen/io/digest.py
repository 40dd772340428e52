"""Content checksums of stored episodes: equal iff every array and attribute is equal.

The digest is computed from the decoded values, not the file bytes, so it does not depend on
compression, chunking, the HDF5 file an episode sits in (a single file, a part or a shard) or
the order in which arrays were written. It is what "the same dataset" means in simgen: one
worker, many workers or a Ray cluster must produce the same digest for every episode.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import h5py
import numpy as np

#: Rows read at once when hashing a dataset (bounds memory for long frame stacks).
_SLAB_BYTES = 16 << 20


def _update_value(h: Any, v: Any) -> None:
    if isinstance(v, bytes):
        v = v.decode("utf-8")
    if isinstance(v, str):
        b = v.encode("utf-8")
        h.update(b"s%d:" % len(b) + b)
        return
    a = np.asarray(v)
    if a.dtype.kind == "O":
        h.update(b"o%d:" % a.size)
        for x in a.reshape(-1):
            _update_value(h, x)
        return
    a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<")))
    h.update(f"{a.dtype.str}{a.shape}:".encode())
    h.update(a.tobytes())


def _update_attrs(h: Any, obj: h5py.HLObject) -> None:
    for key in sorted(obj.attrs):
        h.update(b"@" + key.encode() + b"=")
        _update_value(h, obj.attrs[key])


def array_hasher() -> Any:
    """The hash of one dataset's values (see :func:`dataset_hash`)."""
    return hashlib.sha256()


def update_rows(h: Any, rows: np.ndarray, dtype: np.dtype) -> None:
    """Feed rows (stored as ``dtype``) to a dataset's hasher, as :func:`dataset_hash` reads them."""
    a = np.ascontiguousarray(rows, dtype=np.dtype(dtype).newbyteorder("<"))
    h.update(a.tobytes())


def frame_digest(frame: np.ndarray, dtype: np.dtype) -> bytes:
    """SHA-256 of one frame of a per-frame dataset (computed where the frame is compressed)."""
    a = np.ascontiguousarray(frame, dtype=np.dtype(dtype).newbyteorder("<"))
    return hashlib.sha256(a.tobytes()).digest()


def dataset_hash(ds: h5py.Dataset) -> str:
    """SHA-256 (hex) of a dataset's values: of the little-endian bytes in C order (strings:
    lengths and UTF-8); for ``per_frame`` datasets, of the SHA-256 of each frame in order (so
    a writer can hash frames in its compression threads). Equal to what the writer computes."""
    h = array_hasher()
    if ds.ndim == 0 or ds.dtype.kind == "O" or ds.shape[0] == 0:
        _update_value(h, ds[()])
        return h.hexdigest()
    per_frame = ds.attrs.get("layout") in ("per_frame", b"per_frame")
    row = max(1, int(np.prod(ds.shape[1:])) * ds.dtype.itemsize)
    step = max(1, _SLAB_BYTES // row)
    for start in range(0, ds.shape[0], step):
        rows = ds[start : start + step]
        if per_frame:
            for frame in rows:
                h.update(frame_digest(frame, ds.dtype))
        else:
            update_rows(h, rows, ds.dtype)
    return h.hexdigest()


def episode_digest(group: h5py.Group, known: Mapping[str, str] | None = None) -> str:
    """SHA-256 (hex) of an episode group: every attribute and array, in sorted path order.

    ``known`` maps dataset names (absolute HDF5 paths) to their :func:`dataset_hash`, computed
    while writing, so those arrays need not be read back and decompressed."""
    known = known or {}
    h = hashlib.sha256()
    _update_attrs(h, group)
    names: list[str] = []
    group.visit(names.append)
    for name in sorted(names):
        obj = group[name]
        h.update(b"\n" + name.encode() + b"\n")
        _update_attrs(h, obj)
        if isinstance(obj, h5py.Dataset):
            h.update(f"{np.dtype(obj.dtype).str}{obj.shape}:".encode())
            inner = known.get(obj.name)
            h.update((inner or dataset_hash(obj)).encode())
    return h.hexdigest()
