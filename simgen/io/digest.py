"""Content checksums of stored episodes: equal iff every array and attribute is equal.

The digest is computed from the decoded values, not the file bytes, so it does not depend on
compression, chunking, the HDF5 file an episode sits in (a single file, a part or a shard) or
the order in which arrays were written. It is what "the same dataset" means in simgen: one
worker, many workers or a Ray cluster must produce the same digest for every episode.
"""

from __future__ import annotations

import hashlib
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


def _update_dataset(h: Any, ds: h5py.Dataset) -> None:
    h.update(f"{np.dtype(ds.dtype).str}{ds.shape}:".encode())
    if ds.ndim == 0 or ds.dtype.kind == "O" or ds.shape[0] == 0:
        _update_value(h, ds[()])
        return
    row = max(1, int(np.prod(ds.shape[1:])) * ds.dtype.itemsize)
    step = max(1, _SLAB_BYTES // row)
    for start in range(0, ds.shape[0], step):
        a = np.ascontiguousarray(ds[start : start + step])
        h.update(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())


def episode_digest(group: h5py.Group) -> str:
    """SHA-256 (hex) of an episode group: every attribute and array, in sorted path order."""
    h = hashlib.sha256()
    _update_attrs(h, group)
    names: list[str] = []
    group.visit(names.append)
    for name in sorted(names):
        obj = group[name]
        h.update(b"\n" + name.encode() + b"\n")
        _update_attrs(h, obj)
        if isinstance(obj, h5py.Dataset):
            _update_dataset(h, obj)
    return h.hexdigest()
