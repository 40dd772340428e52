"""Turn HDF5 read failures of a damaged dataset into one clear :class:`DatasetError`.

A dataset file can be damaged after it was written (a truncated copy, flipped bytes, a shard
deleted by hand) or come from an older simgen that lacked a group newer code reads. h5py then
raises ``OSError`` ("Can't read data", "filter returned failure") or ``KeyError`` ("object
doesn't exist") from deep inside a read. Only errors raised *by h5py* are translated: an
``OSError`` or ``KeyError`` from simgen's own code is a bug and keeps its traceback.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from simgen.errors import DatasetError


def raised_by_h5py(e: BaseException) -> bool:
    """Whether ``e`` was raised inside the h5py package (its innermost frame is h5py's)."""
    frames = traceback.extract_tb(e.__traceback__)
    return bool(frames) and "h5py" in Path(frames[-1].filename).parts


def damage_message(path: str | Path, e: BaseException, where: str = "") -> str:
    detail = str(e.args[0] if isinstance(e, KeyError) and e.args else e)
    at = f" ({where})" if where else ""
    return (
        f"{path}{at}: damaged or incompatible dataset: {detail}. "
        f"'simgen verify --integrity {path}' lists the damaged episodes"
    )


@contextmanager
def dataset_read_errors(path: str | Path, where: str = "") -> Iterator[None]:
    """Inside this block, an h5py ``OSError``/``KeyError`` becomes a :class:`DatasetError`
    naming ``path`` (and ``where`` in it, e.g. the episode and frame)."""
    try:
        yield
    except (OSError, KeyError) as e:
        if not raised_by_h5py(e):
            raise
        raise DatasetError(damage_message(path, e, where)) from None
